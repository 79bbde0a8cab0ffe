-- Why messages were not delivered: distinct messages per carrier, final
-- status and error code, most frequent first.
SELECT
    carrier,
    status,
    error_code,
    uniqExact(message_id) AS messages
FROM {db:Identifier}.message_events
WHERE event_time >= {from:DateTime} AND event_time < {to:DateTime}
  AND status IN ('undelivered', 'expired', 'failed', 'unknown', 'rejected')
GROUP BY carrier, status, error_code
ORDER BY messages DESC, carrier, status, error_code
