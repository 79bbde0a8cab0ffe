-- Per minute, carrier, country and status: the number of status events, their
-- message parts, and latency quantile states, kept by the materialized view
-- below. One row per status (rather than a column per status) so that a new
-- status needs no schema change.
--
-- The view sees every inserted row, replays included, before
-- ReplacingMergeTree folds them: these figures are for dashboards. Exact
-- counts come from message_events with uniqExact(message_id) or FINAL.
--
-- Read with the -Merge combinators, e.g.
--   countMerge(events), sumMerge(parts),
--   quantilesTDigestMerge(0.5, 0.9, 0.99)(delivery_latency)
--
-- Latencies use t-digest, not quantilesTiming, which caps values at 30 s: a
-- receipt often comes minutes after the submit. Unknown latencies are left
-- out (NULL) rather than counted as 0.
--
-- The table takes its column types from the same SELECT as the view (with
-- WHERE 0): the type of a state over a Nullable argument differs between
-- 18.16 and current releases, and this way it always matches the view.
CREATE TABLE IF NOT EXISTS {db:Identifier}.carrier_stats_minute
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, carrier, country, status)
AS SELECT
    toStartOfMinute(event_time) AS minute,
    carrier,
    country,
    status,
    countState() AS events,
    sumState(toUInt64(segments)) AS parts,
    quantilesTDigestState(0.5, 0.9, 0.99)(if(accepted_at > 0 AND submitted_at > 0, toNullable(submit_latency_ms), NULL)) AS submit_latency,
    quantilesTDigestState(0.5, 0.9, 0.99)(if(submitted_at > 0 AND done_at > 0, toNullable(delivery_latency_ms), NULL)) AS delivery_latency
FROM {db:Identifier}.message_events
WHERE 0
GROUP BY minute, carrier, country, status;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db:Identifier}.carrier_stats_minute_mv
TO {db:Identifier}.carrier_stats_minute
AS SELECT
    toStartOfMinute(event_time) AS minute,
    carrier,
    country,
    status,
    countState() AS events,
    sumState(toUInt64(segments)) AS parts,
    quantilesTDigestState(0.5, 0.9, 0.99)(if(accepted_at > 0 AND submitted_at > 0, toNullable(submit_latency_ms), NULL)) AS submit_latency,
    quantilesTDigestState(0.5, 0.9, 0.99)(if(submitted_at > 0 AND done_at > 0, toNullable(delivery_latency_ms), NULL)) AS delivery_latency
FROM {db:Identifier}.message_events
GROUP BY minute, carrier, country, status;
