{{- define "rostersync.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "rostersync.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "rostersync.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "rostersync.fullname" .)) -}}
{{- end -}}

{{/* The settings every container reads: the ConfigMap, the Secret, the tenants file. */}}
{{- define "rostersync.environment" -}}
envFrom:
  - configMapRef:
      name: {{ include "rostersync.fullname" . }}-settings
  - secretRef:
      name: {{ include "rostersync.secretName" . }}
{{- end -}}

{{/* A component's image: (list $root "<component>" <its image values>). Its own repository and
tag, else "<image.repository>-<component>" and image.tag. */}}
{{- define "rostersync.image" -}}
{{- $root := index . 0 -}}
{{- $own := index . 2 | default dict -}}
{{- $repository := $own.repository | default (printf "%s-%s" $root.Values.image.repository (index . 1)) -}}
{{- printf "%s:%s" $repository ($own.tag | default $root.Values.image.tag | toString) -}}
{{- end -}}
