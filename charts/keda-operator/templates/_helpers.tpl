{{/* Labels of every object: those of the kustomize base (operator/deploy), then Helm's. */}}
{{- define "keda-operator.labels" -}}
app.kubernetes.io/part-of: keda-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* The operator's image: [registry/]repository:tag, the tag defaulting to appVersion. */}}
{{- define "keda-operator.image" -}}
{{- $image := .Values.image.keda -}}
{{- $name := $image.repository -}}
{{- if $image.registry -}}
{{- $name = printf "%s/%s" (trimSuffix "/" $image.registry) $name -}}
{{- end -}}
{{- printf "%s:%s" $name (default .Chart.AppVersion $image.tag) -}}
{{- end }}
