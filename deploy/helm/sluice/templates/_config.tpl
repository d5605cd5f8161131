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

{{/* The otlp exporter of agents and the cluster collector: every gateway pod, through the
headless Service, with the TLS and token of `security`. */}}
{{- define "sluice.gatewayExporter" -}}
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
{{- $k8s := .Values.agent.k8sAttributes }}
{{- $kubelet := .Values.agent.kubeletStats }}
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
    confine_to: {{ toJson $logs.confineTo }}
    storage: file_storage
    operators:
      - type: container
        add_metadata_from_filepath: true
  {{- end }}
  {{- if $kubelet.enabled }}
  # This node's kubelet, with the agent's service account token (RBAC: nodes/stats get).
  kubeletstats:
    endpoint: "https://${env:K8S_NODE_IP}:10250"
    auth_type: serviceAccount
    insecure_skip_verify: {{ $kubelet.insecureSkipVerify }}
    collection_interval: {{ $kubelet.collectionInterval }}
    metric_groups: {{ toJson $kubelet.metricGroups }}
  {{- end }}
processors:
  {{- if $k8s.enabled }}
  # This node's pods (RBAC: pods, namespaces, replicasets list/watch): container logs and
  # kubelet metrics by their pod uid, app telemetry by the sender's address.
  k8sattributes:
    filter:
      node_from_env_var: K8S_NODE_NAME
    pod_association:
      - sources: [{from: resource_attribute, name: k8s.pod.uid}]
      - sources: [{from: resource_attribute, name: k8s.pod.ip}]
      - sources: [{from: connection}]
  {{- end }}
  memory_limiter:
    check_interval: 1s
    limit_percentage: 80
    spike_limit_percentage: 20
  batch:
    send_batch_size: 2048
    timeout: 200ms
exporters:
  {{- include "sluice.gatewayExporter" . | nindent 2 }}
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
      processors: [memory_limiter, {{ if $k8s.enabled }}k8sattributes, {{ end }}batch]
      exporters: [otlp]
    {{- end }}
    {{- if $kubelet.enabled }}
    metrics/node:
      receivers: [kubeletstats]
      processors: [memory_limiter, {{ if $k8s.enabled }}k8sattributes, {{ end }}batch]
      exporters: [otlp]
    {{- end }}
    logs:
      receivers: [otlp]
      processors: [memory_limiter, {{ if $k8s.enabled }}k8sattributes, {{ end }}batch]
      exporters: [otlp]
    traces:
      receivers: [otlp]
      processors: [memory_limiter, {{ if $k8s.enabled }}k8sattributes, {{ end }}batch]
      exporters: [otlp]
    metrics:
      receivers: [otlp]
      processors: [memory_limiter, {{ if $k8s.enabled }}k8sattributes, {{ end }}batch]
      exporters: [otlp]
{{- end -}}

{{- define "sluice.gatewayConfig" -}}
{{- $defaults := include "sluice.gatewayDefaults" . | fromYaml -}}
{{- mergeOverwrite $defaults (deepCopy .Values.gateway.config) | toYaml -}}
{{- end -}}

{{- define "sluice.clusterDefaults" -}}
{{- $c := .Values.clusterCollector }}
extensions:
  health_check:
    endpoint: "0.0.0.0:{{ $c.ports.health }}"
  {{- include "sluice.bearerExtension" . | nindent 2 }}
receivers:
  # Cluster events (RBAC: events list/watch); one replica reports, by a Lease in this
  # namespace (RBAC: leases get/create/update here only).
  k8s_events:
    leader_election:
      lease_name: {{ include "sluice.fullname" . }}-k8s-events
      lease_namespace: "${env:POD_NAMESPACE}"
      identity: "${env:POD_NAME}"
      lease_duration: {{ $c.leaderElection.leaseDuration }}
      renew_deadline: {{ $c.leaderElection.renewDeadline }}
      retry_period: {{ $c.leaderElection.retryPeriod }}
processors:
  batch:
    send_batch_size: 1024
    timeout: 1s
exporters:
  {{- include "sluice.gatewayExporter" . | nindent 2 }}
service:
  extensions: {{ include "sluice.extensionList" . }}
  shutdown_timeout: "{{ sub (int $c.terminationGracePeriodSeconds) 10 }}s"
  telemetry:
    metrics:
      address: "0.0.0.0:{{ $c.ports.metrics }}"
  pipelines:
    logs:
      receivers: [k8s_events]
      processors: [batch]
      exporters: [otlp]
{{- end -}}

{{- define "sluice.clusterConfig" -}}
{{- $defaults := include "sluice.clusterDefaults" . | fromYaml -}}
{{- mergeOverwrite $defaults (deepCopy .Values.clusterCollector.config) | toYaml -}}
{{- end -}}

{{- define "sluice.agentConfig" -}}
{{- $defaults := include "sluice.agentDefaults" . | fromYaml -}}
{{- mergeOverwrite $defaults (deepCopy .Values.agent.config) | toYaml -}}
{{- end -}}
