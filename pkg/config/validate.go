package config

import (
	"errors"
	"fmt"
	"strings"
)

// Validate reports every problem of a configuration at once.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if len(c.Kafka.Brokers) == 0 {
		add("kafka.brokers: at least one broker is required")
	}
	if c.Kafka.ReplicationFactor < 1 {
		add("kafka.replication_factor: must be at least 1")
	}
	if c.ClickHouse.BatchSize < 1 {
		add("clickhouse.batch_size: must be at least 1")
	}
	if c.ClickHouse.RetentionMonths < 0 {
		add("clickhouse.retention_months: %d is negative; want 0 (keep forever) or the months to keep", c.ClickHouse.RetentionMonths)
	}
	if c.DLR.Retention <= 0 || c.DLR.UnmatchedAfter <= 0 || c.DLR.SweepInterval <= 0 || c.DLR.Grace < 0 {
		add("dlr: retention, unmatched_after and sweep_interval must be positive, grace not negative")
	}
	if c.DLR.WebhookBackoff <= 0 || c.DLR.WebhookGiveUp <= 0 || c.DLR.WebhookTimeout <= 0 {
		add("dlr: webhook_backoff, webhook_give_up and webhook_timeout must be positive")
	}
	if c.Ingest.MaxSegments < 1 {
		add("ingest.max_segments: must be at least 1")
	}

	tenants := map[string]bool{}
	kannelUsers := map[string]bool{}
	for i, t := range c.Tenants {
		switch {
		case t.ID == "":
			add("tenants[%d].id: required", i)
		case tenants[t.ID]:
			add("tenants[%d].id: %q is declared twice", i, t.ID)
		case t.SMPPSystemID != "" && !topicSafe(t.ID):
			add("tenants[%d].id: %q: a tenant of the SMPP front door names topics: only letters, digits, '_' and '-'", i, t.ID)
		}
		tenants[t.ID] = true
		for j, h := range t.APIKeySHA256 {
			if !isHexSHA256(h) {
				add("tenants[%d].api_key_sha256[%d]: not a hex SHA-256 (64 hex digits)", i, j)
			}
		}
		for _, msg := range checkKannel(t, kannelUsers) {
			add("tenants[%d] (%s): %s", i, t.ID, msg)
		}
		if t.RateLimit < 0 || t.DailyQuota < 0 || t.HTTPRateLimit < 0 {
			add("tenants[%d]: rate_limit, daily_quota and http_rate_limit must not be negative", i)
		}
	}

	carriers := map[string]bool{}
	for i, cr := range c.Carriers {
		switch {
		case cr.ID == "":
			add("carriers[%d].id: required", i)
		case carriers[cr.ID]:
			add("carriers[%d].id: %q is declared twice", i, cr.ID)
		case strings.ContainsAny(cr.ID, ". :/"):
			add("carriers[%d].id: %q may not contain '.', ':', '/' or spaces (it names topics)", i, cr.ID)
		}
		carriers[cr.ID] = true
		if cr.Host == "" || cr.Port <= 0 || cr.Port > 65535 {
			add("carriers[%d] (%s): host and a port 1-65535 are required", i, cr.ID)
		}
		if cr.Binds < 1 || cr.TPS < 1 || cr.Window < 1 {
			add("carriers[%d] (%s): binds, tps and window must be at least 1", i, cr.ID)
		}
		if cr.RespTimeout < 0 || cr.RetryAttempts < 0 || cr.RetryDelay < 0 {
			add("carriers[%d] (%s): resp_timeout, retry_attempts and retry_delay must not be negative", i, cr.ID)
		}
		switch cr.LongMessages {
		case "", LongUDH, LongSAR, LongPayload:
		default:
			add("carriers[%d] (%s): long_messages %q: want udh, sar or payload", i, cr.ID, cr.LongMessages)
		}
		if msg := cr.ReceiptIDs.validate(); msg != "" {
			add("carriers[%d] (%s): receipt_ids: %s", i, cr.ID, msg)
		}
		if cr.ReceiptHandlers < 0 {
			add("carriers[%d] (%s): receipt_handlers must not be negative", i, cr.ID)
		}
		switch cr.BindMode {
		case "", BindTransceiver, BindTransmitterReceiver:
		default:
			add("carriers[%d] (%s): bind_mode %q: want transceiver or transmitter_receiver", i, cr.ID, cr.BindMode)
		}
	}

	for i, r := range c.Routes {
		if !strings.HasPrefix(r.Prefix, "+") {
			add("routes[%d].prefix: %q must start with '+'", i, r.Prefix)
		}
		if len(r.Carriers) == 0 {
			add("routes[%d] (%s): at least one carrier is required", i, r.Prefix)
		}
		for _, rc := range r.Carriers {
			if !carriers[rc.ID] {
				add("routes[%d] (%s): unknown carrier %q", i, r.Prefix, rc.ID)
			}
			if rc.Weight < 0 {
				add("routes[%d] (%s): carrier %q has a negative weight", i, r.Prefix, rc.ID)
			}
		}
		for _, id := range r.Failover {
			if !carriers[id] {
				add("routes[%d] (%s): unknown failover carrier %q", i, r.Prefix, id)
			}
		}
	}
	for _, id := range c.Sender.Carriers {
		if !carriers[id] {
			add("sender.carriers: unknown carrier %q", id)
		}
	}
	return errors.Join(errs...)
}

func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}

// Carrier returns the carrier with the given id.
func (c Config) Carrier(id string) (Carrier, bool) {
	for _, cr := range c.Carriers {
		if cr.ID == id {
			return cr, true
		}
	}
	return Carrier{}, false
}

// topicSafe says whether id may stand in a Kafka topic name between dots.
func topicSafe(id string) bool {
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return id != ""
}
