-- MySQL GTID set executed so far (empty when gtid_mode is OFF).
SELECT @@GLOBAL.gtid_executed AS gtid_executed
