-- One row per status change of a message (the sms.status events).
--
-- The sorting key ends in event_id, which is derived from (message_id, status),
-- so a replayed event lands on the same key and background merges keep one
-- copy. Until they do, exact figures need FINAL or uniqExact(message_id).
-- Every key column must be the same in a replay: only ids and the tenant are.
--
-- status, encoding and priority are String rather than Enum8 so that a status
-- added later never makes an insert (and with it the dlr service) fail.
-- Unknown times are 0 (1970-01-01 00:00:00); unknown latencies are 0.
CREATE TABLE IF NOT EXISTS {db:Identifier}.message_events
(
    event_id            String,
    event_time          DateTime('UTC'),
    event_date          Date DEFAULT toDate(event_time),
    message_id          String,
    tenant              String,
    campaign_id         String,
    client_ref          String,
    carrier             String,
    country             String,
    status              String,
    reason              String,
    error_code          String,
    segments            UInt16,
    encoding            String,
    priority            String,
    accepted_at         DateTime('UTC'),
    submitted_at        DateTime('UTC'),
    done_at             DateTime('UTC'),
    submit_latency_ms   UInt32,  -- accepted -> submitted, when both are known
    delivery_latency_ms UInt32   -- submitted -> delivery receipt, when both are known
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_date)
ORDER BY (tenant, message_id, event_id);
