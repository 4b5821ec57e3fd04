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

{{/* The ConfigMap of a component key: <workload name>-config. */}}
{{- define "airline.configMapName" -}}
{{- $root := index . 0 -}}
{{- printf "%s-config" (include "airline.fullname" (list $root (index . 1))) -}}
{{- end -}}

{{/* The ServiceAccount of a component key. */}}
{{- define "airline.serviceAccountName" -}}
{{- $root := index . 0 -}}
{{- $sa := (index $root.Values (index . 1)).serviceAccount -}}
{{- if $sa.create -}}
{{- default (include "airline.fullname" (list $root (index . 1))) $sa.name -}}
{{- else -}}
{{- default "default" $sa.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the chart's credentials (its own, or secrets.existingSecret). */}}
{{- define "airline.secretName" -}}
{{- default (include "airline.name" (list . "credentials")) .Values.secrets.existingSecret -}}
{{- end -}}

{{/*
Secret references of a component key, as YAML {ENV: {name, key, value}}: DATABASE_URL for the
ETL (database.existingSecret, else the chart's Secret), KAFKA_SASL_PASSWORD for the services
when SASL is on. `value` (refs into the chart's Secret only) names the secrets.* value that
fills the key; the chart renders its own Secret only when some ref has one.
*/}}
{{- define "airline.secretRefs" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- $v := $root.Values -}}
{{- if eq $component "etl" }}
{{- if $v.database.existingSecret }}
DATABASE_URL: {name: {{ $v.database.existingSecret | quote }}, key: {{ $v.database.uriKey | quote }}}
{{- else }}
DATABASE_URL: {name: {{ include "airline.secretName" $root | quote }}, key: {{ $v.secrets.keys.databaseUrl | quote }}, value: databaseUrl}
{{- end }}
{{- else if and $v.kafka.saslMechanism $v.kafka.users.create }}
KAFKA_SASL_PASSWORD: {name: {{ index $v.kafka.users.names $component | quote }}, key: "password"}
{{- else if $v.kafka.saslMechanism }}
KAFKA_SASL_PASSWORD: {name: {{ include "airline.secretName" $root | quote }}, key: {{ $v.secrets.keys.kafkaSaslPassword | quote }}, value: kafkaSaslPassword}
{{- end }}
{{- end -}}

{{/*
The data of the chart's own Secret, as YAML: the values of every enabled component's secret
references that point at it. Empty when the chart needs no Secret (secrets.existingSecret set,
or nothing refers to it).
*/}}
{{- define "airline.secretData" -}}
{{- $root := . -}}
{{- $data := dict -}}
{{- if not .Values.secrets.existingSecret -}}
{{- range $component := list "producer" "engine" "lakeWriter" "etl" -}}
{{- if (index $root.Values $component).enabled -}}
{{- range $env, $ref := fromYaml (include "airline.secretRefs" (list $root $component)) -}}
{{- if $ref.value -}}
{{- $value := index $root.Values.secrets $ref.value -}}
{{- if eq $ref.value "databaseUrl" -}}
{{- $value = required "secrets.databaseUrl is required when database.existingSecret and secrets.existingSecret are empty" $value -}}
{{- end -}}
{{- $_ := set $data $ref.key (toString $value) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if $data }}{{ toYaml $data }}{{ end -}}
{{- end -}}

{{/* The Kafka cluster's namespace, where the KafkaTopics go (see kafka.namespace). */}}
{{- define "airline.kafkaNamespace" -}}
{{- $namespace := default .Release.Namespace .Values.kafka.namespace -}}
{{- $service := printf "%s-kafka-bootstrap." .Values.kafka.clusterName -}}
{{- range $server := splitList "," .Values.kafka.bootstrapServers -}}
{{- $host := trim $server | splitList ":" | first -}}
{{- if hasPrefix $service $host -}}
{{- $named := trimPrefix $service $host | splitList "." | first -}}
{{- if ne $named $namespace -}}
{{- fail (printf "kafka.bootstrapServers (%s) is in namespace %q but the KafkaTopics would go to %q, where Strimzi's topic operator never sees them: set kafka.namespace=%s" $host $named $namespace $named) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $namespace -}}
{{- end -}}

{{- define "airline.lakeClaimName" -}}
{{- default (include "airline.name" (list . "lake")) .Values.lake.persistence.existingClaim -}}
{{- end -}}

{{/* Image reference of a component key: repository:tag (tag "" = appVersion), or with a
digest repository@digest (no tag given) or repository:tag@digest. */}}
{{- define "airline.image" -}}
{{- $root := index . 0 -}}
{{- $image := (index $root.Values (index . 1)).image -}}
{{- $tag := $image.tag | default "" | toString -}}
{{- if $image.digest -}}
{{- if $tag }}{{ printf "%s:%s@%s" $image.repository $tag $image.digest }}{{ else }}{{ printf "%s@%s" $image.repository $image.digest }}{{ end -}}
{{- else -}}
{{- printf "%s:%s" $image.repository (default $root.Chart.AppVersion $tag) -}}
{{- end -}}
{{- end -}}

{{/*
The non-secret settings the chart sets from its shared values, grouped. A component's ConfigMap
holds the non-empty ones of the groups it reads (airline.componentGroups) plus its own `config`,
and its container gets a configMapKeyRef for each.
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
  PUSHGATEWAY_NAMESPACE: {{ .Release.Namespace | quote }}
{{- end -}}

{{/* Which shared groups each component reads. */}}
{{- define "airline.componentGroups" -}}
producer: [kafka, log, redis]
engine: [kafka, log, redis]
lakeWriter: [kafka, log, lake]
etl: [log, lake, pushgateway]
{{- end -}}

{{/* ConfigMap data of a component key: exactly the settings that component reads from it. */}}
{{- define "airline.configData" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- $groups := fromYaml (include "airline.configGroups" $root) -}}
{{- $data := dict -}}
{{- range $group := index (fromYaml (include "airline.componentGroups" $root)) $component -}}
{{- range $key, $value := index $groups $group -}}
{{- if ne (toString $value) "" }}{{ $_ := set $data $key (toString $value) }}{{ end -}}
{{- end -}}
{{- end -}}
{{- if and $root.Values.kafka.users.create (hasKey $root.Values.kafka.users.names $component) -}}
{{- $_ := set $data "KAFKA_SASL_USERNAME" (index $root.Values.kafka.users.names $component) -}}
{{- end -}}
{{- range $key, $value := (index $root.Values $component).config -}}
{{- $_ := set $data $key (toString $value) -}}
{{- end -}}
{{- toYaml $data -}}
{{- end -}}

{{/* env entries of a component key: its ConfigMap's keys, its Secret refs, then values. */}}
{{- define "airline.env" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- $values := index $root.Values $component -}}
{{- range $key := keys (fromYaml (include "airline.configData" (list $root $component))) | sortAlpha }}
- name: {{ $key }}
  valueFrom:
    configMapKeyRef:
      name: {{ include "airline.configMapName" (list $root $component) }}
      key: {{ $key }}
{{- end }}
{{- range $env, $ref := fromYaml (include "airline.secretRefs" (list $root $component)) }}
- name: {{ $env }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.name }}
      key: {{ $ref.key }}
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

{{/* Pod annotations of a component key: checksum/config of exactly its ConfigMap and, when it
reads keys of the chart's own Secret, checksum/secret of exactly those values. A change rolls
the pods of the components that read it (env is read only at container start), and no others.
A Secret the chart does not own (database.existingSecret, secrets.existingSecret) cannot be
summed here: restart the pods after changing it. */}}
{{- define "airline.checksums" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
checksum/config: {{ include "airline.configData" (list $root $component) | sha256sum }}
{{- if not $root.Values.secrets.existingSecret }}
{{- $values := list -}}
{{- range $env, $ref := fromYaml (include "airline.secretRefs" (list $root $component)) -}}
{{- if $ref.value }}{{ $values = append $values (printf "%s=%s" $ref.key (toString (index $root.Values.secrets $ref.value))) }}{{ end -}}
{{- end }}
{{- with $values }}
checksum/secret: {{ join "\n" . | sha256sum }}
{{- end }}
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
serviceAccountName: {{ include "airline.serviceAccountName" (list $root $component) }}
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
