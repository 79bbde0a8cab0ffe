-- Delivery rate by carrier, destination country and hour of the outcome:
-- of the messages that reached a final carrier outcome in the hour, the share
-- delivered. Counts distinct message ids, so replayed events count once.
SELECT
    toStartOfHour(event_time) AS hour,
    carrier,
    country,
    uniqExact(message_id) AS finished,
    uniqExactIf(message_id, status = 'delivered') AS delivered,
    round(delivered / finished, 4) AS delivery_rate
FROM {db:Identifier}.message_events
WHERE event_time >= {from:DateTime} AND event_time < {to:DateTime}
  AND status IN ('delivered', 'undelivered', 'expired', 'failed', 'unknown')
GROUP BY hour, carrier, country
ORDER BY hour, carrier, country
