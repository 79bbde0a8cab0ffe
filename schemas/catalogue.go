// Package schemas holds sluice's data contracts, embedded so that every
// binary carries the same ones: the Kafka topic catalogue (topics.yaml), the
// JSON Schemas of the public topics (json/), the ClickHouse migrations and
// analyst queries (clickhouse/), and the generated protobuf code of the
// internal records (sluicepb).
package schemas

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	// Registers the internal record types the catalogue names.
	_ "github.com/sluice-sms/sluice/schemas/sluicepb"
)

//go:embed topics.yaml openapi.yaml asyncapi.yaml json/*.json clickhouse/migrations/*.sql clickhouse/queries/*.sql
var files embed.FS

// FS returns the embedded contract files, by their paths under schemas/
// (e.g. "json/sms.status.v1.json", "clickhouse/migrations/002_message_events.sql").
func FS() fs.FS { return files }

// Topic names as in the catalogue, without the configured prefix.
const (
	TopicRequests      = "sms.requests"     // public
	TopicRequestsDLQ   = "sms.requests.dlq" // public
	TopicStatus        = "sms.status"       // public
	TopicPublicMO      = "sms.mo"           // public
	TopicIngestIndex   = "sluice.ingest.index"
	TopicRouterOTP     = "sluice.router.otp"
	TopicRouterBulk    = "sluice.router.bulk"
	TopicRouterSched   = "sluice.router.schedule"
	TopicRouterQuota   = "sluice.router.quota"
	TopicOptOut        = "sluice.optout"
	TopicAccepted      = "sluice.accepted"
	TopicSubmits       = "sluice.submits"
	TopicDLRRaw        = "sluice.dlr.raw"
	TopicDLRPending    = "sluice.dlr.pending"
	TopicDLROutcomes   = "sluice.dlr.outcomes"
	TopicDLRPartial    = "sluice.dlr.partial"
	TopicMO            = "sluice.mo"
	TopicConversations = "sluice.conversations"
	TopicMOParts       = "sluice.mo.parts"
	TopicMOUnowned     = "sluice.mo.unowned"
	TopicCarrierHealth = "sluice.carrier.health"
	TopicDLRUnmatched  = "sluice.dlr.unmatched"
	TopicWebhookRetry  = "sluice.webhooks.retry"

	// Per-carrier templates; build real names with OutboundTopic.
	TopicOutboundOTP  = "sluice.outbound." + CarrierPlaceholder + "." + LaneOTP
	TopicOutboundBulk = "sluice.outbound." + CarrierPlaceholder + "." + LaneBulk
	// TopicOutboundRetry holds refused messages until their retry is due.
	TopicOutboundRetry = "sluice.outbound." + CarrierPlaceholder + "." + LaneRetry

	// Per-tenant templates, for tenants of the SMPP front door; build real
	// names with SMPPReceiptsTopic and SMPPMOTopic.
	TopicSMPPReceipts = "sluice.smpp." + TenantPlaceholder + ".receipts"
	TopicSMPPMO       = "sluice.smpp." + TenantPlaceholder + ".mo"

	// CarrierPlaceholder marks where a per-carrier template takes the carrier id.
	CarrierPlaceholder = "{carrier}"
	// TenantPlaceholder marks where a per-tenant template takes the tenant id.
	TenantPlaceholder = "{tenant}"
)

// Priority lanes of a carrier's outbound topics, otp served first.
const (
	LaneOTP  = "otp"
	LaneBulk = "bulk"
	// LaneRetry is the lane of messages waiting to be resubmitted.
	LaneRetry = "retry"
)

// Headers of an sms.requests.dlq record.
const (
	HeaderErrorCode       = "sluice-error-code"       // machine-readable reason
	HeaderError           = "sluice-error"            // human-readable reason
	HeaderSourceTopic     = "sluice-source-topic"     // topic of the rejected record
	HeaderSourcePartition = "sluice-source-partition" // its partition, decimal
	HeaderSourceOffset    = "sluice-source-offset"    // its offset, decimal
)

// Headers of a sluice.outbound.{carrier}.retry record.
const (
	HeaderRetryDue     = "sluice-retry-due-ms"  // Unix milliseconds, decimal: not to be sent before
	HeaderRetrySegment = "sluice-retry-segment" // 0-based segment to resume from, decimal
)

