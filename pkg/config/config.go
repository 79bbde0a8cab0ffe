// Package config reads sluice.yaml: one file for every service, with ${VAR}
// expansion for secrets, SLUICE_* environment overrides, defaults and
// validation. Unknown keys are an error.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole of sluice.yaml. Fields tagged secret:"true" are masked
// by Redacted.
type Config struct {
	Kafka      Kafka      `yaml:"kafka"`
	ClickHouse ClickHouse `yaml:"clickhouse"`
	Ingest     Ingest     `yaml:"ingest"`
	Router     Router     `yaml:"router"`
	Sender     Sender     `yaml:"sender"`
	DLR        DLR        `yaml:"dlr"`
	Tenants    []Tenant   `yaml:"tenants"`
	Carriers   []Carrier  `yaml:"carriers"`
	Routes     []Route    `yaml:"routes"`
}

// Kafka says where the broker is and how topics are named.
type Kafka struct {
	Brokers           []string      `yaml:"brokers"`
	TopicPrefix       string        `yaml:"topic_prefix"`
	ReplicationFactor int           `yaml:"replication_factor"`
	BatchTimeout      time.Duration `yaml:"batch_timeout"` // producer linger
	CreateTopics      bool          `yaml:"create_topics"` // create missing topics from the catalogue at start
}

// ClickHouse is the analytics store (native protocol).
type ClickHouse struct {
	Addr          string        `yaml:"addr"`
	Database      string        `yaml:"database"`
	Username      string        `yaml:"username"`
	Password      string        `yaml:"password" secret:"true"`
	BatchSize     int           `yaml:"batch_size"`
	FlushInterval time.Duration `yaml:"flush_interval"`
	// RetentionMonths is how many months of analytics the monthly-partitioned
	// tables keep before the dlr drops their partitions (ClickHouse 18.16 has
	// no TTL); 0 keeps them forever, as a table without TTL does.
	RetentionMonths int `yaml:"retention_months"`
}

// Ingest is the front door.
type Ingest struct {
	AdminAddr   string `yaml:"admin_addr"`
	HTTPAddr    string `yaml:"http_addr"`
	MaxSegments int    `yaml:"max_segments"`
	// SMPPAddr is where the SMPP server front door listens ("" = off).
	SMPPAddr string `yaml:"smpp_addr"`
	// SMPPTLSCert and SMPPTLSKey (PEM files), when set, make the SMPP front
	// door speak TLS only.
	SMPPTLSCert string `yaml:"smpp_tls_cert"`
	SMPPTLSKey  string `yaml:"smpp_tls_key"`
	// StateDir holds the status index (an LSM store, kept current from
	// sms.status). "" means a temporary directory: the index is read back
	// from sms.status at each start.
	StateDir string `yaml:"state_dir"`
	// PeerAddr, when set, divides the status index between the replicas:
	// each holds the sms.status partitions the index group assigns it and
	// answers the others' lookups of them on this address. "" = every
	// replica holds every partition.
	PeerAddr string `yaml:"peer_addr"`
	// PeerURL is where the other replicas reach this one's PeerAddr
	// (default: the listener's address, or the host name and its port).
	PeerURL string `yaml:"peer_url"`
	// PeerSecret, when set, is the bearer token replicas send each other
	// on the peer API, which answers any tenant's lookups.
	PeerSecret string `yaml:"peer_secret" secret:"true"`
}

// Router routes accepted messages to carriers' outbound lanes.
type Router struct {
	AdminAddr string `yaml:"admin_addr"`
	// FailoverAfter is how long none of a carrier's binds may be up (as the
	// sender reports it) before its routes fail over to the next carrier.
	FailoverAfter time.Duration `yaml:"failover_after"`
	// QuietHours are the local times at which marketing is held, per
	// destination country.
	QuietHours []QuietHours `yaml:"quiet_hours"`
	OptOut     OptOut       `yaml:"opt_out"`
	// ReplyWindow is how long after a message an MO from its recipient is
	// a reply to it (sms.mo's in_reply_to, and the tenant of an MO to a
	// number nobody owns). 0: the router records no conversations, which
	// saves a record per message.
	ReplyWindow time.Duration `yaml:"reply_window"`
	// StateDir holds the schedule of held messages (an LSM store, restored
	// from the schedule topic). "" means a temporary directory: the
	// schedule is read back from the topic at each start.
	StateDir string `yaml:"state_dir"`
}

