{{/*
The sluice configs. Defaults first; the user's gateway.config / agent.config are merged over
them (maps key by key, lists replaced), then rendered into the ConfigMaps.
*/}}

{{- define "sluice.bearerExtension" -}}
{{- if .Values.security.auth.enabled }}
bearertokenauth:
  filename: {{ include "sluice.authDir" . }}/token
{{- end }}
{{- end -}}

{{- define "sluice.extensionList" -}}
[health_check{{ if .Values.security.auth.enabled }}, bearertokenauth{{ end }}]
{{- end -}}

{{- define "sluice.agentExtensionList" -}}
[health_check{{ if .Values.security.auth.enabled }}, bearertokenauth{{ end }}{{ if .Values.agent.containerLogs.enabled }}, file_storage{{ end }}]
{{- end -}}

{{- define "sluice.gatewayDefaults" -}}
extensions:
  health_check:
    endpoint: "0.0.0.0:{{ .Values.gateway.ports.health }}"
  {{- include "sluice.bearerExtension" . | nindent 2 }}
receivers:
  # TLS and auth (security.*) guard the OTLP receivers, which agents and apps use; http_logs
  # stays plaintext behind the ingress, which terminates its clients' TLS.
  otlp:
    protocols:
      grpc:
        endpoint: "0.0.0.0:{{ .Values.gateway.ports.otlpGrpc }}"
        {{- include "sluice.serverSecurity" . | nindent 8 }}
      http:
        endpoint: "0.0.0.0:{{ .Values.gateway.ports.otlpHttp }}"
        {{- include "sluice.serverSecurity" . | nindent 8 }}
  http_logs:
    endpoint: "0.0.0.0:{{ .Values.gateway.ports.httpLogs }}"
processors:
  memory_limiter:
    check_interval: 1s
    limit_percentage: 80
    spike_limit_percentage: 20
  batch:
    send_batch_size: 8192
    timeout: 200ms
exporters:
  debug:
    verbosity: basic
service:
  extensions: {{ include "sluice.extensionList" . }}
  shutdown_timeout: "{{ sub (int .Values.gateway.terminationGracePeriodSeconds) 10 }}s"
  telemetry:
    metrics:
      address: "0.0.0.0:{{ .Values.gateway.ports.metrics }}"
  pipelines:
    logs:
      receivers: [otlp, http_logs]
      processors: [memory_limiter, batch]
      exporters: [debug]
    traces:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [debug]
    metrics:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [debug]
{{- end -}}

{{- define "sluice.agentDefaults" -}}
{{- $logs := .Values.agent.containerLogs }}
extensions:
  health_check:
    endpoint: "0.0.0.0:{{ .Values.agent.ports.health }}"
  {{- include "sluice.bearerExtension" . | nindent 2 }}
  {{- if $logs.enabled }}
  file_storage:
    directory: /var/lib/sluice
    create_directory: true
  {{- end }}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: "0.0.0.0:{{ .Values.agent.ports.otlpGrpc }}"
      http:
        endpoint: "0.0.0.0:{{ .Values.agent.ports.otlpHttp }}"
  {{- if $logs.enabled }}
  filelog:
    include: {{ toJson $logs.include }}
    # The agent's own logs would come back through the gateway for ever.
    exclude: {{ append $logs.exclude (printf "/var/log/pods/%s_%s-agent-*/*/*.log" .Release.Namespace (include "sluice.fullname" .)) | toJson }}
    start_at: end
    include_file_path: true
    storage: file_storage
    operators:
      - type: container
        add_metadata_from_filepath: true
  {{- end }}
processors:
  memory_limiter:
    check_interval: 1s
    limit_percentage: 80
    spike_limit_percentage: 20
  batch:
    send_batch_size: 2048
    timeout: 200ms
exporters:
  otlp:
    endpoint: "{{ include "sluice.gatewayHeadless" . }}.{{ .Release.Namespace }}.svc:{{ .Values.gateway.ports.otlpGrpc }}"
    balancing: dns
    tls:
      {{- $tls := .Values.security.tls }}
      {{- if $tls.enabled }}
      ca_file: {{ include "sluice.tlsDir" . }}/ca.crt
      {{- if $tls.mutual }}
      cert_file: {{ include "sluice.tlsDir" . }}/tls.crt
      key_file: {{ include "sluice.tlsDir" . }}/tls.key
      {{- end }}
      {{- with $tls.serverName }}
      server_name_override: {{ . }}
      {{- end }}
      {{- else }}
      insecure: true
      {{- end }}
    {{- if .Values.security.auth.enabled }}
    auth:
      authenticator: bearertokenauth
    {{- end }}
service:
  extensions: {{ include "sluice.agentExtensionList" . }}
  shutdown_timeout: "{{ sub (int .Values.agent.terminationGracePeriodSeconds) 10 }}s"
  telemetry:
    metrics:
      address: "0.0.0.0:{{ .Values.agent.ports.metrics }}"
  pipelines:
    {{- if $logs.enabled }}
    logs/node:
      receivers: [filelog]
      processors: [memory_limiter, batch]
      exporters: [otlp]
    {{- end }}
    logs:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlp]
    traces:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlp]
    metrics:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlp]
{{- end -}}

{{- define "sluice.gatewayConfig" -}}
{{- $defaults := include "sluice.gatewayDefaults" . | fromYaml -}}
{{- mergeOverwrite $defaults (deepCopy .Values.gateway.config) | toYaml -}}
{{- end -}}

{{- define "sluice.agentConfig" -}}
{{- $defaults := include "sluice.agentDefaults" . | fromYaml -}}
{{- mergeOverwrite $defaults (deepCopy .Values.agent.config) | toYaml -}}
{{- end -}}
