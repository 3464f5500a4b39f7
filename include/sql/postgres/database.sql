-- Section "database": the properties CREATE DATABASE needs to recreate the database alike. One row.
select jsonb_build_object(
           'encoding', pg_encoding_to_char(d.encoding),
           'collate', d.datcollate,
           'ctype', d.datctype) as value
from pg_database d
where d.datname = current_database()
