-- The latest status of each message. version orders a message's events:
-- (status rank << 48) | event time in Unix milliseconds, where the rank is
-- 1 accepted, 2 scheduled, 3 submitted, 4 any final status. A final status
-- therefore wins over earlier ones whatever order the rows arrive in; between
-- two rows of one rank the later event wins. Read it with FINAL (or argMax by
-- version). No partition key: every row of a message must share a partition
-- for the replacement to happen, and no time column is known for all of them.
CREATE TABLE IF NOT EXISTS {db:Identifier}.messages
(
    tenant              String,
    message_id          String,
    client_ref          String,
    campaign_id         String,
    carrier             String,
    country             String,
    status              String,
    reason              String,
    error_code          String,
    segments            UInt16,
    encoding            String,
    priority            String,
    event_time          DateTime('UTC'),
    accepted_at         DateTime('UTC'),
    submitted_at        DateTime('UTC'),
    done_at             DateTime('UTC'),
    submit_latency_ms   UInt32,
    delivery_latency_ms UInt32,
    version             UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (tenant, message_id);
