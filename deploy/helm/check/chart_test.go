package check

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/sluice-sms/sluice/pkg/config"
)

const chartDir = "../sluice"

// Kubernetes versions the chart is validated against: the oldest it
// supports (autoscaling/v2 and policy/v1 are older still) and the newest with schemas.
var kubeVersions = []string{"1.30.0", "1.37.0"}

// schemaRoot is where make helm-check unpacked the Kubernetes JSON schemas
// (PyPI's kubernetes-validate carries them): $SLUICE_K8S_SCHEMAS, or the
// user's cache.
func schemaRoot(t *testing.T) string {
	if d := os.Getenv("SLUICE_K8S_SCHEMAS"); d != "" {
		return d
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(cache, "sluice", "kubernetes-json-schema")
}

func validators(t *testing.T) map[string]*Validator {
	t.Helper()
	out := map[string]*Validator{}
	for _, kv := range kubeVersions {
		v, err := NewValidator(filepath.Join(schemaRoot(t), "v"+kv+"-local-strict"), "schemas")
		if err != nil {
			t.Fatal(err)
		}
		out[kv] = v
	}
	return out
}

type rendered struct {
	objs []Object
	by   map[string]Object // kind/name
}

func (r rendered) get(t *testing.T, kind, name string) Object {
	t.Helper()
	o, ok := r.by[kind+"/"+name]
	if !ok {
		t.Fatalf("no %s %s rendered", kind, name)
	}
	return o
}

func (r rendered) names(kind string) []string {
	var out []string
	for _, o := range r.objs {
		if o.Kind() == kind {
			out = append(out, o.Name())
		}
	}
	slices.Sort(out)
	return out
}

// TestChart renders the chart with default and non-default values for each
// Kubernetes version, validates every manifest against the schemas, checks
// what the chart promises (bind caps, probes, security, secrets), and loads
// the rendered sluice.yaml with the Secret's values through pkg/config.
func TestChart(t *testing.T) {
	vs := validators(t)
	cases := []struct {
		name    string
		files   []string
		set     []string
		senders map[string]int // carrier → replicas (-1: autoscaled)
		hpas    []string
		keda    map[string]int // carrier → maxReplicaCount
		rules   bool
		sim     bool // the development simulator
	}{
		{name: "defaults", hpas: []string{"sluice-dlr", "sluice-router"}},
		{
			name:    "dev",
			files:   []string{chartDir + "/values-dev.yaml"},
			senders: map[string]int{"sim-a": -1, "sim-b": 2},
			keda:    map[string]int{"sim-a": 4},
			rules:   true,
			sim:     true,
		},
		{
			name:    "production",
			files:   []string{"testdata/values-prod.yaml"},
			set:     []string{"ingest.autoscaling.enabled=true", "image.tag=1.2.3"},
			senders: map[string]int{"big-telco": -1, "small-telco": 1, "otp-only": -1},
			hpas:    []string{"sluice-dlr", "sluice-ingest", "sluice-router"},
			keda:    map[string]int{"big-telco": 6, "otp-only": 2},
			rules:   true,
		},
	}
	for _, tc := range cases {
		for _, kv := range kubeVersions {
			t.Run(tc.name+"/"+kv, func(t *testing.T) {
				objs, err := Render(chartDir, "sluice", "sms", kv, tc.files, tc.set)
				if err != nil {
					t.Fatal(err)
				}
				r := rendered{objs: objs, by: map[string]Object{}}
				for _, o := range objs {
					if err := vs[kv].Validate(o); err != nil {
						t.Error(err)
					}
					r.by[o.Kind()+"/"+o.Name()] = o
				}
				checkServices(t, r, tc.senders, tc.sim)
				if tc.sim {
					checkSimulator(t, r)
				}
				if got := r.names("HorizontalPodAutoscaler"); !slices.Equal(got, tc.hpas) {
					t.Errorf("HPAs %v, want %v", got, tc.hpas)
				}
				var wantSO []string
				for c, max := range tc.keda {
					wantSO = append(wantSO, "sluice-sender-"+c)
					so := r.get(t, "ScaledObject", "sluice-sender-"+c)
					if got := dig[float64](so.Raw, "spec", "maxReplicaCount"); int(got) != max {
						t.Errorf("ScaledObject %s maxReplicaCount %v, want %d", c, got, max)
					}
				}
				slices.Sort(wantSO)
				if got := r.names("ScaledObject"); !slices.Equal(got, wantSO) {
					t.Errorf("ScaledObjects %v, want %v", got, wantSO)
				}
				if got := len(r.names("PrometheusRule")) == 1; got != tc.rules {
					t.Errorf("PrometheusRule rendered: %v, want %v", got, tc.rules)
				}
				checkConfig(t, r, tc.senders)
			})
		}
	}
}

// checkServices: a Deployment per service and per carrier's sender, each
// with the promised probes and security settings; senders capped by binds.
func checkServices(t *testing.T, r rendered, senders map[string]int, sim bool) {
	t.Helper()
	want := []string{"sluice-dlr", "sluice-ingest", "sluice-router"}
	for c := range senders {
		want = append(want, "sluice-sender-"+c)
	}
	if sim {
		want = append(want, "sluice-smsc-sim")
	}
	slices.Sort(want)
	if got := r.names("Deployment"); !slices.Equal(got, want) {
		t.Fatalf("Deployments %v, want %v", got, want)
	}
	ports := map[string]float64{"ingest": 9101, "router": 9102, "sender": 9103, "dlr": 9104}
	for _, name := range want {
		d := r.get(t, "Deployment", name)
		component := strings.Split(strings.TrimPrefix(name, "sluice-"), "-")[0]
		pod := dig[map[string]any](d.Raw, "spec", "template", "spec")
		if dig[bool](pod, "securityContext", "runAsNonRoot") != true {
			t.Errorf("%s: pod may run as root", name)
		}
		cs := dig[[]any](pod, "containers")
		if len(cs) != 1 {
			t.Fatalf("%s: %d containers", name, len(cs))
		}
		c := cs[0].(map[string]any)
		if !dig[bool](c, "securityContext", "readOnlyRootFilesystem") || dig[bool](c, "securityContext", "allowPrivilegeEscalation") {
			t.Errorf("%s: root filesystem writable or privilege escalation allowed", name)
		}
		if component == "smsc" {
			continue // the simulator: checked by checkSimulator
		}
		var admin float64
		for _, p := range dig[[]any](c, "ports") {
			if p.(map[string]any)["name"] == "admin" {
				admin = p.(map[string]any)["containerPort"].(float64)
			}
		}
		if admin != ports[component] {
			t.Errorf("%s: admin port %v, want %v", name, admin, ports[component])
		}
		for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
			if got := dig[string](c, probe, "httpGet", "path"); got != path || dig[string](c, probe, "httpGet", "port") != "admin" {
				t.Errorf("%s: %s on %q, want %s on the admin port", name, probe, got, path)
			}
		}
		// The root filesystem is read-only: the state stores of ingest,
		// the router and the DLR service need their own writable volumes,
		// named by the state_dir override.
		if component == "dlr" || component == "router" || component == "ingest" {
			mounts := map[string]bool{}
			for _, m := range dig[[]any](c, "volumeMounts") {
				if ro, _ := m.(map[string]any)["readOnly"].(bool); !ro {
					mounts[m.(map[string]any)["mountPath"].(string)] = true
				}
			}
			if dir := envValue(c, "SLUICE_"+strings.ToUpper(component)+"_STATE_DIR"); dir == "" || !mounts[dir] {
				t.Errorf("%s: state dir %q is not a writable volume (mounts %v)", name, dir, mounts)
			}
		}
		if _, ok := r.by["PodDisruptionBudget/"+name]; !ok && component == "sender" {
			t.Errorf("%s: no PodDisruptionBudget", name)
		}
		if component != "sender" {
			continue
		}
		carrier := strings.TrimPrefix(name, "sluice-sender-")
		if got := envValue(c, "SLUICE_SENDER_CARRIERS"); got != carrier {
			t.Errorf("%s: SLUICE_SENDER_CARRIERS=%q, want %q", name, got, carrier)
		}
		replicas, set := d.Raw["spec"].(map[string]any)["replicas"]
		switch want := senders[carrier]; {
		case want < 0 && set:
			t.Errorf("%s: replicas set although KEDA scales it", name)
		case want >= 0 && (!set || int(replicas.(float64)) != want):
			t.Errorf("%s: replicas %v, want %d", name, replicas, want)
		}
		if got := dig[float64](d.Raw, "spec", "strategy", "rollingUpdate", "maxSurge"); got != 0 {
			t.Errorf("%s: rollout surges by %v pods above the bind cap", name, got)
		}
	}
}

