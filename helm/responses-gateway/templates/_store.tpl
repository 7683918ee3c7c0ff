{{/*
The response store and the metrics endpoint: what the chart renders into `gateway_settings`, and the
rules that refuse a deployment that cannot work (templates/validate.yaml runs them on every render).
*/}}

{{/* The variable the postgres / redis URL reaches the gateway in (`url: os.environ/<it>`). */}}
{{- define "responses-gateway.storeUrlEnv" -}}
RESPONSES_GATEWAY_STORE_URL
{{- end -}}

{{/* "true" when the store is SQLite on a PersistentVolumeClaim, else empty. */}}
{{- define "responses-gateway.sqliteClaim" -}}
{{- if and (eq (toString .Values.store.type) "sqlite") .Values.store.sqlite.persistence.enabled -}}
true
{{- end -}}
{{- end -}}

{{/* Where the data volume is mounted: the directory of the SQLite file. */}}
{{- define "responses-gateway.dataMountPath" -}}
{{- dir .Values.store.sqlite.path -}}
{{- end -}}

{{/* gateway_settings.store as the chart renders it: the user's other keys (probe_seconds...) kept. */}}
{{- define "responses-gateway.storeSettings" -}}
{{- $v := .Values -}}
{{- $gs := default (dict) $v.config.gateway_settings -}}
{{- $store := deepCopy (default (dict) $gs.store) -}}
{{- $_ := set $store "type" $v.store.type -}}
{{- if eq (toString $v.store.type) "sqlite" -}}
{{- $_ := set $store "path" $v.store.sqlite.path -}}
{{- else -}}
{{- $_ := set $store "url" (printf "os.environ/%s" (include "responses-gateway.storeUrlEnv" .)) -}}
{{- end -}}
{{- with $v.store.ttl -}}
{{- $_ := set $store "ttl" . -}}
{{- end -}}
{{- with $v.store.leaseSeconds -}}
{{- $_ := set $store "lease_seconds" . -}}
{{- end -}}
{{- toYaml $store -}}
{{- end -}}

{{/* gateway_settings.metrics as the chart renders it. */}}
{{- define "responses-gateway.metricsSettings" -}}
{{- $metrics := dict "require_key" .Values.metrics.requireKey -}}
{{- if ne (toString .Values.metrics.port) "" -}}
{{- $_ := set $metrics "port" (int .Values.metrics.port) -}}
{{- end -}}
{{- toYaml $metrics -}}
{{- end -}}

{{/* The environment variable with the store URL, from store.url's Secret (postgres / redis only). */}}
{{- define "responses-gateway.storeEnv" -}}
{{- if ne (toString .Values.store.type) "sqlite" }}
- name: {{ include "responses-gateway.storeUrlEnv" . }}
  valueFrom:
    secretKeyRef:
      name: {{ tpl .Values.store.url.secretName . }}
      key: {{ .Values.store.url.secretKey }}
{{- end }}
{{- end -}}

{{/* Every rule a render must pass; each failure says what to set. */}}
{{- define "responses-gateway.validate" -}}
{{- $v := .Values -}}
{{- $gs := default (dict) $v.config.gateway_settings -}}
{{- $userStore := default (dict) $gs.store -}}
{{- $owned := dict "type" "store.type" "path" "store.sqlite.path" "url" "store.url.secretName and store.url.secretKey" "ttl" "store.ttl" "lease_seconds" "store.leaseSeconds" -}}
{{- range $key := keys $owned | sortAlpha }}
{{- if hasKey $userStore $key }}
{{- fail (printf "config.gateway_settings.store.%s is rendered by the chart from its store values: remove it and set %s instead" $key (get $owned $key)) }}
{{- end }}
{{- end }}
{{- if hasKey $gs "metrics" }}
{{- fail "config.gateway_settings.metrics is rendered by the chart (the ServiceMonitor and the ports depend on it): remove it and set metrics.port and metrics.requireKey instead" }}
{{- end }}

{{- $type := toString $v.store.type }}
{{- if and (ne $type "sqlite") (not $v.store.url.secretName) }}
{{- fail (printf "store.type=%s reads its URL from a Secret: set store.url.secretName to an existing Secret holding the %s URL (key store.url.secretKey, default \"url\")" $type $type) }}
{{- end }}

{{- if eq (toString $v.mode) "service" }}
{{- if eq $type "sqlite" }}
{{- $why := "each replica would keep its own SQLite file (responses made on one would be unknown to the others), and a ReadWriteOnce volume mounts in one pod only" }}
{{- if $v.autoscaling.enabled }}
{{- fail (printf "autoscaling.enabled=true with store.type=sqlite: %s. Set autoscaling.enabled=false, or a shared store: store.type=postgres or store.type=redis with store.url.secretName" $why) }}
{{- end }}
{{- if gt (int $v.replicaCount) 1 }}
{{- fail (printf "replicaCount=%d with store.type=sqlite: %s. Set replicaCount=1, or a shared store: store.type=postgres or store.type=redis with store.url.secretName" (int $v.replicaCount) $why) }}
{{- end }}
{{- end }}
{{- if and (include "responses-gateway.sqliteClaim" .) $v.updateStrategy (ne (toString $v.updateStrategy.type) "Recreate") }}
{{- fail (printf "updateStrategy.type=%s with SQLite on a PersistentVolumeClaim: the new pod would wait for the volume the old pod holds, and the old pod is only removed once the new one is ready. Set updateStrategy.type=Recreate (or leave updateStrategy empty), or store.sqlite.persistence.enabled=false" (toString $v.updateStrategy.type)) }}
{{- end }}
{{- end }}

{{- if ne (toString $v.metrics.port) "" }}
{{- if has (int $v.metrics.port) (list (int $v.containerPorts.grpc) (int $v.containerPorts.http)) }}
{{- fail (printf "metrics.port=%d is already containerPorts.grpc or containerPorts.http: give the metrics a port of their own, or leave metrics.port empty to serve them on the http port" (int $v.metrics.port)) }}
{{- end }}
{{- end }}
{{- if and (eq (toString $v.mode) "service") $v.metrics.serviceMonitor.enabled $v.metrics.requireKey (not $v.metrics.serviceMonitor.authorization.secretName) }}
{{- fail "metrics.requireKey=true: Prometheus must send the master key to scrape /metrics. Set metrics.serviceMonitor.authorization.secretName (and .secretKey) to a Secret holding it, or metrics.requireKey=false" }}
{{- end }}
{{- end -}}

{{/*
For an application chart that runs the gateway as a sidecar: the chart cannot see how many pods the
application runs, so the application's pod template asserts it. Takes a dict: ctx = the dependency's
scope, replicas = the application's replica count, autoscaling = whether an HPA scales it, values = how
the application's values name the dependency (default "responses-gateway"), for the message.
*/}}
{{- define "responses-gateway.checkSidecarReplicas" -}}
{{- $v := .ctx.Values -}}
{{- $p := default "responses-gateway" .values -}}
{{- if eq (toString $v.store.type) "sqlite" }}
{{- $why := printf "every pod's gateway sidecar would keep its own SQLite file (responses made in one pod would be unknown in the others). Set %s.store.type=postgres or redis with %s.store.url.secretName" $p $p }}
{{- if .autoscaling }}
{{- fail (printf "the application is autoscaled and %s.store.type=sqlite: %s, or stop autoscaling" $p $why) }}
{{- end }}
{{- if gt (int .replicas) 1 }}
{{- fail (printf "%d application replicas and %s.store.type=sqlite: %s, or run one replica" (int .replicas) $p $why) }}
{{- end }}
{{- end }}
{{- end -}}
