-- Bookkeeping of applied migrations. Two processes racing through the same
-- migration both insert its row; ReplacingMergeTree folds them into one.
CREATE TABLE IF NOT EXISTS {db:Identifier}.schema_migrations
(
    version    UInt32,
    name       String,
    checksum   String,          -- SHA-256 of the migration file as shipped
    applied_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY version;
