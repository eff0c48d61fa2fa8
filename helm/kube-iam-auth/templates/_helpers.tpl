{{/*
Helpers. Every template is plain Go template + Sprig (include, toYaml, nindent, quote, default,
if/range/with, dict/set/has): test/packaging/helm.test.ts renders the chart with a small renderer
that implements exactly these constructs, so keep to them (or extend that renderer).
*/}}

{{- define "kube-iam-auth.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kube-iam-auth.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "kube-iam-auth.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kube-iam-auth.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kube-iam-auth.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "kube-iam-auth.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "kube-iam-auth.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kube-iam-auth.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kube-iam-auth.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Where the config file, the state and the webhook kubeconfig are inside the container. */}}
{{- define "kube-iam-auth.configDir" -}}
/etc/kube-iam-auth
{{- end }}

{{- define "kube-iam-auth.kubeconfigPath" -}}
{{- printf "%s/kubeconfig.yaml" (trimSuffix "/" .Values.hostPaths.kubeconfigDir) }}
{{- end }}

{{/* "true" when a configured backend reads from the Kubernetes API (else empty). */}}
{{- define "kube-iam-auth.backendModes" -}}
{{- if kindIs "slice" .Values.server.backendMode }}{{ join " " .Values.server.backendMode }}{{ end }}
{{- end }}

{{- define "kube-iam-auth.usesConfigMap" -}}
{{- $modes := splitList " " (include "kube-iam-auth.backendModes" .) }}
{{- if or (has "EKSConfigMap" $modes) (has "ConfigMap" $modes) }}true{{ end }}
{{- end }}

{{- define "kube-iam-auth.usesCRD" -}}
{{- if has "CRD" (splitList " " (include "kube-iam-auth.backendModes" .)) }}true{{ end }}
{{- end }}

{{/* Host the probes connect to: the listen address unless it is a wildcard (then the pod IP). */}}
{{- define "kube-iam-auth.probeHost" -}}
{{- $address := toString .Values.server.address }}
{{- if not (has $address (list "" "0.0.0.0" "::")) }}{{ $address }}{{ end }}
{{- end }}

{{/*
Refuses value combinations that would install a broken authenticator. Included by the DaemonSet.
*/}}
{{- define "kube-iam-auth.validate" -}}
{{- if not (kindIs "slice" .Values.server.backendMode) }}
{{- fail "server.backendMode must be a list, e.g. [MountedFile, EKSConfigMap]" }}
{{- end }}
{{- if and .Values.clusterIDs (not (kindIs "slice" .Values.clusterIDs)) }}
{{- fail "clusterIDs must be a list, e.g. [blue, old-name] (--set 'clusterIDs={blue,old-name}')" }}
{{- end }}
{{- range $id := .Values.clusterIDs }}
{{- if not (kindIs "string" $id) }}
{{- fail "clusterIDs must be a list of strings: quote an ID that YAML reads as a number or a boolean" }}
{{- end }}
{{- end }}
{{- if or (hasKey .Values.server "stateDir") (hasKey .Values.server "generateKubeconfig") }}
{{- fail "set hostPaths.stateDir and hostPaths.kubeconfigDir instead of server.stateDir / server.generateKubeconfig" }}
{{- end }}
{{- range $dir := list .Values.hostPaths.stateDir .Values.hostPaths.kubeconfigDir }}
{{- if or (not (hasPrefix "/" (toString $dir))) (has (trimSuffix "/" (toString $dir)) (list "" "/etc" "/etc/kubernetes" "/etc/kubernetes/pki" "/var" "/var/lib" "/var/lib/kubelet" "/tmp" "/root" "/home")) }}
{{- fail (printf "hostPaths: %q must be an absolute path to a directory of its own (it is chowned to the service user)" (toString $dir)) }}
{{- end }}
{{- end }}
{{- if eq (trimSuffix "/" (toString .Values.hostPaths.stateDir)) (trimSuffix "/" (toString .Values.hostPaths.kubeconfigDir)) }}
{{- fail "hostPaths.stateDir and hostPaths.kubeconfigDir must be different directories (kube-apiserver needs only the kubeconfig, not the private keys)" }}
{{- end }}
{{- $loopback := has (toString .Values.server.address) (list "127.0.0.1" "localhost" "::1") }}
{{- if and $loopback (not .Values.hostNetwork) }}
{{- fail "server.address is a loopback address: kube-apiserver and the kubelet probes reach it only with hostNetwork: true" }}
{{- end }}
{{- if and $loopback .Values.serviceMonitor.enabled }}
{{- fail "serviceMonitor.enabled needs server.address: 0.0.0.0 (the pods use the host network; Prometheus cannot reach 127.0.0.1)" }}
{{- end }}
{{- if and (has "DynamicFile" (splitList " " (include "kube-iam-auth.backendModes" .))) (not .Values.server.dynamicfilepath) }}
{{- fail "server.backendMode has DynamicFile: set server.dynamicfilepath and mount the file with extraVolumes/extraVolumeMounts" }}
{{- end }}
{{- end }}

{{/*
config.yaml: clusterID, clusterIDs (when any) and the server block. Every key of .Values.server is passed through except
empty strings (unset: the server default applies); stateDir and generateKubeconfig are the host
paths, so `kube-iam-auth rotate-caller-key --config ...` in the pod finds the same files.
*/}}
{{- define "kube-iam-auth.config" -}}
{{- $server := dict }}
{{- range $key, $value := .Values.server }}
{{- if ne (toString $value) "" }}
{{- $_ := set $server $key $value }}
{{- end }}
{{- end }}
{{- $_ := set $server "stateDir" .Values.hostPaths.stateDir }}
{{- $_ := set $server "generateKubeconfig" (include "kube-iam-auth.kubeconfigPath" .) }}
{{- $clusterID := required "clusterID is required: the cluster ID tokens are bound to (kube-iam-auth token -i <clusterID>)" .Values.clusterID | toString }}
{{- $config := dict "clusterID" $clusterID "server" $server }}
{{- if .Values.clusterIDs }}
{{- $_ := set $config "clusterIDs" .Values.clusterIDs }}
{{- end }}
{{- toYaml $config }}
{{- end }}
