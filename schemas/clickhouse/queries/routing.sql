-- Routing: per carrier and the router's reason for choosing it (the route's
-- prefix and weighted, weighted among carriers up, failover, after a routing
-- error), the messages accepted within the range, how many have ended and
-- how many of those were delivered. One row per message: its latest status.
SELECT
    carrier,
    route_reason,
    count() AS messages,
    countIf(status IN ('delivered', 'undelivered', 'expired', 'failed', 'unknown')) AS finished,
    countIf(status = 'delivered') AS delivered,
    if(finished = 0, 0, round(delivered / finished, 4)) AS delivery_rate
FROM {db:Identifier}.messages FINAL
WHERE accepted_at >= {from:DateTime} AND accepted_at < {to:DateTime}
  AND carrier != ''
GROUP BY carrier, route_reason
ORDER BY carrier, route_reason
