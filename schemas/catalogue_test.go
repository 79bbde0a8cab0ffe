package schemas

import (
	"io/fs"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCatalogueParses(t *testing.T) {
	topics, err := Catalogue()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Topic{}
	for _, tp := range topics {
		byName[tp.Name] = tp
	}
	fixed := []string{TopicRequests, TopicRequestsDLQ, TopicStatus, TopicAccepted, TopicSubmits,
		TopicRouterOTP, TopicRouterBulk, TopicRouterSched, TopicRouterQuota, TopicOptOut,
		TopicDLRRaw, TopicDLRPending, TopicDLROutcomes, TopicDLRPartial, TopicOutboundOTP, TopicOutboundBulk,
		TopicOutboundRetry, TopicMO, TopicCarrierHealth,
		TopicDLRUnmatched, TopicWebhookRetry, TopicSMPPReceipts, TopicSMPPMO, TopicIngestIndex,
		TopicPublicMO, TopicConversations, TopicMOParts, TopicMOUnowned}
	for _, name := range fixed {
		if _, ok := byName[name]; !ok {
			t.Errorf("constant %q is not in the catalogue", name)
		}
	}
	if len(topics) != len(fixed) {
		t.Errorf("catalogue has %d topics, the constants name %d", len(topics), len(fixed))
	}
	var public []string
	for _, tp := range topics {
		if tp.Public {
			public = append(public, tp.Name)
		}
	}
	if want := []string{TopicRequests, TopicRequestsDLQ, TopicStatus, TopicPublicMO}; !slices.Equal(public, want) {
		t.Errorf("public topics = %v, want %v", public, want)
	}
	wantHeaders := []string{HeaderErrorCode, HeaderError, HeaderSourceTopic, HeaderSourcePartition, HeaderSourceOffset}
	if got := byName[TopicRequestsDLQ].Headers; !slices.Equal(got, wantHeaders) {
		t.Errorf("dlq headers = %v, want %v", got, wantHeaders)
	}
	if v := byName[TopicStatus].Value; v != StatusSchemaPath {
		t.Errorf("sms.status value = %q, want %q", v, StatusSchemaPath)
	}
	if v := byName[TopicPublicMO].Value; v != MOSchemaPath {
		t.Errorf("sms.mo value = %q, want %q", v, MOSchemaPath)
	}
	if v := byName[TopicRequests].Value; v != RequestSchemaPath {
		t.Errorf("sms.requests value = %q, want %q", v, RequestSchemaPath)
	}
	if got := byName[TopicRequestsDLQ].Retention; got != 30*24*time.Hour {
		t.Errorf("dlq retention = %v, want 30 days", got)
	}
}

// The dlr service joins these topics partition by partition: their counts
// must match, and the compacted state topics must follow their inputs.
func TestCoPartitioned(t *testing.T) {
	topics, err := Resolve("p.", []CarrierSlots{{ID: "sim-a", Binds: 4}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	parts := map[string]int{}
	for _, tp := range topics {
		parts[tp.Name] = tp.Partitions
		if tp.Partitions < 1 {
			t.Errorf("%s: %d partitions", tp.Name, tp.Partitions)
		}
		if tp.SamePartitionsAs != "" && !strings.HasPrefix(tp.SamePartitionsAs, "p.") {
			t.Errorf("%s: same_partitions_as %q not prefixed", tp.Name, tp.SamePartitionsAs)
		}
	}
	groups := [][]string{
		{TopicSubmits, TopicDLRRaw, TopicDLRPending},
		{TopicDLROutcomes, TopicDLRPartial},
		{TopicStatus, TopicIngestIndex},
		{TopicMO, TopicConversations, TopicMOParts},
		{OutboundTopic("", "sim-a", LaneOTP), OutboundTopic("", "sim-a", LaneBulk)},
	}
	for _, g := range groups {
		for _, name := range g[1:] {
			if parts["p."+name] != parts["p."+g[0]] {
				t.Errorf("%s has %d partitions, %s %d", name, parts["p."+name], g[0], parts["p."+g[0]])
			}
		}
	}
	for _, tp := range topics {
		c := tp.Config()
		if c["cleanup.policy"] != tp.Cleanup {
			t.Errorf("%s: config %v", tp.Name, c)
		}
		if _, ok := c["retention.ms"]; ok != (tp.Cleanup != CleanupCompact) {
			t.Errorf("%s: config %v", tp.Name, c)
		}
	}
}

func TestResolveExpandsTemplates(t *testing.T) {
	topics, err := Resolve("prod.", []CarrierSlots{{ID: "sim-a", Binds: 4}, {ID: "sim_b", Binds: 1}}, []string{"acme", "globex"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Topic{}
	for _, tp := range topics {
		if strings.Contains(tp.Name, "{") || !strings.HasPrefix(tp.Name, "prod.") {
			t.Errorf("unresolved name %q", tp.Name)
		}
		got[tp.Name] = tp
	}
	tests := []struct {
		carrier, lane string
		binds         int
	}{
		{"sim-a", LaneOTP, 4}, {"sim-a", LaneBulk, 4}, {"sim_b", LaneOTP, 1}, {"sim_b", LaneBulk, 1},
	}
	for _, tenant := range []string{"acme", "globex"} {
		for _, name := range []string{SMPPReceiptsTopic("prod.", tenant), SMPPMOTopic("prod.", tenant)} {
			if tp, ok := got[name]; !ok || tp.Tenant != tenant || !tp.PerTenant || tp.Partitions != 3 {
				t.Errorf("%s: %+v, want tenant %s's topic of 3 partitions", name, tp, tenant)
			}
		}
	}
	for _, tt := range tests {
		name := OutboundTopic("prod.", tt.carrier, tt.lane)
		tp, ok := got[name]
		if !ok {
			t.Errorf("%s missing", name)
			continue
		}
		if tp.Partitions != tt.binds || tp.Carrier != tt.carrier || !tp.PerCarrier {
			t.Errorf("%s: partitions %d carrier %q, want %d %q", name, tp.Partitions, tp.Carrier, tt.binds, tt.carrier)
		}
	}
	all, err := Catalogue()
	if err != nil {
		t.Fatal(err)
	}
	perCarrier, perTenant := 0, 0
	for _, tp := range all {
		if tp.PerCarrier {
			perCarrier++
		}
		if tp.PerTenant {
			perTenant++
		}
	}
	// Two carriers and two tenants: every template twice.
	if want := len(all) + perCarrier + perTenant; len(topics) != want {
		t.Errorf("resolved %d topics, want %d", len(topics), want)
	}
	if _, ok := got[TopicName("prod.", TopicStatus)]; !ok {
		t.Error("prod.sms.status missing")
	}
}

func TestResolveRejects(t *testing.T) {
	tests := []struct {
		name     string
		prefix   string
		carriers []CarrierSlots
		tenants  []string
	}{
		{"no binds", "", []CarrierSlots{{ID: "a", Binds: 0}}, nil},
		{"dot in carrier", "", []CarrierSlots{{ID: "a.b", Binds: 1}}, nil},
		{"space in carrier", "", []CarrierSlots{{ID: "a b", Binds: 1}}, nil},
		{"duplicate carrier", "", []CarrierSlots{{ID: "a", Binds: 1}, {ID: "a", Binds: 2}}, nil},
		{"bad prefix", "a/b.", nil, nil},
		{"too long", strings.Repeat("x", 240), nil, nil},
		{"dot in tenant", "", nil, []string{"a.b"}},
		{"slash in tenant", "", nil, []string{"a/b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Resolve(tt.prefix, tt.carriers, tt.tenants); err == nil {
				t.Error("no error")
			}
		})
	}
}

func TestParseCatalogueRejects(t *testing.T) {
	base := "topics:\n  - name: a\n    key: k\n    description: d\n    format: protobuf\n    value: sluice.v1.Message\n"
	tests := []struct {
		name, yaml string
	}{
		{"unknown key", base + "    partitions: 1\n    retention: 1h\n    cleanup: delete\n    colour: red\n"},
		{"no partitions", base + "    retention: 1h\n    cleanup: delete\n"},
		{"both partition fields", base + "    partitions: 1\n    same_partitions_as: a\n    retention: 1h\n    cleanup: delete\n"},
		{"compact with retention", base + "    partitions: 1\n    retention: 1h\n    cleanup: compact\n"},
		{"delete without retention", base + "    partitions: 1\n    retention: 0s\n    cleanup: delete\n"},
		{"unknown message", strings.Replace(base, "sluice.v1.Message", "sluice.v1.Nope", 1) + "    partitions: 1\n    retention: 1h\n    cleanup: delete\n"},
		{"missing json schema", strings.Replace(strings.Replace(base, "protobuf", "json", 1), "sluice.v1.Message", "json/nope.json", 1) + "    partitions: 1\n    retention: 1h\n    cleanup: delete\n"},
		{"template without flag", strings.Replace(base, "name: a", "name: a.{carrier}", 1) + "    retention: 1h\n    cleanup: delete\n"},
		{"unknown co-partner", base + "    same_partitions_as: b\n    retention: 1h\n    cleanup: delete\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseCatalogue([]byte(tt.yaml)); err == nil {
				t.Error("no error")
			}
		})
	}
}

func TestEmbeddedFiles(t *testing.T) {
	for _, pattern := range []string{"clickhouse/migrations/*.sql", "clickhouse/queries/*.sql", "json/*.json"} {
		m, err := fs.Glob(FS(), pattern)
		if err != nil || len(m) == 0 {
			t.Errorf("%s: %v %v", pattern, m, err)
		}
	}
}
