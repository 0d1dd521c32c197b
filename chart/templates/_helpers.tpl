{{/* Names ------------------------------------------------------------------ */}}

{{- define "aistudio.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "aistudio.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := .Values.nameOverride | default .Chart.Name }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "aistudio.hubName" -}}{{ include "aistudio.fullname" . }}-hub{{- end }}
{{- define "aistudio.proxyName" -}}{{ include "aistudio.fullname" . }}-proxy{{- end }}
{{- define "aistudio.proxyApiName" -}}{{ include "aistudio.fullname" . }}-proxy-api{{- end }}
{{- define "aistudio.proxyPublicName" -}}{{ include "aistudio.fullname" . }}-proxy-public{{- end }}
{{- define "aistudio.secretName" -}}{{ .Values.hub.existingSecret | default (include "aistudio.hubName" .) }}{{- end }}

{{/* Labels: pass (dict "root" $ "component" "hub") ----------------------------- */}}

{{- define "aistudio.selectorLabels" -}}
app.kubernetes.io/name: {{ include "aistudio.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "aistudio.labels" -}}
{{ include "aistudio.selectorLabels" . }}
app.kubernetes.io/part-of: aistudio
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end }}

{{/* Members' server pods, as KubeSpawner labels them (hub_config/configurer.py
     kube_spawner_traitlets adds app.kubernetes.io/part-of: aistudio). */}}
{{- define "aistudio.singleuserSelector" -}}
component: singleuser-server
app.kubernetes.io/part-of: aistudio
{{- end }}

{{- define "aistudio.image" -}}{{ .name }}:{{ .tag }}{{- end }}

{{/* Ports of the hub-managed services in the hub pod (studio sections usage, datasets, announcements). */}}
{{- define "aistudio.servicePorts" -}}
usage: 8010
datasets: 8011
announcements: 8012
{{- end }}

{{/* The studio config (aistudio.yaml): .Values.studio plus what the chart decides.
     profiles_dir is relative to the config file: /etc/aistudio/profiles. */}}
{{- define "aistudio.studioConfig" -}}
{{- $studio := deepCopy (.Values.studio | default dict) }}
{{- $hub := dict "ip" "0.0.0.0" "port" 8000 "hub_port" 8081 "proxy_api_port" 8001 }}
{{- $_ := set $hub "proxy_api_url" (printf "http://%s:8001" (include "aistudio.proxyApiName" .)) }}
{{- $_ := set $hub "base_url" .Values.hub.baseUrl }}
{{- /* hub-managed services listen in the hub pod; the proxy and servers reach them through the hub Service */}}
{{- $_ := set $hub "services_host" (include "aistudio.hubName" .) }}
{{- range $section, $port := (include "aistudio.servicePorts" . | fromYaml) }}
{{- $s := deepCopy (get $studio $section | default dict) }}
{{- $_ := set $s "service_port" $port }}
{{- $_ := set $studio $section $s }}
{{- end }}
{{- if eq .Values.hub.db.type "postgres" }}
{{- $_ := set $hub "db_url" (required "hub.db.url: the SQLAlchemy URL of the PostgreSQL database is required with hub.db.type postgres" .Values.hub.db.url) }}
{{- end }}
{{- $kube := deepCopy (get $studio "kubernetes" | default dict) }}
{{- $_ := set $kube "namespace" .Release.Namespace }}
{{- $_ := set $kube "hub_connect_url" (printf "http://%s:8081" (include "aistudio.hubName" .)) }}
{{- if .Values.singleuser.images.override }}
{{- $_ := set $kube "default_image" (include "aistudio.image" .Values.singleuser.images.cpu) }}
{{- end }}
{{- $_ := set $studio "kubernetes" $kube }}
{{- $_ := set $studio "hub" $hub }}
{{- $_ := set $studio "mode" "kubernetes" }}
{{- $_ := set $studio "data_dir" "/srv/aistudio/data" }}
{{- $_ := set $studio "profiles_dir" "profiles" }}
# The studio config, rendered by the aistudio Helm chart from its values (studio:);
# the hub merges it over hub_config/defaults.yaml.
{{ toYaml $studio }}
{{- end }}