// JSON Schemas of the public topics' values, as paths in FS.
const (
	RequestSchemaPath = "json/sms.requests.v1.json"
	StatusSchemaPath  = "json/sms.status.v1.json"
	MOSchemaPath      = "json/sms.mo.v1.json"
	// The HTTP API's contract (OpenAPI 3.1) and the public topics'
	// (AsyncAPI 3.0), both referring to the JSON Schemas above.
	OpenAPIPath  = "openapi.yaml"
	AsyncAPIPath = "asyncapi.yaml"
)

// Value formats of a topic.
const (
	FormatJSON     = "json"
	FormatProtobuf = "protobuf"
)

// Cleanup policies of a topic.
const (
	CleanupDelete  = "delete"
	CleanupCompact = "compact"
	// CleanupCompactDelete keeps the latest record per key, and none older
	// than the retention: a changelog whose rows expire with time, without
	// a tombstone per row.
	CleanupCompactDelete = "compact,delete"
)

// TopicName applies the configured prefix to a catalogue name.
func TopicName(prefix, name string) string { return prefix + name }

// IntakeTopic is the router's intake for a message: sluice.router.otp for an
// otp message, sluice.router.bulk for the rest, keyed by tenant. Ingest
// writes it, and the sender when it hands a message back for failover.
func IntakeTopic(prefix string, otp bool) string {
	if otp {
		return prefix + TopicRouterOTP
	}
	return prefix + TopicRouterBulk
}

// OutboundTopic is the name of a carrier's outbound lane (LaneOTP or LaneBulk).
func OutboundTopic(prefix, carrier, lane string) string {
	return prefix + "sluice.outbound." + carrier + "." + lane
}

// SMPPReceiptsTopic is the name of an SMPP tenant's receipts topic.
func SMPPReceiptsTopic(prefix, tenant string) string {
	return prefix + strings.ReplaceAll(TopicSMPPReceipts, TenantPlaceholder, tenant)
}

// SMPPMOTopic is the name of an SMPP tenant's mobile-originated topic.
func SMPPMOTopic(prefix, tenant string) string {
	return prefix + strings.ReplaceAll(TopicSMPPMO, TenantPlaceholder, tenant)
}

// Topic is one entry of the catalogue.
type Topic struct {
	Name        string // with "{carrier}" in a per-carrier template; prefixed once resolved
	Key         string // what the record key holds
	Format      string // FormatJSON or FormatProtobuf
	Value       string // path of the JSON Schema in FS, or full protobuf message name
	Cleanup     string // CleanupDelete or CleanupCompact
	Description string
	Partitions  int           // 0 in a per-carrier template: the carrier's binds
	Retention   time.Duration // 0 on compacted topics
	Public      bool
	PerCarrier  bool
	PerTenant   bool // a template expanded once per SMPP tenant
	// SamePartitionsAs names the topic this one is co-partitioned with (it is
	// read partition by partition alongside it), "" if none.
	SamePartitionsAs string
	Headers          []string // headers every record carries, if any
	Carrier          string   // set by Resolve on per-carrier topics
	Tenant           string   // set by Resolve on per-tenant topics
}

// Config returns the topic-level Kafka configuration to create it with.
func (t Topic) Config() map[string]string {
	c := map[string]string{"cleanup.policy": t.Cleanup}
	if t.Cleanup != CleanupCompact {
		c["retention.ms"] = strconv.FormatInt(t.Retention.Milliseconds(), 10)
	}
	return c
}

// CarrierSlots is what Resolve needs to know of a carrier: its id and the
// number of binds it allows (its outbound lanes' partition count).
type CarrierSlots struct {
	ID    string
	Binds int
}

// Catalogue returns the topics of topics.yaml, validated, in file order, with
// per-carrier names still templated and without prefix.
func Catalogue() ([]Topic, error) {
	topics, err := parsedCatalogue()
	if err != nil {
		return nil, err
	}
	return cloneTopics(topics), nil
}

