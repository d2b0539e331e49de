{{/*
Exactly the requests the synapse-operator sends, verb by verb (crates/synapse-operator/src/
controller.rs and crates/operator-common). e2e/tests/chart_rbac.rs runs the operator under these
rules and fails on a Forbidden and on any rule the scenarios do not use.
*/}}
{{- define "operator.rules" -}}
# Its kind: watched, status written by server-side apply.
- apiGroups: ["synapse.opdev.io"]
  resources: ["synapses"]
  verbs: ["list", "watch"]
- apiGroups: ["synapse.opdev.io"]
  resources: ["synapses/status"]
  verbs: ["patch"]
# Generated secrets and the config bundle (created once, then patched), bridge registrations
# (watched), database Secrets (read and watched); the workers' files and Redis Secret, deleted
# with spec.workers.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# The data PVC: created once, then its labels and owner patched; watched, never read by a get.
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["list", "watch", "create", "patch"]
# Applied by server-side apply (an apply that creates the object needs create as well); read
# from the operator's cache, never by a get. A worker's (and the router's and Redis's) are
# deleted when spec.workers no longer declares them.
- apiGroups: [""]
  resources: ["services"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# With spec.workers, the disruption budgets of the router and each role.
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# The CloudNativePG Cluster of createNewPostgreSQL: created once, then its labels and owner
# patched; watched for readiness.
- apiGroups: ["postgresql.cnpg.io"]
  resources: ["clusters"]
  verbs: ["get", "list", "watch", "create", "patch"]
# With spec.expose, the Synapse's HTTPRoute or Ingress and its cert-manager Certificate: applied
# by server-side apply (an apply that creates one needs create), watched, deleted once the spec
# no longer asks for them.
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["cert-manager.io"]
  resources: ["certificates"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# With spec.metrics.monitor, the Synapse's ServiceMonitor or PodMonitor, the same way.
- apiGroups: ["monitoring.coreos.com"]
  resources: ["servicemonitors", "podmonitors"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# The check of a new configuration by Synapse's loader: a Job per candidate, created, watched,
# deleted once its candidate rolled out or gave way; its pods listed to read why a check failed.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["list", "watch", "create", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
# The user's homeserver.yaml: read, never written.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch"]
{{- if not .Values.watchNamespace }}
# ReferenceGrants (Gateway API): whether a namespace grants a spec's reference to its ConfigMap;
# listed when one is followed, watched to follow a grant's change. Installed for one namespace,
# the operator reads nothing outside it and needs none.
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["referencegrants"]
  verbs: ["list", "watch"]
{{- end }}
# Events; a repeated one is patched to count the series.
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}

{{/* The leader-election Lease, in the release namespace. */}}
{{- define "operator.leaseName" -}}synapse-operator-leader{{- end -}}

{{/* The resource of the kind users create, for the roles aggregated to admin, edit and view. */}}
{{- define "operator.userResource" -}}synapses{{- end -}}