// QuietHours is a daily window, in a time zone, during which marketing to
// the listed countries waits. Start after End wraps past midnight.
type QuietHours struct {
	Countries []string `yaml:"countries"` // ISO 3166-1 alpha-2; "*": every country without a window of its own
	TimeZone  string   `yaml:"time_zone"` // IANA name, e.g. Europe/London
	Start     string   `yaml:"start"`     // HH:MM, local
	End       string   `yaml:"end"`       // HH:MM, local
}

// OptOut says which MO messages opt a subscriber out of marketing and back in.
type OptOut struct {
	// Keywords by language; an MO whose first word is one of them (any case)
	// opts out (stop) or back in (start). Empty: English defaults.
	Keywords map[string]Keywords `yaml:"keywords"`
	// Addresses maps the number or short code an MO was sent to onto the
	// tenant it concerns; an MO to any other address concerns every tenant.
	Addresses []OptOutAddress `yaml:"addresses"`
}

// Keywords are one language's opt-out and opt-in words.
type Keywords struct {
	Stop  []string `yaml:"stop"`
	Start []string `yaml:"start"`
}

// OptOutAddress assigns an MO destination address to a tenant.
type OptOutAddress struct {
	Address string `yaml:"address"`
	Tenant  string `yaml:"tenant"`
}

// Sender speaks SMPP to carriers.
type Sender struct {
	AdminAddr string `yaml:"admin_addr"`
	// Carriers this replica serves; empty means all.
	Carriers []string `yaml:"carriers"`
}

// DLR correlates receipts and writes analytics.
type DLR struct {
	AdminAddr string `yaml:"admin_addr"`
	// StateDir holds the correlation state (an LSM store, restored from the
	// changelog topics). "" means a temporary directory: everything is
	// restored from the changelogs at each start.
	StateDir string `yaml:"state_dir"`
	// Retention is how long a submit waits for its receipt when the message
	// has no validity, and how long a matched key is kept to drop duplicates.
	Retention time.Duration `yaml:"retention"`
	// Grace is added to a message's validity before it ends "expired"
	// without a receipt.
	Grace time.Duration `yaml:"grace"`
	// UnmatchedAfter is how long a receipt waits for its submit before it is
	// moved to sluice.dlr.unmatched.
	UnmatchedAfter time.Duration `yaml:"unmatched_after"`
	// SweepInterval is how often the timers are checked.
	SweepInterval time.Duration `yaml:"sweep_interval"`
	// Webhooks: a failed delivery is retried after WebhookBackoff, doubling
	// up to 10 minutes, until WebhookGiveUp after the event; one request
	// waits at most WebhookTimeout.
	WebhookBackoff time.Duration `yaml:"webhook_backoff"`
	WebhookGiveUp  time.Duration `yaml:"webhook_give_up"`
	WebhookTimeout time.Duration `yaml:"webhook_timeout"`
	// MOPartsTimeout is how long the parts of a concatenated MO wait for
	// the rest before what came is published, marked incomplete.
	MOPartsTimeout time.Duration `yaml:"mo_parts_timeout"`
}

