-- Run first in capture's REPEATABLE READ READ ONLY transaction: exports the snapshot pg_dump
-- will share and records where it sits in the server's history. On a standby the replay LSN
-- stands in for the current WAL position.
select pg_export_snapshot() as snapshot_id,
       (case when pg_is_in_recovery() then pg_last_wal_replay_lsn() else pg_current_wal_lsn() end)::text
           as wal_lsn,
       txid_current_snapshot()::text as txid_snapshot,
       transaction_timestamp() as snapshot_time
