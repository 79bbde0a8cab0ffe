-- Why the router chose the message's carrier (prefix +44 weighted, ... failover,
-- ... after a routing error ...), from the sms.status events that carry it.
-- ClickHouse 18.16 knows no ADD COLUMN IF NOT EXISTS: Migrate takes "column
-- already exists" from a process migrating at the same time as done.
ALTER TABLE {db:Identifier}.message_events ADD COLUMN route_reason String;
ALTER TABLE {db:Identifier}.messages ADD COLUMN route_reason String;