// Tenant is a customer of the gateway.
type Tenant struct {
	ID           string   `yaml:"id"`
	APIKeySHA256 []string `yaml:"api_key_sha256" secret:"true"`
	RateLimit    int      `yaml:"rate_limit"`  // message parts per second, 0: none
	DailyQuota   int      `yaml:"daily_quota"` // messages per UTC day, 0: none
	Webhook      string   `yaml:"webhook"`
	// MOWebhook receives the tenant's sms.mo records, posted, signed and
	// retried like status webhooks.
	MOWebhook string `yaml:"mo_webhook"`
	// WebhookSecret keys the HMAC-SHA256 signature of webhook bodies.
	WebhookSecret string `yaml:"webhook_secret" secret:"true"`
	// HTTPRateLimit bounds the tenant's HTTP API requests per second (ingest
	// answers 429 beyond it), 0: none. RateLimit and DailyQuota are the
	// router's.
	HTTPRateLimit int `yaml:"http_rate_limit"`
	// SMPPSystemID and SMPPPasswordSHA256 (hex SHA-256 of the password) let
	// the tenant bind to the SMPP front door; SMPPMaxBinds bounds its
	// concurrent binds per ingest replica (0: 1).
	SMPPSystemID       string `yaml:"smpp_system_id"`
	SMPPPasswordSHA256 string `yaml:"smpp_password_sha256" secret:"true"`
	SMPPMaxBinds       int    `yaml:"smpp_max_binds"`
	// SMPPAllowedIPs, when set, are the addresses or CIDR ranges the tenant
	// may bind from.
	SMPPAllowedIPs []string `yaml:"smpp_allowed_ips"`
	// SMPPMONumbers are the tenant's numbers and short codes: messages from
	// handsets to them go to its SMPP binds as deliver_sm.
	SMPPMONumbers []string `yaml:"smpp_mo_numbers"`
	// KannelUsername and KannelPasswordSHA256 (hex SHA-256 of the password)
	// let the tenant use the Kannel-compatible /cgi-bin/sendsms, like a
	// Kannel sendsms-user. KannelDefaultSender is its default-sender (the
	// from of a request without one) and KannelDLRURL its dlr-url (the
	// callback of a request with a dlr-mask but no dlr-url).
	KannelUsername       string `yaml:"kannel_username"`
	KannelPasswordSHA256 string `yaml:"kannel_password_sha256" secret:"true"`
	KannelDefaultSender  string `yaml:"kannel_default_sender"`
	KannelDLRURL         string `yaml:"kannel_dlr_url" secret:"true"`
}

// Carrier is one SMPP account at an SMSC.
type Carrier struct {
	ID         string `yaml:"id"`
	Host       string `yaml:"host"`
	Port       int    `yaml:"port"`
	SystemID   string `yaml:"system_id"`
	Password   string `yaml:"password" secret:"true"`
	SystemType string `yaml:"system_type"`
	Binds      int    `yaml:"binds"`  // concurrent binds allowed, all replicas together
	TPS        int    `yaml:"tps"`    // message parts per second, all binds together
	Window     int    `yaml:"window"` // outstanding submit_sm per bind
	TLS        bool   `yaml:"tls"`
	// Sender options; zero means the default (see WithDefaults).
	RespTimeout   time.Duration `yaml:"resp_timeout"`   // no submit_sm_resp by then: outcome unknown; default 10s
	RetryAttempts int           `yaml:"retry_attempts"` // submits of a message refused with a retry-later status, in all; default 4
	RetryDelay    time.Duration `yaml:"retry_delay"`    // before the first retry, doubling each time up to 10m; default 30s
	LongMessages  string        `yaml:"long_messages"`  // how long texts go out: udh (default), sar or payload
	ReceiptIDs    ReceiptIDs    `yaml:"receipt_ids"`    // the base of the SMSC message id in the resp, the receipt text and the TLV
	BindMode      string        `yaml:"bind_mode"`      // transceiver (default), or transmitter_receiver: two connections per slot
	// ReceiptHandlers is how many deliver_sm a bind stores in Kafka at once; with all
	// busy it stops reading (TCP flow control slows the SMSC). Size it for the
	// carrier's receipts per second per bind times Kafka's produce latency; default
	// DefaultReceiptHandlers.
	ReceiptHandlers int `yaml:"receipt_handlers"`
	// RoutingErrors are the submit_sm_resp statuses with which this carrier
	// says it cannot reach a destination: such a message goes back to the
	// router, which sends it through another carrier of its route.
	RoutingErrors []uint32 `yaml:"routing_errors"`
}

// Bind modes of a carrier's slots.
const (
	BindTransceiver         = "transceiver"
	BindTransmitterReceiver = "transmitter_receiver"
)

// Long-message modes of a carrier.
const (
	LongUDH     = "udh"     // concatenated parts, a user data header in each
	LongSAR     = "sar"     // concatenated parts, SAR TLVs instead of a header
	LongPayload = "payload" // one submit_sm, the whole text in message_payload
)

