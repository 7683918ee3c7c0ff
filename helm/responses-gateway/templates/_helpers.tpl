{{/*
Names, labels and the pieces of the gateway container shared by the Deployment (mode=service) and by
the sidecar helpers that an application chart includes (mode=sidecar). Every helper that takes `.`
expects a chart scope: this chart's own, or `(index .Subcharts "responses-gateway")` from a parent chart.
*/}}

{{/* Chart name, overridable with nameOverride. */}}
{{- define "responses-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified app name: release-chart, unless the release name already contains the chart name. */}}
{{- define "responses-gateway.fullname" -}}
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

{{/* chart-version, as used by the helm.sh/chart label. */}}
{{- define "responses-gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "responses-gateway.labels" -}}
helm.sh/chart: {{ include "responses-gateway.chart" . }}
{{ include "responses-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: gateway
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels: stable across upgrades, never add mutable labels here. */}}
{{- define "responses-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "responses-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Annotations on every object (may be empty). */}}
{{- define "responses-gateway.annotations" -}}
{{- with .Values.commonAnnotations }}
{{- toYaml . }}
{{- end }}
{{- end -}}

{{/* The ServiceAccount the pods run as. */}}
{{- define "responses-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "responses-gateway.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* image reference: repository:tag, or repository@digest when a digest is given. */}}
{{- define "responses-gateway.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) -}}
{{- end -}}
{{- end -}}

{{/* Name of the ConfigMap holding the gateway config: the chart's own or existingConfigMap. */}}
{{- define "responses-gateway.configMapName" -}}
{{- if .Values.existingConfigMap -}}
{{- tpl .Values.existingConfigMap . -}}
{{- else -}}
{{- include "responses-gateway.fullname" . -}}
{{- end -}}
{{- end -}}

{{/* The gateway config file as rendered into the chart's ConfigMap: `config` plus the store and metrics
sections rendered from `store.*` and `metrics.*` (_store.tpl), which the chart's own objects depend on. */}}
{{- define "responses-gateway.configYaml" -}}
{{- $config := deepCopy .Values.config -}}
{{- $gs := deepCopy (default (dict) .Values.config.gateway_settings) -}}
{{- $_ := set $gs "store" (include "responses-gateway.storeSettings" . | fromYaml) -}}
{{- $_ := set $gs "metrics" (include "responses-gateway.metricsSettings" . | fromYaml) -}}
{{- $_ := set $config "gateway_settings" $gs -}}
{{- toYaml $config -}}
{{- end -}}

{{/*
Checksum of the rendered config, as a pod annotation: a config change rolls the pods. With
existingConfigMap the chart cannot see the content; roll the pods yourself (or set podAnnotations).
*/}}
{{- define "responses-gateway.configChecksum" -}}
{{- if not .Values.existingConfigMap -}}
checksum/gateway-config: {{ include "responses-gateway.configYaml" . | sha256sum }}
{{- end -}}
{{- end -}}

{{/* Full path of the config file inside the container. */}}
{{- define "responses-gateway.configPath" -}}
{{- printf "%s/gateway.yaml" (trimSuffix "/" .Values.configMountPath) -}}
{{- end -}}

{{/* Name of the PersistentVolumeClaim holding the SQLite file (store.sqlite.persistence). */}}
{{- define "responses-gateway.claimName" -}}
{{- if .Values.store.sqlite.persistence.existingClaim -}}
{{- tpl .Values.store.sqlite.persistence.existingClaim . -}}
{{- else -}}
{{- printf "%s-data" (include "responses-gateway.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/*
Probe handler: kubelet probes the pod IP, so a server bound to loopback (the sidecar) cannot be probed
with `grpc:`; it is then probed from inside the container with the gRPC health client in the image.
*/}}
{{- define "responses-gateway.probeHandler" -}}
{{- $ctx := .ctx -}}
{{- $probe := .probe -}}
{{- $host := .host -}}
{{- $handler := $ctx.Values.probes.handler -}}
{{- if eq $handler "auto" -}}
{{- $handler = ternary "exec" "grpc" (or (hasPrefix "127." $host) (eq $host "localhost") (eq $host "::1")) -}}
{{- end -}}
{{- if eq $handler "grpc" -}}
grpc:
  port: {{ $ctx.Values.containerPorts.grpc }}
  {{- if $probe.service }}
  service: {{ $probe.service | quote }}
  {{- end }}
{{- else -}}
{{- $target := printf "%s:%v" (ternary "127.0.0.1" $host (or (eq $host "0.0.0.0") (eq $host "::"))) $ctx.Values.containerPorts.grpc -}}
{{- $deadline := max 1 (sub (int $probe.timeoutSeconds) 1) -}}
exec:
  command:
    - python
    - -c
    - "import sys,grpc;from grpc_health.v1 import health_pb2 as h,health_pb2_grpc as g;r=g.HealthStub(grpc.insecure_channel(sys.argv[1])).Check(h.HealthCheckRequest(service=sys.argv[2]),timeout=float(sys.argv[3]));sys.exit(0 if r.status==h.HealthCheckResponse.SERVING else 1)"
    - {{ $target | quote }}
    - {{ $probe.service | default "" | quote }}
    - {{ $deadline | quote }}
{{- end -}}
{{- end -}}

{{/* One probe: handler plus timings; .ctx = chart scope, .host = listen host, .probe = its values. */}}
{{- define "responses-gateway.probe" -}}
{{ include "responses-gateway.probeHandler" . }}
initialDelaySeconds: {{ .probe.initialDelaySeconds }}
periodSeconds: {{ .probe.periodSeconds }}
timeoutSeconds: {{ .probe.timeoutSeconds }}
failureThreshold: {{ .probe.failureThreshold }}
successThreshold: {{ .probe.successThreshold }}
{{- end -}}

{{/* Arguments after the image ENTRYPOINT (`responses-gateway`); .ctx = chart scope, .host = listen host. */}}
{{- define "responses-gateway.args" -}}
{{- $ctx := .ctx -}}
- serve
- --config
- {{ include "responses-gateway.configPath" $ctx | quote }}
- --host
- {{ .host | quote }}
- --grpc-port
- {{ $ctx.Values.containerPorts.grpc | quote }}
- --http-port
- {{ $ctx.Values.containerPorts.http | quote }}
- --grace
- {{ include "responses-gateway.shutdownGrace" $ctx | quote }}
- --log-level
- {{ $ctx.Values.server.logLevel | quote }}
{{- /* Empty: the gateway's default, one worker per CPU the container may use (its cgroup quota). */}}
{{- with $ctx.Values.server.workers }}
- --workers
- {{ . | quote }}
{{- end }}
{{- range $ctx.Values.extraArgs }}
- {{ tpl (toString .) $ctx | quote }}
{{- end }}
{{- end -}}

{{/* Seconds the server drains in-flight calls after SIGTERM: inside the pod's grace period. */}}
{{- define "responses-gateway.shutdownGrace" -}}
{{- if ne (toString .Values.server.shutdownGraceSeconds) "" -}}
{{- .Values.server.shutdownGraceSeconds -}}
{{- else -}}
{{- max 1 (sub (int .Values.terminationGracePeriodSeconds) 5) -}}
{{- end -}}
{{- end -}}

{{/* Environment: the store URL (postgres / redis), provider keys from existingSecret (explicit mapping)
plus extraEnvVars. */}}
{{- define "responses-gateway.env" -}}
{{- if and .Values.secretEnv (not .Values.existingSecret) -}}
{{- fail "secretEnv maps variables to keys of existingSecret: set existingSecret too" -}}
{{- end -}}
{{- include "responses-gateway.storeEnv" . }}
{{- range $name, $key := .Values.secretEnv }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ tpl $.Values.existingSecret $ }}
      key: {{ $key }}
{{- end }}
{{- with .Values.extraEnvVars }}
{{ tpl (toYaml .) $ }}
{{- end }}
{{- end -}}

{{/* envFrom: every key of existingSecret as a variable (envFromSecret), plus extraEnvVarsSecret / CM. */}}
{{- define "responses-gateway.envFrom" -}}
{{- if and .Values.existingSecret .Values.envFromSecret }}
- secretRef:
    name: {{ tpl .Values.existingSecret . }}
{{- end }}
{{- with .Values.extraEnvVarsSecret }}
- secretRef:
    name: {{ tpl . $ }}
{{- end }}
{{- with .Values.extraEnvVarsCM }}
- configMapRef:
    name: {{ tpl . $ }}
{{- end }}
{{- end -}}

{{/* Volumes the gateway container mounts: config, data (SQLite only: emptyDir or PVC) and /tmp. */}}
{{- define "responses-gateway.volumes" -}}
- name: gateway-config
  configMap:
    name: {{ include "responses-gateway.configMapName" . }}
    items:
      - key: {{ ternary .Values.existingConfigMapKey "gateway.yaml" (not (empty .Values.existingConfigMap)) }}
        path: gateway.yaml
{{- if eq (toString .Values.store.type) "sqlite" }}
- name: gateway-data
  {{- if .Values.store.sqlite.persistence.enabled }}
  persistentVolumeClaim:
    claimName: {{ include "responses-gateway.claimName" . }}
  {{- else }}
  emptyDir:
    {{- with .Values.store.sqlite.persistence.emptyDirSizeLimit }}
    sizeLimit: {{ . }}
    {{- else }} {}
    {{- end }}
  {{- end }}
{{- end }}
- name: gateway-tmp
  emptyDir:
    {{- with .Values.tmpDirSizeLimit }}
    sizeLimit: {{ . }}
    {{- else }} {}
    {{- end }}
{{- end -}}

{{/* Mounts of the gateway container. */}}
{{- define "responses-gateway.volumeMounts" -}}
- name: gateway-config
  mountPath: {{ .Values.configMountPath }}
  readOnly: true
{{- if eq (toString .Values.store.type) "sqlite" }}
- name: gateway-data
  mountPath: {{ include "responses-gateway.dataMountPath" . }}
{{- end }}
- name: gateway-tmp
  mountPath: /tmp
{{- with .Values.extraVolumeMounts }}
{{ tpl (toYaml .) $ }}
{{- end }}
{{- end -}}

{{/*
The gateway container. Takes a dict: ctx = chart scope, sidecar = true to render the sidecar variant
(loopback host, no container ports, restartPolicy Always when sidecar.native).
*/}}
{{- define "responses-gateway.container" -}}
{{- $ctx := .ctx -}}
{{- $v := $ctx.Values -}}
{{- $host := .sidecar | ternary $v.sidecar.host $v.server.host -}}
- name: {{ .sidecar | ternary $v.sidecar.containerName "gateway" }}
  image: {{ include "responses-gateway.image" $ctx | quote }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  {{- if and .sidecar $v.sidecar.native }}
  restartPolicy: Always
  {{- end }}
  {{- with $v.command }}
  command: {{- tpl (toYaml .) $ctx | nindent 4 }}
  {{- end }}
  args: {{- include "responses-gateway.args" (dict "ctx" $ctx "host" $host) | nindent 4 }}
  {{- if not .sidecar }}
  ports:
    - name: grpc
      containerPort: {{ $v.containerPorts.grpc }}
      protocol: TCP
    - name: http
      containerPort: {{ $v.containerPorts.http }}
      protocol: TCP
    {{- if ne (toString $v.metrics.port) "" }}
    - name: metrics
      containerPort: {{ $v.metrics.port }}
      protocol: TCP
    {{- end }}
  {{- end }}
  {{- $env := include "responses-gateway.env" $ctx | trim }}
  {{- if $env }}
  env: {{- $env | nindent 4 }}
  {{- end }}
  {{- $envFrom := include "responses-gateway.envFrom" $ctx | trim }}
  {{- if $envFrom }}
  envFrom: {{- $envFrom | nindent 4 }}
  {{- end }}
  {{- if $v.startupProbe.enabled }}
  startupProbe: {{- include "responses-gateway.probe" (dict "ctx" $ctx "host" $host "probe" $v.startupProbe) | nindent 4 }}
  {{- end }}
  {{- if $v.livenessProbe.enabled }}
  livenessProbe: {{- include "responses-gateway.probe" (dict "ctx" $ctx "host" $host "probe" $v.livenessProbe) | nindent 4 }}
  {{- end }}
  {{- if $v.readinessProbe.enabled }}
  readinessProbe: {{- include "responses-gateway.probe" (dict "ctx" $ctx "host" $host "probe" $v.readinessProbe) | nindent 4 }}
  {{- end }}
  {{- with $v.lifecycleHooks }}
  lifecycle: {{- tpl (toYaml .) $ctx | nindent 4 }}
  {{- end }}
  {{- with $v.resources }}
  resources: {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.containerSecurityContext }}
  securityContext: {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts: {{- include "responses-gateway.volumeMounts" $ctx | nindent 4 }}
{{- end -}}

{{/*
Sidecar mode, for an application chart that depends on this one (alias or name "responses-gateway"):

  initContainers:   # native sidecar, Kubernetes >= 1.29 (sidecar.native: true)
    {{- include "responses-gateway.sidecarContainer" (index .Subcharts "responses-gateway") | nindent 8 }}
  containers:       # or here, as a plain container (sidecar.native: false)
  volumes:
    {{- include "responses-gateway.sidecarVolumes" (index .Subcharts "responses-gateway") | nindent 8 }}
  pod annotations:
    {{- include "responses-gateway.configChecksum" (index .Subcharts "responses-gateway") | nindent 8 }}

The application reaches the gateway at 127.0.0.1:<containerPorts.grpc> / <containerPorts.http>.
*/}}
{{- define "responses-gateway.sidecarContainer" -}}
{{- include "responses-gateway.container" (dict "ctx" . "sidecar" true) -}}
{{- end -}}

{{/* Volumes the sidecar needs in the application pod (names are prefixed gateway-). */}}
{{- define "responses-gateway.sidecarVolumes" -}}
{{- include "responses-gateway.volumes" . -}}
{{- end -}}
