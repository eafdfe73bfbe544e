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

{{/* NetworkPolicy egress rules for a list of destination names under .Values.networkPolicy,
and optionally the settings of the pod (default: .Values.settings), whose addresses narrow the
Kafka and object store rules. */}}
{{- define "marketsense.egress" -}}
{{- $root := index . 0 -}}
{{- $settings := $root.Values.settings -}}
{{- if gt (len .) 2 }}{{ $settings = index . 2 }}{{ end -}}
{{- range $dest := index . 1 }}
{{- $rule := index $root.Values.networkPolicy $dest }}
{{- $addresses := include "marketsense.egressAddresses" (list $root $dest $settings) | fromJsonArray }}
{{- $ips := list }}
{{- range $addresses }}{{ if regexMatch "^[0-9]{1,3}([.][0-9]{1,3}){3}(/[0-9]{1,2})?$" .host }}{{ $ips = append $ips . }}{{ end }}{{ end }}
{{- if and $addresses (eq (len $ips) (len $addresses)) (not $rule.to) }}
# {{ $dest }}: only the configured IP address{{ if gt (len $addresses) 1 }}es, each{{ end }} on the port it names.
{{- range $addresses }}
- to:
    - ipBlock: {cidr: {{ .host }}{{ if not (contains "/" .host) }}/32{{ end }}}
  ports:
    - {protocol: TCP, port: {{ .port }}}
{{- end }}
{{- else }}
{{- if and $addresses (not $rule.to) }}
# {{ $dest }}: {{ range $i, $a := $addresses }}{{ if $i }}, {{ end }}{{ $a.host }}{{ end }} is a name, which a NetworkPolicy
# cannot match: any destination on these ports (set networkPolicy.{{ $dest }}.to to narrow it).
{{- end }}
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
{{- end }}
{{- end -}}

{{/* The addresses the values give for an egress destination, as a JSON list of {host, port}:
Kafka's bootstrap servers, the S3 endpoint (none for AWS S3), networkPolicy.database.address
(the database URL itself is in a Secret the chart cannot read); none for the rest. */}}
{{- define "marketsense.egressAddresses" -}}
{{- $root := index . 0 -}}
{{- $dest := index . 1 -}}
{{- $settings := index . 2 -}}
{{- $found := list -}}
{{- if eq $dest "kafka" -}}
{{- range splitList "," (toString ($settings.kafka_bootstrap_servers | default "")) -}}
{{- with trim . }}{{ $found = append $found (include "marketsense.hostPort" (list . 9092) | fromJson) }}{{ end -}}
{{- end -}}
{{- else if eq $dest "objectStore" -}}
{{- with $settings.s3_endpoint_url -}}
{{- $url := urlParse . -}}
{{- $found = append $found (include "marketsense.hostPort" (list $url.host (ternary 443 80 (eq $url.scheme "https"))) | fromJson) -}}
{{- end -}}
{{- else if eq $dest "database" -}}
{{- with $root.Values.networkPolicy.database.address -}}
{{- $found = append $found (include "marketsense.hostPort" (list . 5432) | fromJson) -}}
{{- end -}}
{{- end -}}
{{- uniq $found | toJson -}}
{{- end -}}

{{/* {host, port} of "host[:port]" as JSON, with a default port. */}}
{{- define "marketsense.hostPort" -}}
{{- $address := index . 0 -}}
{{- $port := regexFind ":[0-9]+$" $address | trimPrefix ":" | default (index . 1) -}}
{{- dict "host" (regexReplaceAll ":[0-9]+$" $address "") "port" (int $port) | toJson -}}
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
