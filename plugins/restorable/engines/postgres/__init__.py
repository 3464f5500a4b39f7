"""PostgreSQL: logical dumps with pg_dump in an exported snapshot, described from the catalogs."""
