-- Delivery latency (submit acknowledged -> receipt received) per carrier, over
-- the outcome events of the range that know both times. FINAL folds replayed
-- events; quantileExact takes the value at position floor(level * n) of the
-- sorted latencies.
SELECT
    carrier,
    count() AS receipts,
    toFloat64(quantileExact(0.5)(delivery_latency_ms)) AS p50_ms,
    toFloat64(quantileExact(0.9)(delivery_latency_ms)) AS p90_ms,
    toFloat64(quantileExact(0.99)(delivery_latency_ms)) AS p99_ms
FROM {db:Identifier}.message_events FINAL
WHERE event_time >= {from:DateTime} AND event_time < {to:DateTime}
  AND submitted_at > 0 AND done_at > 0
GROUP BY carrier
ORDER BY carrier
