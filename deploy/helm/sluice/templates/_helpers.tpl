{{/* Name of the release's objects: <release>-sluice, or the release name when it already says sluice. */}}
{{- define "sluice.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else if contains "sluice" .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-sluice" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* <fullname>-<component>, e.g. sluice-router or sluice-sender-carrier-a. */}}
{{- define "sluice.resourceName" -}}
{{- printf "%s-%s" (include "sluice.fullname" .ctx) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: sluice
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- with .carrier }}
sluice.dev/carrier: {{ . | quote }}
{{- end }}
{{- end -}}

{{- define "sluice.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: sluice
{{ include "sluice.selectorLabels" . }}
{{- end -}}

{{/* Environment variable name for an id: upper case, anything else than A-Z0-9 as _. */}}
{{- define "sluice.envName" -}}
{{- regexReplaceAll "[^A-Z0-9]" (upper .) "_" -}}
{{- end -}}

{{- define "sluice.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "sluice.fullname" .)) -}}
{{- end -}}

{{/* Admin port (/metrics, /healthz, /readyz) of each service, as the spec fixes them. */}}
{{- define "sluice.adminPort" -}}
{{- get (dict "ingest" "9101" "router" "9102" "sender" "9103" "dlr" "9104") . -}}
{{- end -}}

{{/*
sluice.yaml: .Values.config (any section, e.g. dlr.retention) with the
chart's listen addresses over it, and the tenants and carriers whose secrets
are ${VAR} references into the Secret.
*/}}
{{- define "sluice.config" -}}
{{- $c := deepCopy .Values.config -}}
{{- $ch := deepCopy (.Values.config.clickhouse | default dict) -}}
{{- $_ := set $ch "password" "${CLICKHOUSE_PASSWORD}" -}}
{{- $_ = set $c "clickhouse" $ch -}}
{{- $ingest := dict "admin_addr" ":9101" "http_addr" ":8080" -}}
{{- if .Values.ingest.smpp.enabled -}}
{{- $_ := set $ingest "smpp_addr" (printf ":%d" (int .Values.ingest.smpp.port)) -}}
{{- end -}}
{{- $_ = set $c "ingest" (merge $ingest (deepCopy (.Values.config.ingest | default dict))) -}}
{{- $_ = set $c "router" (merge (dict "admin_addr" ":9102") (deepCopy (.Values.config.router | default dict))) -}}
{{- $_ = set $c "sender" (merge (dict "admin_addr" ":9103") (deepCopy (.Values.config.sender | default dict))) -}}
{{- $_ = set $c "dlr" (merge (dict "admin_addr" ":9104") (deepCopy (.Values.config.dlr | default dict))) -}}
{{- $tenants := list -}}
{{- range .Values.tenants -}}
{{- $t := omit . "apiKeySHA256" "webhookSecret" "smppPasswordSHA256" "kannelPasswordSHA256" -}}
{{- $keys := list -}}
{{- $tid := include "sluice.envName" .id -}}
{{- range $i, $_ := .apiKeySHA256 -}}
{{- $keys = append $keys (printf "${TENANT_%s_API_KEY_%d}" $tid $i) -}}
{{- end -}}
{{- $_ := set $t "api_key_sha256" $keys -}}
{{- if .webhookSecret -}}
{{- $_ := set $t "webhook_secret" (printf "${TENANT_%s_WEBHOOK_SECRET}" $tid) -}}
{{- end -}}
{{- if .smppPasswordSHA256 -}}
{{- $_ := set $t "smpp_password_sha256" (printf "${TENANT_%s_SMPP_PASSWORD_SHA256}" $tid) -}}
{{- end -}}
{{- if .kannelPasswordSHA256 -}}
{{- $_ := set $t "kannel_password_sha256" (printf "${TENANT_%s_KANNEL_PASSWORD_SHA256}" $tid) -}}
{{- end -}}
{{- $tenants = append $tenants $t -}}
{{- end -}}
{{- $_ = set $c "tenants" $tenants -}}
{{- $carriers := list -}}
{{- range .Values.carriers -}}
{{- $cr := omit . "password" "sender" -}}
{{- $_ := set $cr "password" (printf "${CARRIER_%s_PASSWORD}" (include "sluice.envName" .id)) -}}
{{- $carriers = append $carriers $cr -}}
{{- end -}}
{{- $_ = set $c "carriers" $carriers -}}
{{- toYaml $c -}}
{{- end -}}

{{/* The Secret's data: every ${VAR} the config refers to. */}}
{{- define "sluice.secretData" -}}
CLICKHOUSE_PASSWORD: {{ .Values.secrets.clickhousePassword | default "" | b64enc | quote }}
{{- with .Values.secrets.ingestPeerSecret }}
INGEST_PEER_SECRET: {{ . | b64enc | quote }}
{{- end }}
{{- range .Values.carriers }}
{{ printf "CARRIER_%s_PASSWORD" (include "sluice.envName" .id) }}: {{ .password | default "" | b64enc | quote }}
{{- end }}
{{- range .Values.tenants }}
{{- $tid := include "sluice.envName" .id }}
{{- range $i, $h := .apiKeySHA256 }}
{{ printf "TENANT_%s_API_KEY_%d" $tid $i }}: {{ $h | b64enc | quote }}
{{- end }}
{{- with .webhookSecret }}
{{ printf "TENANT_%s_WEBHOOK_SECRET" $tid }}: {{ . | b64enc | quote }}
{{- end }}
{{- with .smppPasswordSHA256 }}
{{ printf "TENANT_%s_SMPP_PASSWORD_SHA256" $tid }}: {{ . | b64enc | quote }}
{{- end }}
{{- with .kannelPasswordSHA256 }}
{{ printf "TENANT_%s_KANNEL_PASSWORD_SHA256" $tid }}: {{ . | b64enc | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
Pod template of a service. Arguments: ctx (the root), component (ingest,
router, sender, dlr), name (the object's name), carrier (sender only),
v (the component's values, already merged with a carrier's overrides).
*/}}
{{- define "sluice.podTemplate" -}}
{{- $ctx := .ctx -}}
{{- $port := include "sluice.adminPort" .component | int -}}
metadata:
  labels:
    {{- include "sluice.labels" . | nindent 4 }}
  annotations:
    checksum/config: {{ include "sluice.config" $ctx | sha256sum }}
    {{- if not $ctx.Values.secrets.existingSecret }}
    checksum/secrets: {{ include "sluice.secretData" $ctx | sha256sum }}
    {{- end }}
    {{- if $ctx.Values.metrics.podAnnotations }}
    prometheus.io/scrape: "true"
    prometheus.io/port: {{ $port | quote }}
    prometheus.io/path: /metrics
    {{- end }}
    {{- with .v.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  {{- with $ctx.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  automountServiceAccountToken: false
  securityContext:
    {{- toYaml $ctx.Values.podSecurityContext | nindent 4 }}
  {{- with .v.terminationGracePeriodSeconds }}
  terminationGracePeriodSeconds: {{ . }}
  {{- end }}
  containers:
    - name: {{ .component }}
      image: {{ printf "%s/sluice-%s:%s" $ctx.Values.image.registry .component ($ctx.Values.image.tag | default $ctx.Chart.AppVersion) | quote }}
      imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
      args: ["-config", "/etc/sluice/sluice.yaml"]
      env:
        - name: GOMEMLIMIT
          valueFrom:
            resourceFieldRef:
              resource: limits.memory
        {{- with .carrier }}
        - name: SLUICE_SENDER_CARRIERS
          value: {{ . | quote }}
        {{- end }}
        {{- if .v.stateVolume }}
        - name: SLUICE_{{ upper .component }}_STATE_DIR
          value: /var/lib/sluice/{{ .component }}
        {{- end }}
        {{- if and (eq .component "ingest") .v.index.divided }}
        - name: POD_IP
          valueFrom:
            fieldRef:
              fieldPath: status.podIP
        - name: SLUICE_INGEST_PEER_ADDR
          value: {{ printf ":%d" (int .v.index.peerPort) | quote }}
        - name: SLUICE_INGEST_PEER_URL
          value: {{ printf "http://$(POD_IP):%d" (int .v.index.peerPort) | quote }}
        - name: SLUICE_INGEST_PEER_SECRET
          valueFrom:
            secretKeyRef:
              name: {{ include "sluice.secretName" $ctx }}
              key: INGEST_PEER_SECRET
              optional: true
        {{- end }}
        {{- range $k, $val := $ctx.Values.env }}
        - name: {{ $k }}
          value: {{ $val | toString | quote }}
        {{- end }}
      envFrom:
        - secretRef:
            name: {{ include "sluice.secretName" $ctx }}
      ports:
        - name: admin
          containerPort: {{ $port }}
          protocol: TCP
        {{- if eq .component "ingest" }}
        - name: http
          containerPort: 8080
          protocol: TCP
        {{- if .v.index.divided }}
        - name: peer
          containerPort: {{ .v.index.peerPort }}
          protocol: TCP
        {{- end }}
        {{- if $ctx.Values.ingest.smpp.enabled }}
        - name: smpp
          containerPort: {{ $ctx.Values.ingest.smpp.port }}
          protocol: TCP
        {{- end }}
        {{- end }}
      livenessProbe:
        httpGet:
          path: /healthz
          port: admin
        {{- toYaml $ctx.Values.probes.liveness | nindent 8 }}
      readinessProbe:
        httpGet:
          path: /readyz
          port: admin
        {{- toYaml $ctx.Values.probes.readiness | nindent 8 }}
      resources:
        {{- toYaml .v.resources | nindent 8 }}
      securityContext:
        {{- toYaml $ctx.Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: /etc/sluice
          readOnly: true
        - name: tmp
          mountPath: /tmp
        {{- if .v.stateVolume }}
        - name: state
          mountPath: /var/lib/sluice/{{ .component }}
        {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ include "sluice.fullname" $ctx }}-config
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    {{- with .v.stateVolume }}
    - name: state
      emptyDir:
        {{- toYaml . | nindent 8 }}
    {{- end }}
  {{- with .v.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .v.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