{{/* The profile files: a YAML map file name -> file text. */}}
{{- define "aistudio.profileFiles" -}}
{{- $files := dict }}
{{- if .Values.profiles.shipped }}
{{- range $path, $bytes := .Files.Glob "files/profiles/*.yaml" }}
{{- $_ := set $files (base $path) ($.Files.Get $path) }}
{{- end }}
{{- end }}
{{- range $name, $content := .Values.profiles.files }}
{{- if kindIs "invalid" $content }}
{{- $_ := unset $files $name }}
{{- else }}
{{- $_ := set $files $name (toYaml $content) }}
{{- end }}
{{- end }}
{{- if .Values.singleuser.images.override }}
{{- $cpu := include "aistudio.image" .Values.singleuser.images.cpu }}
{{- $gpu := include "aistudio.image" .Values.singleuser.images.gpu }}
{{- range $name, $text := deepCopy $files }}
{{- $doc := fromYaml $text }}
{{- if hasKey $doc "profiles" }}
{{- range $doc.profiles }}
{{- $_ := set . "image" (ternary $gpu $cpu (gt (int (.resources.gpus | default 0)) 0)) }}
{{- end }}
{{- $_ := set $files $name (printf "# %s, with the images of singleuser.images (override: true)\n%s" $name (toYaml $doc)) }}
{{- end }}
{{- end }}
{{- end }}
{{- toYaml $files }}
{{- end }}

{{/* Images the pre-puller pulls: those of the profiles, the default, extraImages. */}}
{{- define "aistudio.prePullImages" -}}
{{- $images := list }}
{{- range $name, $text := fromYaml (include "aistudio.profileFiles" .) }}
{{- range (get (fromYaml $text) "profiles" | default list) }}
{{- with .image }}{{ $images = append $images . }}{{ end }}
{{- end }}
{{- end }}
{{- with (get (.Values.studio | default dict) "kubernetes") }}
{{- with .default_image }}{{ $images = append $images . }}{{ end }}
{{- end }}
{{- if .Values.singleuser.images.override }}
{{- $images = append $images (include "aistudio.image" .Values.singleuser.images.cpu) }}
{{- end }}
{{- $images = concat $images .Values.prePuller.extraImages }}
{{- toYaml (uniq $images | sortAlpha) }}
{{- end }}

{{/* Datasets as the hub gets them: the values plus Kubernetes volume and mount. */}}
{{- define "aistudio.datasets" -}}
{{- $out := list }}
{{- range .Values.datasets }}
{{- $readOnly := ternary .readOnly true (hasKey . "readOnly") }}
{{- $volume := dict "name" (printf "dataset-%s" .name) }}
{{- if .pvc }}
{{- $_ := set $volume "persistentVolumeClaim" (dict "claimName" .pvc.claimName "readOnly" $readOnly) }}
{{- else }}
{{- $_ := set $volume "nfs" (dict "server" .nfs.server "path" .nfs.path "readOnly" $readOnly) }}
{{- end }}
{{- $mount := dict "name" (printf "dataset-%s" .name) "mountPath" .mountPath "readOnly" $readOnly }}
{{- $entry := dict "name" .name "description" (.description | default "") "groups" (.groups | default list) "mountPath" .mountPath "readOnly" $readOnly "volume" $volume "volumeMount" $mount }}
{{- $out = append $out $entry }}
{{- end }}
# Shared datasets from the chart's values (datasets:). Not read by the hub yet:
# this release mounts no dataset into members' servers.
{{ toYaml (dict "datasets" $out) }}
{{- end }}

{{/* The chart's additions to the hub's JupyterHub config (files/jupyterhub_config.py). */}}
{{- define "aistudio.hubChartConfig" -}}
# Read by /etc/aistudio/jupyterhub_config.py: hub-managed services from hub.services.
{{ toYaml (dict "services" .Values.hub.services) }}
{{- end }}

{{/* A random hex secret kept across upgrades: (dict "root" $ "key" "cookie-secret" "value" .Values...) */}}
{{- define "aistudio.secretValue" -}}
{{- if .value }}
{{- .value }}
{{- else }}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace (include "aistudio.hubName" .root) }}
{{- if and $existing (hasKey ($existing.data | default dict) .key) }}
{{- index $existing.data .key | b64dec }}
{{- else }}
{{- randAlphaNum 64 | sha256sum }}
{{- end }}
{{- end }}
{{- end }}

{{/* A file's text as the body of a block scalar under a key of a ConfigMap's data:
     indented by 4, without trailing blanks (yamllint-clean). */}}
{{- define "aistudio.fileBlock" -}}
{{- regexReplaceAll "(?m)[ \t]+$" (nindent 4 (trim .)) "" }}
{{- end }}
