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

{{/* The hub-managed services' ports a peer reaches, as name: port, for the NetworkPolicies:
     (dict "root" $ "peer" "proxy"|"hub"|"servers"). The proxy routes every service with a
     page that is on (usage page, datasets catalogue, announcements); the hub's own pod calls
     them too (their health at start, the announcements banner); members' servers are given
     the address of the catalogue and announcements only (hub_config ServiceSpec.server_url_env). */}}
{{- define "aistudio.servicePortsFor" -}}
{{- $cfg := include "aistudio.studioConfig" .root | fromYaml }}
{{- $peer := .peer }}
{{- $ports := dict }}
{{- range $name, $port := (include "aistudio.servicePorts" .root | fromYaml) }}
{{- $on := or (eq $name "usage") (get (get $cfg $name | default dict) "enabled") }}
{{- if and $on (or (ne $peer "servers") (ne $name "usage")) }}
{{- $_ := set $ports $name $port }}
{{- end }}
{{- end }}
{{- toYaml $ports }}
{{- end }}

{{/* The studio's login: studio auth.type, else oidc when auth.oidc names its provider
     (issuer or authorize_url), else demo. */}}
{{- define "aistudio.authType" -}}
{{- $auth := .Values.studio.auth | default dict }}
{{- $oidc := $auth.oidc | default dict }}
{{- $auth.type | default (ternary "oidc" "demo" (or (not (empty $oidc.issuer)) (not (empty $oidc.authorize_url)))) }}
{{- end }}

{{/* The studio config (aistudio.yaml): .Values.studio plus what the chart decides.
     profiles_dir is relative to the config file: /etc/aistudio/profiles. */}}
{{- define "aistudio.studioConfig" -}}
{{- $studio := deepCopy (.Values.studio | default dict) }}
{{- /* every service on unless the values turn it off: the idle culler, announcements, datasets */}}
{{- range $section := list "culler" "announcements" "datasets" }}
{{- $s := deepCopy (get $studio $section | default dict) }}
{{- if not (hasKey $s "enabled") }}{{ $_ := set $s "enabled" true }}{{ end }}
{{- $_ := set $studio $section $s }}
{{- end }}
{{- /* OpenID Connect login once its provider is given (aistudio.authType) */}}
{{- $auth := deepCopy (get $studio "auth" | default dict) }}
{{- $_ := set $auth "type" (include "aistudio.authType" .) }}
{{- $_ := set $studio "auth" $auth }}
{{- /* the datasets of datasets.register (datasets.yaml beside this file) and where the hub sees their sources */}}
{{- $ds := get $studio "datasets" }}
{{- $_ := set $ds "manifests" (concat ($ds.manifests | default list) (list "datasets.yaml")) }}
{{- $_ := set $ds "source_views" (include "aistudio.datasetSourceViews" . | fromYaml).views }}
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
{{- /* the members' environments run in the images built from their requirement files */}}
{{- $envs := deepCopy (get $studio "environments" | default dict) }}
{{- $available := get $envs "available" | default dict }}
{{- range $name, $image := dict "data-science" .Values.singleuser.images.cpu "deep-learning" .Values.singleuser.images.gpu }}
{{- $_ := set $available $name (merge (dict "image" (include "aistudio.image" $image)) (get $available $name | default dict)) }}
{{- end }}
{{- $_ := set $envs "available" $available }}
{{- $_ := set $studio "environments" $envs }}
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
{{- $images = append $images (include "aistudio.image" .Values.singleuser.images.gpu) }}
{{- end }}
{{- $images = concat $images .Values.prePuller.extraImages }}
{{- toYaml (uniq $images | sortAlpha) }}
{{- end }}

{{/* Datasets ----------------------------------------------------------------- */}}

{{/* Where the hub's pod sees the dataset sources (datasets.sources), read-only: ROOT/NAME. */}}
{{- define "aistudio.datasetsHubRoot" -}}/srv/aistudio/datasets{{- end }}

