-- The server's identity, the same whatever address or socket reaches it (restore targets).
-- server_uuid exists on MySQL only; MariaDB is told apart by server_id, hostname and port.
SHOW GLOBAL VARIABLES WHERE Variable_name IN ('server_uuid', 'server_id', 'hostname', 'port')
