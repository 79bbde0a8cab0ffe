-- Per-carrier delivery report over the events of the range (the demo prints
-- it). sent: distinct messages submitted to the carrier or with a carrier
-- outcome; delivered; failed: undelivered, expired or failed; unknown: no
-- outcome known. Latency is submit acknowledged -> receipt received, over the
-- events that know both (quantileExact: value at floor(level * n)). FINAL and
-- uniqExact keep replayed events from counting twice.
SELECT
    carrier,
    uniqExactIf(message_id, status IN ('submitted', 'delivered', 'undelivered', 'expired', 'failed', 'unknown')) AS sent,
    uniqExactIf(message_id, status = 'delivered') AS delivered,
    uniqExactIf(message_id, status IN ('undelivered', 'expired', 'failed')) AS failed,
    uniqExactIf(message_id, status = 'unknown') AS unknown,
    toFloat64(quantileExactIf(0.5)(delivery_latency_ms, submitted_at > 0 AND done_at > 0)) AS p50_ms,
    toFloat64(quantileExactIf(0.99)(delivery_latency_ms, submitted_at > 0 AND done_at > 0)) AS p99_ms
FROM {db:Identifier}.message_events FINAL
WHERE event_time >= {from:DateTime} AND event_time < {to:DateTime}
  AND carrier != ''
GROUP BY carrier
ORDER BY carrier
