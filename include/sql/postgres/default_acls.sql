-- Section "default_acls": ALTER DEFAULT PRIVILEGES entries, "<role> <schema or *> <object kind>"
-- -> sorted ACL items.
select pg_get_userbyid(d.defaclrole) || ' ' || coalesce(n.nspname, '*') || ' '
           || case d.defaclobjtype when 'r' then 'tables' when 'S' then 'sequences'
                                   when 'f' then 'functions' when 'T' then 'types'
                                   when 'n' then 'schemas' else d.defaclobjtype::text end as key,
       to_jsonb(coalesce((select array_agg(x::text order by x::text) from unnest(d.defaclacl) x), '{}'))
           as value
from pg_default_acl d
left join pg_namespace n on n.oid = d.defaclnamespace
order by 1
