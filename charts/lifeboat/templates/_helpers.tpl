{{/*
Names are fixed, not derived from the release name: lifeboat's CRDs, ClusterRoles and
admission policy are cluster-wide, so a cluster holds one installation, and the objects
carry the names the documentation and deploy/ (the kustomize base) use.
*/}}

{{/* The namespace of the namespaced objects. */}}
{{- define "lifeboat.namespace" -}}
{{- .Values.namespace.name | default .Release.Namespace -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "lifeboat.labels" -}}
app.kubernetes.io/name: lifeboat
app.kubernetes.io/part-of: lifeboat
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The controller's pods: the Deployment's selector, the Service, the PDB, the NetworkPolicy. */}}
{{- define "lifeboat.selectorLabels" -}}
app.kubernetes.io/name: lifeboat
app.kubernetes.io/component: controller
{{- end -}}

{{- define "lifeboat.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* The Secret holding the webhook's TLS certificate and key. */}}
{{- define "lifeboat.tlsSecretName" -}}
{{- .Values.tls.secretName | default "lifeboat-webhook-tls" -}}
{{- end -}}

{{/*
Namespaces whose alerts the controller serves: its own and each tenant namespace. The
step executor's and the approvers' RoleBindings go to each.
*/}}
{{- define "lifeboat.servedNamespaces" -}}
{{- $namespaces := list (include "lifeboat.namespace" .) -}}
{{- range .Values.tenantNamespaces -}}
{{- $namespaces = append $namespaces . -}}
{{- end -}}
{{- $namespaces | uniq | toJson -}}
{{- end -}}
