-- Section "large_objects": how many there are and an md5 over (oid, md5 of content) in oid order.
-- Read-only large objects are read in the transaction's snapshot. pg_dump keeps their oids.
select jsonb_build_object(
           'count', count(*),
           'md5', md5(string_agg(l.oid::text || ':' || md5(lo_get(l.oid)), ',' order by l.oid))
       ) as value
from pg_largeobject_metadata l