// WithDefaults fills the carrier's sender options left at zero.
func (c Carrier) WithDefaults() Carrier {
	if c.RespTimeout == 0 {
		c.RespTimeout = 10 * time.Second
	}
	if c.RetryAttempts == 0 {
		c.RetryAttempts = 4
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = 30 * time.Second
	}
	if c.LongMessages == "" {
		c.LongMessages = LongUDH
	}
	c.ReceiptIDs = c.ReceiptIDs.WithDefaults()
	if c.BindMode == "" {
		c.BindMode = BindTransceiver
	}
	if c.ReceiptHandlers == 0 {
		c.ReceiptHandlers = DefaultReceiptHandlers
	}
	return c
}

// DefaultReceiptHandlers is a carrier's default receipt_handlers (see the README):
// receipts per second per bind times the produce latency they must ride out. Measured
// against a local Kafka, a bind took 3,700 receipts/s, 98% stored within 50 ms but the
// first ones after start in up to 1 s; 256 handlers still paused reading then, 512
// did not.
const DefaultReceiptHandlers = 512

// Addr is the carrier's SMPP address.
func (c Carrier) Addr() string { return fmt.Sprintf("%s:%d", c.Host, c.Port) }

// Route sends numbers with a prefix to weighted carriers.
type Route struct {
	Prefix   string         `yaml:"prefix"`
	Carriers []RouteCarrier `yaml:"carriers"`
	Failover []string       `yaml:"failover"`
}

// RouteCarrier is one carrier of a route and its share of the traffic.
type RouteCarrier struct {
	ID     string `yaml:"id"`
	Weight int    `yaml:"weight"`
}

// Default returns the configuration used for anything sluice.yaml leaves out.
func Default() Config {
	return Config{
		Kafka: Kafka{
			Brokers:           []string{"127.0.0.1:9092"},
			ReplicationFactor: 1,
			BatchTimeout:      5 * time.Millisecond,
			CreateTopics:      true,
		},
		ClickHouse: ClickHouse{
			Addr:          "127.0.0.1:9000",
			Database:      "sluice",
			Username:      "default",
			BatchSize:     10000,
			FlushInterval: time.Second,
		},
		Ingest: Ingest{AdminAddr: ":9101", HTTPAddr: ":8080", MaxSegments: 10},
		Router: Router{AdminAddr: ":9102", FailoverAfter: 30 * time.Second},
		Sender: Sender{AdminAddr: ":9103"},
		DLR: DLR{AdminAddr: ":9104", Retention: 72 * time.Hour, Grace: 10 * time.Minute,
			UnmatchedAfter: 24 * time.Hour, SweepInterval: time.Second,
			WebhookBackoff: time.Second, WebhookGiveUp: 24 * time.Hour, WebhookTimeout: 10 * time.Second,
			MOPartsTimeout: 5 * time.Minute},
	}
}

// Load reads the file at path, expanding ${VAR} from the process environment
// and applying SLUICE_* overrides.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(data, os.LookupEnv)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

var varRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expand replaces ${VAR} in the file's values (not its comments).
func expand(data []byte, lookup func(string) (string, bool)) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	var missing []string
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode {
			n.Value = varRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
				name := varRef.FindStringSubmatch(ref)[1]
				v, ok := lookup(name)
				if !ok {
					missing = append(missing, name)
				}
				return v
			})
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
	if len(missing) > 0 {
		return nil, fmt.Errorf("unset environment variables: %s", strings.Join(missing, ", "))
	}
	if doc.Kind == 0 {
		return nil, nil // empty file
	}
	return yaml.Marshal(&doc)
}

// Parse reads a configuration from YAML. lookup resolves ${VAR} references
// and SLUICE_* overrides; a reference to an unset variable is an error, so a
// missing secret is found at start, not at the first bind.
func Parse(data []byte, lookup func(string) (string, bool)) (Config, error) {
	expanded, err := expand(data, lookup)
	if err != nil {
		return Config{}, err
	}

	cfg := Default()
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("parse: %w", err)
	}
	if err := applyEnv(&cfg, lookup); err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}