{{/* The hub's volume of the source NAME: (dict "name" NAME). */}}
{{- define "aistudio.datasetSourceVolume" -}}dataset-source-{{ .name }}{{- end }}

{{/* (list BASE SUB): BASE/SUB, or BASE when SUB is empty. */}}
{{- define "aistudio.joinPath" -}}
{{- $base := index . 0 }}
{{- $sub := index . 1 }}
{{- if $sub }}{{ printf "%s/%s" (trimSuffix "/" $base) $sub }}{{ else }}{{ $base }}{{ end }}
{{- end }}

{{/* Studio datasets.source_views: where the hub sees each source, {views: [...]}. */}}
{{- define "aistudio.datasetSourceViews" -}}
{{- $views := list }}
{{- range $name, $src := .Values.datasets.sources }}
{{- $path := printf "%s/%s" (include "aistudio.datasetsHubRoot" $) $name }}
{{- if $src.pvc }}
{{- $view := dict "kind" "pvc" "claim" $src.pvc.claimName "path" $path }}
{{- with trimAll "/" ($src.pvc.subPath | default "") }}{{ $_ := set $view "source_path" . }}{{ end }}
{{- $views = append $views $view }}
{{- else if $src.nfs }}
{{- $views = append $views (dict "kind" "nfs" "server" $src.nfs.server "source_path" $src.nfs.path "path" $path) }}
{{- else }}
{{- $views = append $views (dict "kind" "hostpath" "source_path" $src.hostPath.path "path" $path) }}
{{- end }}
{{- end }}
{{- toYaml (dict "views" $views) }}
{{- end }}

{{/* datasets.yaml: datasets.register as a dataset manifest (docs/datasets.md), registered by
     the catalogue service when the hub starts (studio datasets.manifests). Each source is
     the registry's (pvc claim and sub-path, NFS server and path, host path); the hub finds
     the files through datasets.source_views. */}}
{{- define "aistudio.datasetsManifest" -}}
{{- $sources := .Values.datasets.sources | default dict }}
{{- $out := list }}
{{- $seen := dict }}
{{- range $i, $d := .Values.datasets.register | default list }}
{{- $key := printf "datasets.register[%d]" $i }}
{{- if hasKey $seen $d.name }}
{{- fail (printf "%s.name: %s is registered twice (also datasets.register[%v])" $key $d.name (get $seen $d.name)) }}
{{- end }}
{{- $_ := set $seen $d.name $i }}
{{- if not (hasKey $sources $d.source) }}
{{- fail (printf "%s.source: %q is not one of datasets.sources (%s)" $key $d.source (keys $sources | sortAlpha | join ", " | default "none are defined")) }}
{{- end }}
{{- $src := get $sources $d.source }}
{{- $sub := trimAll "/" ($d.subPath | default "") }}
{{- $source := dict }}
{{- if $src.pvc }}
{{- $source = dict "kind" "pvc" "claim" $src.pvc.claimName }}
{{- with list (trimAll "/" ($src.pvc.subPath | default "")) $sub | compact | join "/" }}{{ $_ := set $source "source_path" . }}{{ end }}
{{- else if $src.nfs }}
{{- $source = dict "kind" "nfs" "server" $src.nfs.server "source_path" (include "aistudio.joinPath" (list $src.nfs.path $sub)) }}
{{- else }}
{{- $source = dict "kind" "hostpath" "source_path" (include "aistudio.joinPath" (list $src.hostPath.path $sub)) }}
{{- end }}
{{- $entry := dict "name" $d.name "source" $source }}
{{- range $k := list "title" "description" "steward" "licence" "terms" "version" "tags" "deidentification" "quasi_identifiers" "min_k" "publish" "override_reason" "grants" }}
{{- if hasKey $d $k }}{{ $_ := set $entry $k (get $d $k) }}{{ end }}
{{- end }}
{{- $out = append $out $entry }}
{{- end }}
# A dataset manifest, rendered by the aistudio Helm chart from datasets.register and
# registered when the hub starts (studio datasets.manifests): datasets not in the
# registry yet are added, scanned, published and granted; later changes are the stewards'.
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
