-- The cluster's identity, the same whatever address or socket reaches it (restore targets). One row.
-- initdb draws system_identifier; a physical copy of a cluster (a replica) shares it.
select system_identifier::text as system_identifier from pg_control_system()