// Resolve returns every topic to create for the given prefix, carriers and
// SMPP tenants: the fixed ones prefixed, each per-carrier template expanded
// once per carrier with Binds partitions, and each per-tenant template once
// per tenant.
func Resolve(prefix string, carriers []CarrierSlots, tenants []string) ([]Topic, error) {
	topics, err := parsedCatalogue()
	if err != nil {
		return nil, err
	}
	if prefix != "" && !validName.MatchString(prefix) {
		return nil, fmt.Errorf("topic prefix %q: only letters, digits, '.', '_' and '-' are allowed", prefix)
	}
	seen := make(map[string]bool, len(carriers))
	for _, c := range carriers {
		if !validName.MatchString(c.ID) || strings.Contains(c.ID, ".") {
			return nil, fmt.Errorf("carrier id %q: only letters, digits, '_' and '-' are allowed in topic names", c.ID)
		}
		if seen[c.ID] {
			return nil, fmt.Errorf("carrier id %q listed twice", c.ID)
		}
		seen[c.ID] = true
		if c.Binds < 1 {
			return nil, fmt.Errorf("carrier %s: binds must be at least 1, got %d", c.ID, c.Binds)
		}
	}
	for _, id := range tenants {
		if !validName.MatchString(id) || strings.Contains(id, ".") {
			return nil, fmt.Errorf("tenant id %q: only letters, digits, '_' and '-' are allowed in topic names", id)
		}
	}
	var out []Topic
	for _, t := range cloneTopics(topics) {
		if t.PerTenant {
			for _, id := range tenants {
				tt := t
				tt.Name = prefix + strings.ReplaceAll(t.Name, TenantPlaceholder, id)
				tt.Tenant = id
				tt.Headers = slices.Clone(t.Headers)
				out = append(out, tt)
			}
			continue
		}
		if !t.PerCarrier {
			t.Name = TopicName(prefix, t.Name)
			if t.SamePartitionsAs != "" {
				t.SamePartitionsAs = TopicName(prefix, t.SamePartitionsAs)
			}
			out = append(out, t)
			continue
		}
		for _, c := range carriers {
			ct := t
			ct.Name = prefix + strings.ReplaceAll(t.Name, CarrierPlaceholder, c.ID)
			ct.Partitions = c.Binds
			ct.Carrier = c.ID
			ct.Headers = slices.Clone(t.Headers)
			out = append(out, ct)
		}
	}
	for _, t := range out {
		if len(t.Name) > maxTopicName {
			return nil, fmt.Errorf("topic name %q is longer than %d characters", t.Name, maxTopicName)
		}
	}
	return out, nil
}

// Kafka's own limits on topic names.
var validName = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

const maxTopicName = 249

var parsedCatalogue = sync.OnceValues(func() ([]Topic, error) {
	data, err := files.ReadFile("topics.yaml")
	if err != nil {
		return nil, fmt.Errorf("read topic catalogue: %w", err)
	}
	topics, err := parseCatalogue(data)
	if err != nil {
		return nil, fmt.Errorf("topic catalogue: %w", err)
	}
	return topics, nil
})

// yamlTopic is one entry of topics.yaml as written.
type yamlTopic struct {
	Name             string   `yaml:"name"`
	Public           bool     `yaml:"public"`
	PerCarrier       bool     `yaml:"per_carrier"`
	PerTenant        bool     `yaml:"per_tenant"`
	Key              string   `yaml:"key"`
	Format           string   `yaml:"format"`
	Value            string   `yaml:"value"`
	Partitions       int      `yaml:"partitions"`
	SamePartitionsAs string   `yaml:"same_partitions_as"`
	Retention        string   `yaml:"retention"`
	Cleanup          string   `yaml:"cleanup"`
	Headers          []string `yaml:"headers"`
	Description      string   `yaml:"description"`
}

