{{/* The release's full name, at most 63 characters. */}}
{{- define "operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object of the release. */}}
{{- define "operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: synapse-operators
{{- end -}}

{{/* Labels that select the operator's Pods. */}}
{{- define "operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Leader election is on when asked for; several replicas without it are refused. */}}
{{- define "operator.leaderElect" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) -}}
{{- fail "replicaCount > 1 needs leaderElection.enabled: only the Lease holder may reconcile" -}}
{{- end -}}
{{- .Values.leaderElection.enabled -}}
{{- end -}}

{{/* The namespace the RBAC rules apply to: watchNamespace, required when rbac.namespaced. */}}
{{- define "operator.rbacNamespace" -}}
{{- if and .Values.rbac.namespaced (not .Values.watchNamespace) -}}
{{- fail "rbac.namespaced needs watchNamespace: the Role is created in the watched namespace" -}}
{{- end -}}
{{- .Values.watchNamespace -}}
{{- end -}}
