-- Messages submitted in the range whose latest status is still 'submitted':
-- the carrier acknowledged them but no receipt has come yet. FINAL makes
-- messages show each message's latest status only. Oldest first, at most
-- 10,000.
SELECT
    tenant,
    message_id,
    carrier,
    country,
    campaign_id,
    submitted_at
FROM {db:Identifier}.messages FINAL
WHERE status = 'submitted'
  AND submitted_at >= {from:DateTime} AND submitted_at < {to:DateTime}
ORDER BY submitted_at, tenant, message_id
LIMIT 10000
