{{/*
Shared pieces of the four workloads. A component is addressed by its values key
(producer, engine, lakeWriter, etl); its Kubernetes name is "<namePrefix>-<component name>".
*/}}

{{/* Component key (values) -> component name (labels, resource names, console script suffix). */}}
{{- define "airline.componentName" -}}
{{- $names := dict "producer" "producer" "engine" "engine" "lakeWriter" "lake-writer" "etl" "etl" -}}
{{- required (printf "unknown component %q" .) (get $names .) -}}
{{- end -}}

{{/* "<namePrefix>-<suffix>", e.g. include "airline.name" (list $ "engine") -> airline-engine */}}
{{- define "airline.name" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" $root.Values.namePrefix (index . 1) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The workload name of a component key. */}}
{{- define "airline.fullname" -}}
{{- $root := index . 0 -}}
{{- include "airline.name" (list $root (include "airline.componentName" (index . 1))) -}}
{{- end -}}

{{- define "airline.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels common to every object; pass (list $ "<component name>") or (list $ ""). */}}
{{- define "airline.labels" -}}
{{- $root := index . 0 -}}
helm.sh/chart: {{ include "airline.chart" $root }}
{{ include "airline.selectorLabels" . }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/part-of: airline-streaming
{{- end -}}

{{- define "airline.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: airline-streaming
app.kubernetes.io/instance: {{ $root.Release.Name }}
{{- with index . 1 }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end -}}

{{- define "airline.configMapName" -}}
{{- include "airline.name" (list . "config") -}}
{{- end -}}

{{- define "airline.secretName" -}}
{{- default (include "airline.name" (list . "credentials")) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "airline.lakeClaimName" -}}
{{- default (include "airline.name" (list . "lake")) .Values.lake.persistence.existingClaim -}}
{{- end -}}

{{/* Image reference of a component key. */}}
{{- define "airline.image" -}}
{{- $root := index . 0 -}}
{{- $image := (index $root.Values (index . 1)).image -}}
{{- printf "%s:%s" $image.repository (toString $image.tag) -}}
{{- end -}}

{{/*
The non-secret settings, grouped. The ConfigMap holds every non-empty one; a container gets a
configMapKeyRef for each key of the groups its component reads (airline.componentGroups) plus
its own `config`.
*/}}
{{- define "airline.configGroups" -}}
{{- $v := .Values -}}
kafka:
  KAFKA_BOOTSTRAP_SERVERS: {{ $v.kafka.bootstrapServers | quote }}
  KAFKA_SECURITY_PROTOCOL: {{ $v.kafka.securityProtocol | quote }}
  KAFKA_SASL_MECHANISM: {{ $v.kafka.saslMechanism | quote }}
  KAFKA_SASL_USERNAME: {{ $v.kafka.saslUsername | quote }}
  KAFKA_SSL_CA_LOCATION: {{ $v.kafka.sslCaLocation | quote }}
  KAFKA_SSL_CERTIFICATE_LOCATION: {{ $v.kafka.sslCertificateLocation | quote }}
  KAFKA_SSL_KEY_LOCATION: {{ $v.kafka.sslKeyLocation | quote }}
  KAFKA_TOPIC_PREFIX: {{ $v.kafka.topicPrefix | quote }}
log:
  LOG_FORMAT: {{ $v.log.format | quote }}
  LOG_LEVEL: {{ $v.log.level | quote }}
redis:
  REDIS_URL: {{ $v.redis.url | quote }}
lake:
  LAKE_DIR: {{ $v.lake.mountPath | quote }}
pushgateway:
  PUSHGATEWAY_URL: {{ $v.etl.pushgatewayUrl | quote }}
{{- end -}}

{{/* Which shared groups each component reads. */}}
{{- define "airline.componentGroups" -}}
producer: [kafka, log, redis]
engine: [kafka, log, redis]
lakeWriter: [kafka, log, lake]
etl: [log, lake, pushgateway]
{{- end -}}

{{/* ConfigMap data: every non-empty shared setting and every component's own config. */}}
{{- define "airline.configData" -}}
{{- $data := dict -}}
{{- range $group, $settings := fromYaml (include "airline.configGroups" .) -}}
{{- range $key, $value := $settings -}}
{{- if ne (toString $value) "" }}{{ $_ := set $data $key (toString $value) }}{{ end -}}
{{- end -}}
{{- end -}}
{{- range $component := list "producer" "engine" "lakeWriter" "etl" -}}
{{- range $key, $value := (index $.Values $component).config -}}
{{- $_ := set $data $key (toString $value) -}}
{{- end -}}
{{- end -}}
{{- toYaml $data -}}
{{- end -}}

{{/* env entries of a component key: ConfigMap refs, then component-specific values. */}}
{{- define "airline.env" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- $values := index $root.Values $component -}}
{{- $data := fromYaml (include "airline.configData" $root) -}}
{{- $groups := fromYaml (include "airline.configGroups" $root) -}}
{{- $keys := list -}}
{{- range $group := index (fromYaml (include "airline.componentGroups" $root)) $component -}}
{{- range $key, $_ := index $groups $group -}}
{{- if hasKey $data $key }}{{ $keys = append $keys $key }}{{ end -}}
{{- end -}}
{{- end -}}
{{- $keys = concat $keys (keys $values.config | sortAlpha) -}}
{{- range $key := $keys }}
- name: {{ $key }}
  valueFrom:
    configMapKeyRef:
      name: {{ include "airline.configMapName" $root }}
      key: {{ $key }}
{{- end }}
{{- if and (ne $component "etl") $root.Values.kafka.saslMechanism }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "airline.secretName" $root }}
      key: {{ $root.Values.secrets.keys.kafkaSaslPassword }}
{{- end }}
{{- if hasKey $values "metricsPort" }}
- name: METRICS_PORT
  value: {{ $values.metricsPort | quote }}
{{- end }}
{{- if hasKey $values "groupId" }}
- name: KAFKA_GROUP_ID
  value: {{ $values.groupId | quote }}
{{- end }}
{{- with $values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* checksum/config (and checksum/secret when the chart owns the Secret): a settings change
rolls the pods, since env from a ConfigMap is read only at container start. */}}
{{- define "airline.checksums" -}}
checksum/config: {{ include "airline.configData" . | sha256sum }}
{{- if not .Values.secrets.existingSecret }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
{{- end -}}

{{/*
The pod spec shared by every workload: (dict "root" $ "component" "engine" "lake" true
"probes" true "restartPolicy" "Always"). Holds the security contexts, the /tmp emptyDir, the lake
volume, the container with its command (the console script, as in the image ENTRYPOINT), env,
ports, probes and resources.
*/}}
{{- define "airline.podSpec" -}}
{{- $root := .root -}}
{{- $component := .component -}}
{{- $values := index $root.Values $component -}}
{{- $name := include "airline.componentName" $component -}}
{{- with $root.Values.image.pullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .restartPolicy }}
restartPolicy: {{ . }}
{{- end }}
{{- with $values.terminationGracePeriodSeconds }}
terminationGracePeriodSeconds: {{ . }}
{{- end }}
automountServiceAccountToken: false
enableServiceLinks: false
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
{{- with $values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
containers:
  - name: {{ $name }}
    image: {{ include "airline.image" (list $root $component) | quote }}
    imagePullPolicy: {{ $root.Values.image.pullPolicy }}
    command: [{{ printf "airline-%s" $name | quote }}]
    {{- with $values.args }}
    args:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    env:
      {{- include "airline.env" (list $root $component) | trim | nindent 6 }}
      {{- if eq $component "etl" }}
      - name: DATABASE_URL
        valueFrom:
          secretKeyRef:
            name: {{ include "airline.secretName" $root }}
            key: {{ $root.Values.secrets.keys.databaseUrl }}
      {{- end }}
      {{- if eq $component "engine" }}
      - name: KAFKA_GROUP_INSTANCE_ID
        valueFrom:
          fieldRef:
            fieldPath: metadata.name
      {{- end }}
    {{- if .probes }}
    ports:
      - name: metrics
        containerPort: {{ $values.metricsPort }}
        protocol: TCP
    startupProbe:
      httpGet: {path: /healthz, port: metrics}
      {{- toYaml $root.Values.probes.startup | nindent 6 }}
    livenessProbe:
      httpGet: {path: /healthz, port: metrics}
      {{- toYaml $root.Values.probes.liveness | nindent 6 }}
    readinessProbe:
      httpGet: {path: /readyz, port: metrics}
      {{- toYaml $root.Values.probes.readiness | nindent 6 }}
    {{- end }}
    resources:
      {{- toYaml $values.resources | nindent 6 }}
    securityContext:
      {{- toYaml $root.Values.containerSecurityContext | nindent 6 }}
    volumeMounts:
      - name: tmp
        mountPath: /tmp
      {{- if .lake }}
      - name: lake
        mountPath: {{ $root.Values.lake.mountPath }}
      {{- end }}
      {{- with $root.Values.extraVolumeMounts }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: {{ $root.Values.tmpSizeLimit }}
  {{- if .lake }}
  - name: lake
    persistentVolumeClaim:
      claimName: {{ include "airline.lakeClaimName" $root }}
  {{- end }}
  {{- with $root.Values.extraVolumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}
