{{/*
Exactly the requests the signal-operator sends, verb by verb (crates/signal-operator/src/
controller.rs). e2e/tests/chart_rbac.rs runs the operator under these rules and fails on a
Forbidden and on any rule the scenarios do not use.
*/}}
{{- define "operator.rules" -}}
# Its kind: watched.
- apiGroups: ["synapse.opdev.io"]
  resources: ["mautrixsignals"]
  verbs: ["list", "watch"]
{{- end -}}

{{/* The leader-election Lease, in the release namespace. */}}
{{- define "operator.leaseName" -}}signal-operator-leader{{- end -}}