func parseCatalogue(data []byte) ([]Topic, error) {
	var doc struct {
		Topics []yamlTopic `yaml:"topics"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if len(doc.Topics) == 0 {
		return nil, errors.New("no topics")
	}
	topics := make([]Topic, 0, len(doc.Topics))
	index := make(map[string]int, len(doc.Topics))
	for _, y := range doc.Topics {
		t, err := y.topic()
		if err != nil {
			return nil, fmt.Errorf("topic %q: %w", y.Name, err)
		}
		if _, dup := index[t.Name]; dup {
			return nil, fmt.Errorf("topic %q listed twice", t.Name)
		}
		index[t.Name] = len(topics)
		topics = append(topics, t)
	}
	// Co-partitioning refers to a fixed-size topic listed anywhere in the file.
	for i, t := range topics {
		if t.SamePartitionsAs == "" {
			continue
		}
		j, ok := index[t.SamePartitionsAs]
		if !ok {
			return nil, fmt.Errorf("topic %q: same_partitions_as names unknown topic %q", t.Name, t.SamePartitionsAs)
		}
		if topics[j].Partitions == 0 {
			return nil, fmt.Errorf("topic %q: same_partitions_as %q, which has no fixed partition count", t.Name, t.SamePartitionsAs)
		}
		topics[i].Partitions = topics[j].Partitions
	}
	return topics, nil
}

func (y yamlTopic) topic() (Topic, error) {
	t := Topic{
		Name: y.Name, Key: y.Key, Format: y.Format, Value: y.Value, Cleanup: y.Cleanup,
		Description: strings.TrimSpace(y.Description), Partitions: y.Partitions,
		Public: y.Public, PerCarrier: y.PerCarrier, PerTenant: y.PerTenant, SamePartitionsAs: y.SamePartitionsAs,
		Headers: y.Headers,
	}
	if !validName.MatchString(strings.NewReplacer(CarrierPlaceholder, "c", TenantPlaceholder, "t").Replace(y.Name)) {
		return t, errors.New("invalid name")
	}
	if y.PerCarrier != strings.Contains(y.Name, CarrierPlaceholder) {
		return t, fmt.Errorf("per_carrier must be set exactly when the name contains %s", CarrierPlaceholder)
	}
	if y.PerTenant != strings.Contains(y.Name, TenantPlaceholder) || y.PerTenant && y.PerCarrier {
		return t, fmt.Errorf("per_tenant must be set exactly when the name contains %s, and not with per_carrier", TenantPlaceholder)
	}
	if y.Key == "" || t.Description == "" {
		return t, errors.New("key and description are required")
	}
	switch {
	case y.PerCarrier && (y.Partitions != 0 || y.SamePartitionsAs != ""):
		return t, errors.New("a per-carrier topic takes its partitions from the carrier's binds")
	case !y.PerCarrier && (y.Partitions > 0) == (y.SamePartitionsAs != ""):
		return t, errors.New("exactly one of partitions (> 0) and same_partitions_as is required")
	}
	retention, err := time.ParseDuration(y.Retention)
	if err != nil {
		return t, fmt.Errorf("retention: %w", err)
	}
	t.Retention = retention
	switch {
	case (y.Cleanup == CleanupDelete || y.Cleanup == CleanupCompactDelete) && retention <= 0:
		return t, fmt.Errorf("a %s topic needs a positive retention", y.Cleanup)
	case y.Cleanup == CleanupCompact && retention != 0:
		return t, errors.New("a compacted topic keeps its records: retention must be 0s")
	case y.Cleanup != CleanupDelete && y.Cleanup != CleanupCompact && y.Cleanup != CleanupCompactDelete:
		return t, fmt.Errorf("cleanup %q: want delete, compact or compact,delete", y.Cleanup)
	}
	return t, checkValue(y.Format, y.Value)
}

// checkValue makes sure the value schema a topic names exists.
func checkValue(format, value string) error {
	switch format {
	case FormatJSON:
		data, err := files.ReadFile(value)
		if err != nil {
			return fmt.Errorf("value schema: %w", err)
		}
		if !json.Valid(data) {
			return fmt.Errorf("value schema %s is not valid JSON", value)
		}
	case FormatProtobuf:
		if _, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(value)); err != nil {
			return fmt.Errorf("value message %s: %w", value, err)
		}
	default:
		return fmt.Errorf("format %q: want json or protobuf", format)
	}
	return nil
}

func cloneTopics(topics []Topic) []Topic {
	out := slices.Clone(topics)
	for i := range out {
		out[i].Headers = slices.Clone(out[i].Headers)
	}
	return out
}
