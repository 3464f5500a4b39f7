-- Server identity and binary logging: preflight and the manifest.
SELECT VERSION() AS version, @@version_comment AS version_comment, @@log_bin AS log_bin,
       @@server_id AS server_id, @@GLOBAL.net_write_timeout AS net_write_timeout
