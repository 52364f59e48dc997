{{/* Names, labels and the few values that several templates derive. */}}

{{- define "mnemo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mnemo.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "mnemo.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mnemo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mnemo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end -}}

{{- define "mnemo.labels" -}}
helm.sh/chart: {{ include "mnemo.chart" . }}
app.kubernetes.io/name: {{ include "mnemo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mnemo
{{- end -}}

{{/* Labels of a component other than the server (jobs, database). */}}
{{- define "mnemo.componentLabels" -}}
{{- $ := index . 0 -}}
helm.sh/chart: {{ include "mnemo.chart" $ }}
app.kubernetes.io/name: {{ include "mnemo.name" $ }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/version: {{ $.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $.Release.Service }}
app.kubernetes.io/part-of: mnemo
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "mnemo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "mnemo.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "mnemo.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the API key: the given one, or the ExternalSecret/dev Secret name. */}}
{{- define "mnemo.authSecretName" -}}
{{- default (printf "%s-auth" (include "mnemo.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}

{{- define "mnemo.cnpgClusterName" -}}
{{- printf "%s-db" (include "mnemo.fullname" .) | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{/* Secret and key of the database URI: CloudNativePG's generated "<cluster>-app" or yours. */}}
{{- define "mnemo.databaseSecretName" -}}
{{- if eq .Values.database.mode "cnpg" -}}
{{- printf "%s-app" (include "mnemo.cnpgClusterName" .) -}}
{{- else -}}
{{- .Values.database.external.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "mnemo.databaseSecretKey" -}}
{{- if eq .Values.database.mode "cnpg" -}}uri{{- else -}}{{ .Values.database.external.uriKey }}{{- end -}}
{{- end -}}

{{/* Environment shared by the server and the jobs. */}}
{{- define "mnemo.env" -}}
- name: MNEMO_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "mnemo.databaseSecretName" . }}
      key: {{ include "mnemo.databaseSecretKey" . }}
{{- if .Values.auth.enabled }}
- name: MNEMO_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "mnemo.authSecretName" . }}
      key: {{ .Values.auth.apiKeyKey }}
{{- end }}
{{- end -}}

{{/* Pod-level settings every workload of the chart shares. */}}
{{- define "mnemo.podSpecCommon" -}}
serviceAccountName: {{ include "mnemo.serviceAccountName" . }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Egress every workload needs: DNS (UDP and TCP) and the database. */}}
{{- define "mnemo.egressCommon" -}}
{{- $ := index . 0 -}}
{{- $dbPort := index . 1 -}}
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ $.Values.networkPolicy.dnsNamespace }}
  ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
- ports:
    - port: {{ $dbPort }}
      protocol: TCP
  to:
    {{- if eq $.Values.database.mode "cnpg" }}
    - podSelector:
        matchLabels:
          cnpg.io/cluster: {{ include "mnemo.cnpgClusterName" $ }}
    {{- else if $.Values.database.external.cidrs }}
    {{- range $.Values.database.external.cidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
    {{- else }}
    - ipBlock:
        cidr: 0.0.0.0/0
    {{- end }}
{{- end -}}

{{/*
Host names the server answers to (MNEMO_ALLOWED_HOSTS): the Service's DNS names, the route and
ingress hostnames, and config.allowedHosts.
*/}}
{{- define "mnemo.allowedHosts" -}}
{{- $name := include "mnemo.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- $hosts := list $name (printf "%s.%s" $name $ns) (printf "%s.%s.svc" $name $ns) (printf "%s.%s.svc.cluster.local" $name $ns) -}}
{{- range .Values.httpRoute.hostnames }}{{ $hosts = append $hosts . }}{{ end -}}
{{- range .Values.ingress.hosts }}{{ $hosts = append $hosts .host }}{{ end -}}
{{- range .Values.config.allowedHosts }}{{ $hosts = append $hosts . }}{{ end -}}
{{- join "," (uniq $hosts) -}}
{{- end -}}
