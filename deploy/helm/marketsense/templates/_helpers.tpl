{{/* Release-scoped name prefix, at most 40 characters so "<prefix>-<service>" stays short. */}}
{{- define "marketsense.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "marketsense.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "marketsense.labels" -}}
{{ include "marketsense.selectorLabels" . }}
app.kubernetes.io/part-of: marketsense
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* A service's values: serviceDefaults overridden by services.<name>. Call with (list $ name). */}}
{{- define "marketsense.service" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- $svc := mergeOverwrite (deepCopy $root.Values.serviceDefaults) (deepCopy (index $root.Values.services $name)) -}}
{{- toYaml $svc -}}
{{- end -}}

{{/* A service's image: services.<name>.image when set (skaffold sets it), else
<image.registry>/marketsense-<name>:<image.tag or appVersion>. Call with (list $ name). */}}
{{- define "marketsense.image" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- $own := (index $root.Values.services $name).image -}}
{{- $own | default (printf "%s/marketsense-%s:%s" $root.Values.image.registry $name ($root.Values.image.tag | default $root.Chart.AppVersion)) -}}
{{- end -}}

{{- define "marketsense.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "marketsense.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* MARKETSENSE_* entries from a map of settings; null values are left out. */}}
{{- define "marketsense.settingsData" -}}
{{- range $key, $value := . }}
{{- if kindIs "map" $value }}
MARKETSENSE_{{ upper $key }}: {{ $value | toJson | quote }}
{{- else if and (kindIs "float64" $value) (eq $value (float64 (int64 $value))) }}
{{- /* YAML numbers arrive as floats, whose text turns 604800000 into 6.048e+08. */}}
MARKETSENSE_{{ upper $key }}: {{ $value | int64 | toString | quote }}
{{- else if not (kindIs "invalid" $value) }}
MARKETSENSE_{{ upper $key }}: {{ $value | toString | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* env entries reading secret settings from existing Secrets; empty names are left out. */}}
{{- define "marketsense.secretEnv" -}}
{{- range $key, $ref := . }}
{{- if $ref.name }}
- name: MARKETSENSE_{{ upper $key }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.name }}
      key: {{ $ref.key }}
{{- end }}
{{- end }}
{{- end -}}

{{/* NetworkPolicy egress rules for a list of destination names under .Values.networkPolicy. */}}
{{- define "marketsense.egress" -}}
{{- $root := index . 0 -}}
{{- range $dest := index . 1 }}
{{- $rule := index $root.Values.networkPolicy $dest }}
- {{- with $rule.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  ports:
    {{- range $rule.ports }}
    - {protocol: TCP, port: {{ . }}}
    {{- if eq (int .) 53 }}
    - {protocol: UDP, port: 53}
    {{- end }}
    {{- end }}
{{- end }}
{{- end -}}

{{- define "marketsense.podSecurity" -}}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
