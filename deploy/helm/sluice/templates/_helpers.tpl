{{- define "sluice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sluice.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "sluice.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "sluice.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object; call with (dict "ctx" $ "component" "gateway"). */}}
{{- define "sluice.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
{{ include "sluice.selectorLabels" . }}
{{- end -}}

{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sluice.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "sluice.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}
{{- end -}}

{{- define "sluice.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{ default (include "sluice.fullname" .) .Values.serviceAccount.name }}
{{- else -}}
{{ default "default" .Values.serviceAccount.name }}
{{- end -}}
{{- end -}}

{{/* The gateway's headless Service: agents resolve it to every gateway pod's IP. */}}
{{- define "sluice.gatewayHeadless" -}}
{{ include "sluice.fullname" . }}-gateway-headless
{{- end -}}

{{/* Container security: non-root, read-only root filesystem, no capabilities. */}}
{{- define "sluice.logReaderSecurityContext" -}}
runAsNonRoot: false
runAsUser: 0
runAsGroup: 0
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "sluice.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Where the Secrets of `security` are mounted (directories, so updates reach the pod). */}}
{{- define "sluice.tlsDir" -}}/var/run/secrets/sluice/tls{{- end -}}
{{- define "sluice.authDir" -}}/var/run/secrets/sluice/auth{{- end -}}

{{/* The gateway OTLP receivers' tls and auth, from `security`. */}}
{{- define "sluice.serverSecurity" -}}
{{- $s := .Values.security -}}
{{- if $s.tls.enabled }}
tls:
  cert_file: {{ include "sluice.tlsDir" . }}/tls.crt
  key_file: {{ include "sluice.tlsDir" . }}/tls.key
  {{- if $s.tls.mutual }}
  client_ca_file: {{ include "sluice.tlsDir" . }}/ca.crt
  {{- end }}
  reload_interval: {{ $s.tls.reloadInterval }}
{{- end }}
{{- if $s.auth.enabled }}
auth:
  authenticator: bearertokenauth
{{- end }}
{{- end -}}

{{/* The Secret volumes of `security` for a workload ("gateway", or a client of it: "agent",
"cluster"): mounts, volumes. */}}
{{- define "sluice.securityMounts" -}}
{{- $s := .ctx.Values.security -}}
{{- if $s.tls.enabled }}
- { name: tls, mountPath: {{ include "sluice.tlsDir" .ctx }}, readOnly: true }
{{- end }}
{{- if $s.auth.enabled }}
- { name: auth, mountPath: {{ include "sluice.authDir" .ctx }}, readOnly: true }
{{- end }}
{{- end -}}

{{- define "sluice.securityVolumes" -}}
{{- $s := .ctx.Values.security -}}
{{- if $s.tls.enabled }}
- name: tls
  secret:
    secretName: {{ if ne .component "gateway" }}{{ default $s.tls.secretName $s.tls.agentSecretName }}{{ else }}{{ $s.tls.secretName }}{{ end }}
    defaultMode: 0440
{{- end }}
{{- if $s.auth.enabled }}
- name: auth
  secret:
    secretName: {{ $s.auth.tokenSecret }}
    items: [{ key: {{ $s.auth.tokenKey }}, path: token }]
    defaultMode: 0440
{{- end }}
{{- end -}}

{{/* Fails the render when `security` is turned on without its Secrets. */}}
{{- define "sluice.checkSecurity" -}}
{{- $s := .Values.security -}}
{{- if and $s.tls.enabled (not $s.tls.secretName) -}}
{{- fail "security.tls.enabled needs security.tls.secretName" -}}
{{- end -}}
{{- if and $s.auth.enabled (not $s.auth.tokenSecret) -}}
{{- fail "security.auth.enabled needs security.auth.tokenSecret" -}}
{{- end -}}
{{- end -}}

{{/* The service accounts of the roles that read the Kubernetes API. */}}
{{- define "sluice.agentServiceAccountName" -}}
{{ include "sluice.fullname" . }}-agent
{{- end -}}

{{- define "sluice.clusterServiceAccountName" -}}
{{ include "sluice.fullname" . }}-cluster
{{- end -}}

{{/* Whether the agent reads the Kubernetes API (and so gets its own account and a token). */}}
{{- define "sluice.agentUsesApi" -}}
{{- if and .Values.agent.enabled (or .Values.agent.k8sAttributes.enabled .Values.agent.kubeletStats.enabled) }}true{{ end -}}
{{- end -}}
