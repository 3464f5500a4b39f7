-- MariaDB GTID position of the binary log (the snapshot's GTID under the global read lock).
SELECT @@GLOBAL.gtid_binlog_pos AS gtid_binlog_pos
