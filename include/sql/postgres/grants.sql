-- Section "grants": "<kind> <name>" -> sorted ACL items, for objects whose privileges differ from
-- the built-in default for their owner (a NULL ACL means the default, so both spellings compare
-- equal). Columns with their own ACL are listed as "column <schema>.<table>.<column>". The key is
-- made in describe.py from kind, name (the names, quoted there when needed) and arguments.
with objects(kind, name, arguments, acl, default_acl) as (
    select 'schema', array[n.nspname], null::text, n.nspacl, acldefault('n', n.nspowner)
    from pg_namespace n
    where n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
    union all
    select case c.relkind when 'S' then 'sequence' else 'table' end, array[n.nspname, c.relname], null,
           c.relacl, acldefault((case c.relkind when 'S' then 's' else 'r' end)::"char", c.relowner)
    from pg_class c
    join pg_namespace n on n.oid = c.relnamespace
    where c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
      and n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
      and not exists (select 1 from pg_depend d
                      where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
    union all
    select 'column', array[n.nspname, c.relname, a.attname], null, a.attacl, null::aclitem[]
    from pg_attribute a
    join pg_class c on c.oid = a.attrelid
    join pg_namespace n on n.oid = c.relnamespace
    where a.attacl is not null and a.attnum > 0 and not a.attisdropped
      and n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
    union all
    select 'function', array[n.nspname, p.proname], '(' || pg_get_function_identity_arguments(p.oid) || ')',
           p.proacl, acldefault('f', p.proowner)
    from pg_proc p
    join pg_namespace n on n.oid = p.pronamespace
    where n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
      and not exists (select 1 from pg_depend d
                      where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
    union all
    select 'type', array[n.nspname, t.typname], null, t.typacl, acldefault('T', t.typowner)
    from pg_type t
    join pg_namespace n on n.oid = t.typnamespace
    where t.typacl is not null
      and n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
    union all
    select 'large object', null, ' ' || l.oid, l.lomacl, acldefault('L', l.lomowner)
    from pg_largeobject_metadata l
    where l.lomacl is not null
),
normalized as (
    select kind, name, arguments,
           coalesce((select array_agg(x::text order by x::text) from unnest(coalesce(acl, default_acl)) x),
                    '{}') as acl,
           coalesce((select array_agg(x::text order by x::text) from unnest(default_acl) x), '{}')
               as default_acl
    from objects
)
select kind, name, arguments, to_jsonb(acl) as value
from normalized
where acl is distinct from default_acl
order by 1, 2, 3
