-- Campaign funnel: per tenant and campaign, the distinct messages that reached
-- each stage within the range.
SELECT
    tenant,
    campaign_id,
    uniqExactIf(message_id, status = 'accepted') AS accepted,
    uniqExactIf(message_id, status = 'rejected') AS rejected,
    uniqExactIf(message_id, status = 'submitted') AS submitted,
    uniqExactIf(message_id, status = 'delivered') AS delivered,
    uniqExactIf(message_id, status IN ('undelivered', 'expired', 'failed')) AS not_delivered,
    uniqExactIf(message_id, status = 'unknown') AS unknown
FROM {db:Identifier}.message_events
WHERE event_time >= {from:DateTime} AND event_time < {to:DateTime}
GROUP BY tenant, campaign_id
ORDER BY tenant, campaign_id