// checkSimulator: the development simulator listens on every carrier's
// port behind the Service the carriers' host names, and accepts the
// carrier's credentials within its limits.
func checkSimulator(t *testing.T, r rendered) {
	t.Helper()
	var vals struct {
		Carriers []struct {
			ID       string `json:"id"`
			Host     string `json:"host"`
			Port     int    `json:"port"`
			Password string `json:"password"`
			Binds    int    `json:"binds"`
		} `json:"carriers"`
	}
	data, err := os.ReadFile(chartDir + "/values-dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &vals); err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(dig[string](r.get(t, "Secret", "sluice-smsc-sim").Raw, "data", "smsc-sim.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var sim struct {
		Carriers []struct {
			ID       string `json:"id"`
			Addr     string `json:"addr"`
			Password string `json:"password"`
			MaxBinds int    `json:"max_binds"`
		} `json:"carriers"`
	}
	if err := yaml.Unmarshal(raw, &sim); err != nil {
		t.Fatal(err)
	}
	svc := r.get(t, "Service", "smsc-sim")
	ports := map[float64]bool{}
	for _, p := range dig[[]any](svc.Raw, "spec", "ports") {
		ports[p.(map[string]any)["port"].(float64)] = true
	}
	if len(sim.Carriers) != len(vals.Carriers) {
		t.Fatalf("simulator has %d carriers, values %d", len(sim.Carriers), len(vals.Carriers))
	}
	for i, c := range vals.Carriers {
		s := sim.Carriers[i]
		if c.Host != "smsc-sim" || s.ID != c.ID || s.Addr != fmt.Sprintf(":%d", c.Port) || s.Password != c.Password || s.MaxBinds != c.Binds || !ports[float64(c.Port)] {
			t.Errorf("carrier %s: simulator %+v, Service ports %v", c.ID, s, ports)
		}
	}
}

// checkConfig loads the rendered sluice.yaml the way a pod does: ${VAR}s
// from the chart's Secret (or, with an existing Secret, from placeholders),
// SLUICE_SENDER_CARRIERS for a sender.
// It returns the configuration the services would load.
func checkConfig(t *testing.T, r rendered, senders map[string]int) config.Config {
	t.Helper()
	cm := r.get(t, "ConfigMap", "sluice-config")
	yml := dig[string](cm.Raw, "data", "sluice.yaml")
	secret, own := r.by["Secret/sluice-secrets"]
	env := map[string]string{}
	for k, v := range dig[map[string]any](secret.Raw, "data") {
		b, err := base64.StdEncoding.DecodeString(v.(string))
		if err != nil {
			t.Fatalf("secret %s: %v", k, err)
		}
		env[k] = string(b)
	}
	if !own {
		// An existing Secret must hold every ${VAR} of the ConfigMap.
		for _, m := range regexp.MustCompile(`\$\{([A-Z0-9_]+)\}`).FindAllStringSubmatch(yml, -1) {
			sum := sha256.Sum256([]byte(m[1])) // valid for passwords and API-key hashes alike
			env[m[1]] = hex.EncodeToString(sum[:])
		}
	}
	lookup := func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
	cfg, err := config.Parse([]byte(yml), lookup)
	if err != nil {
		t.Fatalf("rendered sluice.yaml does not load: %v\n%s", err, yml)
	}
	if cfg.Ingest.AdminAddr != ":9101" || cfg.Router.AdminAddr != ":9102" || cfg.Sender.AdminAddr != ":9103" || cfg.DLR.AdminAddr != ":9104" || cfg.Ingest.HTTPAddr != ":8080" {
		t.Errorf("listen addresses differ from the chart's ports: %+v %+v %+v %+v", cfg.Ingest, cfg.Router, cfg.Sender, cfg.DLR)
	}
	if len(cfg.Carriers) != len(senders) {
		t.Errorf("%d carriers in sluice.yaml, %d sender Deployments", len(cfg.Carriers), len(senders))
	}
	for _, c := range cfg.Carriers {
		if c.Password == "" || strings.Contains(yml, c.Password) {
			t.Errorf("carrier %s: password %q missing or written into the ConfigMap", c.ID, c.Password)
		}
		d := r.get(t, "Deployment", "sluice-sender-"+c.ID)
		if n := senders[c.ID]; n > c.Binds {
			t.Errorf("carrier %s: %d replicas for %d binds", c.ID, n, c.Binds)
		}
		c0 := dig[[]any](d.Raw, "spec", "template", "spec", "containers")[0].(map[string]any)
		sc, err := config.Parse([]byte(yml), func(k string) (string, bool) {
			if k == "SLUICE_SENDER_CARRIERS" {
				return envValue(c0, k), true
			}
			return lookup(k)
		})
		if err != nil || !slices.Equal(sc.Sender.Carriers, []string{c.ID}) {
			t.Errorf("sender %s serves %v (%v), want only its carrier", c.ID, sc.Sender.Carriers, err)
		}
	}
	for _, tn := range cfg.Tenants {
		for _, h := range tn.APIKeySHA256 {
			if h == "" || (own && strings.Contains(yml, h)) {
				t.Errorf("tenant %s: API-key hash %q missing or in the ConfigMap", tn.ID, h)
			}
		}
	}
	return cfg
}

// TestChartRefuses: values that would break a carrier's limits, or name
// objects badly, fail to render with a message saying why.
func TestChartRefuses(t *testing.T) {
	prod := []string{"testdata/values-prod.yaml"}
	cases := []struct {
		name string
		set  []string
		want string
	}{
		{"replicas above binds", []string{"carriers[1].sender.replicas=3"}, "sender replicas 3 exceed the carrier's binds (2)"},
		{"default replicas above binds", []string{"sender.replicas=7", "sender.autoscaling.enabled=false"}, "exceed the carrier's binds"},
		{"KEDA maximum above binds", []string{"carriers[0].sender.autoscaling.maxReplicas=7"}, "autoscaling.maxReplicas 7 exceeds the carrier's binds (6)"},
		{"KEDA minimum above maximum", []string{"carriers[2].sender.autoscaling.minReplicas=3"}, "minReplicas 3 must be between 1 and maxReplicas 2"},
		{"no binds", []string{"carriers[1].binds=0"}, "/carriers/1/binds"},
		{"bad carrier id", []string{"carriers[1].id=Small_Telco"}, `id "Small_Telco" must be lower-case`},
		{"duplicate carrier", []string{"carriers[1].id=big-telco"}, `id "big-telco" appears twice`},
		// values.schema.json
		{"binds not a number", []string{"carriers[1].binds=four"}, "binds"},
		{"carrier without a host", []string{"carriers[2].host="}, "host"},
		{"API-key hash not hex SHA-256", []string{"tenants[0].apiKeySHA256[0]=secret-key"}, "apiKeySHA256"},
		{"misspelt setting", []string{"sender.replica=2"}, "replica"},
		{"carriers under config", []string{"config.carriers[0].id=x"}, "config"},
		{"simulator without passwords", []string{"devSimulator.enabled=true"}, "devSimulator: carrier big-telco needs its password"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Render(chartDir, "sluice", "sms", kubeVersions[0], prod, tc.set)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("render error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// TestValidatorCatches: the validator itself rejects what the API server
// would (so a passing TestChart means something).
func TestValidatorCatches(t *testing.T) {
	v := validators(t)[kubeVersions[0]]
	cases := []struct{ name, doc, want string }{
		{"unknown field", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndatta: {}\n", "datta"},
		{"wrong type", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec: {replicas: two, selector: {}, template: {}}\n", "replicas"},
		{"no schema", "apiVersion: example.com/v1\nkind: Thing\nmetadata: {name: a}\n", "no schema"},
		{"KEDA metadata not a string", "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: a}\nspec: {scaleTargetRef: {name: a}, triggers: [{type: kafka, metadata: {lagThreshold: 5}}]}\n", "lagThreshold"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := Decode(tc.doc)
			if err != nil {
				t.Fatal(err)
			}
			err = v.Validate(objs[0])
			if err == nil || !strings.Contains(fmt.Sprint(err), tc.want) {
				t.Fatalf("Validate = %v, want an error about %q", err, tc.want)
			}
		})
	}
}

func TestSchemaFile(t *testing.T) {
	for in, want := range map[[2]string]string{
		{"apps/v1", "Deployment"}:                               "deployment-apps-v1.json",
		{"v1", "ConfigMap"}:                                     "configmap-v1.json",
		{"autoscaling/v2", "HorizontalPodAutoscaler"}:           "horizontalpodautoscaler-autoscaling-v2.json",
		{"keda.sh/v1alpha1", "ScaledObject"}:                    "scaledobject-keda-v1alpha1.json",
		{"monitoring.coreos.com/v1", "PrometheusRule"}:          "prometheusrule-monitoring-v1.json",
		{"policy/v1", "PodDisruptionBudget"}:                    "poddisruptionbudget-policy-v1.json",
		{"rbac.authorization.k8s.io/v1", "ClusterRole"}:         "clusterrole-rbac-v1.json",
		{"networking.k8s.io/v1", "NetworkPolicy"}:               "networkpolicy-networking-v1.json",
		{"apiextensions.k8s.io/v1", "CustomResourceDefinition"}: "customresourcedefinition-apiextensions-v1.json",
	} {
		if got := SchemaFile(in[0], in[1]); got != want {
			t.Errorf("SchemaFile(%q, %q) = %q, want %q", in[0], in[1], got, want)
		}
	}
}

func envValue(container map[string]any, name string) string {
	for _, e := range dig[[]any](container, "env") {
		if m := e.(map[string]any); m["name"] == name {
			s, _ := m["value"].(string)
			return s
		}
	}
	return ""
}

// dig follows map keys; the zero T when a step is missing.
func dig[T any](m map[string]any, keys ...string) T {
	var zero T
	var cur any = m
	for _, k := range keys {
		mm, ok := cur.(map[string]any)
		if !ok {
			return zero
		}
		cur = mm[k]
	}
	v, _ := cur.(T)
	return v
}

// TestWebhookSecret: a tenant's webhook HMAC key goes into the Secret and
// the ConfigMap only refers to it.
func TestWebhookSecret(t *testing.T) {
	objs, err := Render(chartDir, "sluice", "sms", kubeVersions[0], []string{"testdata/values-prod.yaml"},
		[]string{"secrets.existingSecret=", "tenants[1].webhookSecret=hmac-key-of-globex"})
	if err != nil {
		t.Fatal(err)
	}
	var yml, secret string
	for _, o := range objs {
		switch o.Kind() {
		case "ConfigMap":
			yml = dig[string](o.Raw, "data", "sluice.yaml")
		case "Secret":
			secret = dig[string](o.Raw, "data", "TENANT_GLOBEX_CORP_WEBHOOK_SECRET")
		}
	}
	if !strings.Contains(yml, "webhook_secret: ${TENANT_GLOBEX_CORP_WEBHOOK_SECRET}") || strings.Contains(yml, "hmac-key-of-globex") {
		t.Errorf("ConfigMap does not refer to the webhook secret, or holds it:\n%s", yml)
	}
	if got, _ := base64.StdEncoding.DecodeString(secret); string(got) != "hmac-key-of-globex" {
		t.Errorf("Secret's TENANT_GLOBEX_CORP_WEBHOOK_SECRET = %q", got)
	}
	if strings.Count(yml, "webhook_secret") != 1 {
		t.Errorf("webhook_secret for a tenant without one:\n%s", yml)
	}
}

// TestSMPPFrontDoor: with ingest.smpp enabled, ingest listens for SMPP on
// the chart's port, its Service exposes it, and a tenant's SMPP password
// hash is in the Secret, the ConfigMap only referring to it.
func TestSMPPFrontDoor(t *testing.T) {
	const hash = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
	const kannelHash = "c3ab8ff13720e8ad9047dd39466b3c8974e592c2fa383d4a3960714caef0c4f2"
	objs, err := Render(chartDir, "sluice", "sms", kubeVersions[0], []string{"testdata/values-prod.yaml"},
		[]string{"secrets.existingSecret=", "carriers[0].password=p0", "carriers[1].password=p1", "carriers[2].password=p2", "ingest.smpp.enabled=true", "ingest.smpp.port=2776", "tenants[1].smpp_system_id=globex", "tenants[1].smppPasswordSHA256=" + hash,
			"tenants[1].kannel_username=globex-kannel", "tenants[1].kannelPasswordSHA256=" + kannelHash})
	if err != nil {
		t.Fatal(err)
	}
	r := rendered{objs: objs, by: map[string]Object{}}
	for _, o := range objs {
		r.by[o.Kind()+"/"+o.Name()] = o
	}
	cfg := checkConfig(t, r, map[string]int{"big-telco": -1, "small-telco": 1, "otp-only": -1})
	if cfg.Ingest.SMPPAddr != ":2776" {
		t.Errorf("ingest.smpp_addr = %q, want :2776", cfg.Ingest.SMPPAddr)
	}
	var globex config.Tenant
	for _, tn := range cfg.Tenants {
		if tn.SMPPSystemID == "globex" {
			globex = tn
		}
	}
	if globex.SMPPPasswordSHA256 != hash {
		t.Errorf("tenant with smpp_system_id globex: password hash %q, want the Secret's", globex.SMPPPasswordSHA256)
	}
	if globex.KannelUsername != "globex-kannel" || globex.KannelPasswordSHA256 != kannelHash {
		t.Errorf("tenant globex: Kannel user %q, password hash %q, want the Secret's", globex.KannelUsername, globex.KannelPasswordSHA256)
	}
	if yml := dig[string](r.get(t, "ConfigMap", "sluice-config").Raw, "data", "sluice.yaml"); strings.Contains(yml, hash) || strings.Contains(yml, kannelHash) {
		t.Errorf("the SMPP or Kannel password hash is in the ConfigMap")
	}
	hasPort := func(ports []any, key string) bool {
		for _, p := range ports {
			m := p.(map[string]any)
			if m["name"] == "smpp" && m[key] == float64(2776) {
				return true
			}
		}
		return false
	}
	svc := r.get(t, "Service", "sluice-ingest")
	if !hasPort(dig[[]any](svc.Raw, "spec", "ports"), "port") {
		t.Errorf("Service sluice-ingest does not expose smpp on 2776: %v", dig[[]any](svc.Raw, "spec", "ports"))
	}
	for _, p := range dig[[]any](svc.Raw, "spec", "ports") {
		if p.(map[string]any)["name"] == "admin" {
			t.Errorf("Service sluice-ingest, which may face the outside, exposes the admin port (metrics, profiles): %v", p)
		}
	}
	c := dig[[]any](r.get(t, "Deployment", "sluice-ingest").Raw, "spec", "template", "spec", "containers")[0].(map[string]any)
	if !hasPort(dig[[]any](c, "ports"), "containerPort") {
		t.Errorf("ingest container does not listen for smpp on 2776: %v", dig[[]any](c, "ports"))
	}
}

// TestDividedIndex: by default ingest's replicas divide the status index,
// each telling its peers its pod IP and the peer port, which the Service
// does not expose; the peer token comes from the Secret. Turned off, no
// replica listens for peers.
func TestDividedIndex(t *testing.T) {
	for _, divided := range []bool{true, false} {
		objs, err := Render(chartDir, "sluice", "sms", kubeVersions[0], []string{"testdata/values-prod.yaml"},
			[]string{"secrets.existingSecret=", "secrets.ingestPeerSecret=peer-token", fmt.Sprintf("ingest.index.divided=%v", divided)})
		if err != nil {
			t.Fatal(err)
		}
		r := rendered{objs: objs, by: map[string]Object{}}
		for _, o := range objs {
			r.by[o.Kind()+"/"+o.Name()] = o
		}
		c := dig[[]any](r.get(t, "Deployment", "sluice-ingest").Raw, "spec", "template", "spec", "containers")[0].(map[string]any)
		addr, url := envValue(c, "SLUICE_INGEST_PEER_ADDR"), envValue(c, "SLUICE_INGEST_PEER_URL")
		if !divided {
			if addr != "" {
				t.Errorf("not divided, but SLUICE_INGEST_PEER_ADDR=%q", addr)
			}
			continue
		}
		if addr != ":8082" || url != "http://$(POD_IP):8082" {
			t.Errorf("peer addr %q, url %q, want :8082 and http://$(POD_IP):8082", addr, url)
		}
		var secretRef string
		for _, e := range dig[[]any](c, "env") {
			if m := e.(map[string]any); m["name"] == "SLUICE_INGEST_PEER_SECRET" {
				secretRef = dig[string](m, "valueFrom", "secretKeyRef", "key")
			}
		}
		if secretRef != "INGEST_PEER_SECRET" {
			t.Errorf("SLUICE_INGEST_PEER_SECRET from secret key %q, want INGEST_PEER_SECRET", secretRef)
		}
		if got, _ := base64.StdEncoding.DecodeString(dig[string](r.get(t, "Secret", "sluice-secrets").Raw, "data", "INGEST_PEER_SECRET")); string(got) != "peer-token" {
			t.Errorf("Secret's INGEST_PEER_SECRET = %q", got)
		}
		for _, p := range dig[[]any](r.get(t, "Service", "sluice-ingest").Raw, "spec", "ports") {
			if m := p.(map[string]any); m["name"] == "peer" || m["targetPort"] == "peer" || m["port"] == float64(8082) {
				t.Errorf("Service sluice-ingest exposes the peer API: %v", m)
			}
		}
	}
}
