-- Section "types": user-defined enums (ordered labels), domains (base type, default, constraints),
-- standalone composite types and ranges. Row types of tables and implicit array types are left out.
select array[n.nspname, t.typname] as name,
       case t.typtype
           when 'e' then 'enum (' || coalesce((
               select string_agg(quote_literal(e.enumlabel), ', ' order by e.enumsortorder)
               from pg_enum e where e.enumtypid = t.oid), '') || ')'
           when 'd' then 'domain ' || format_type(t.typbasetype, t.typtypmod)
               || case when t.typnotnull then ' not null' else '' end
               || coalesce(' default ' || t.typdefault, '')
               || coalesce((
                   select ' ' || string_agg(dc.conname || ' ' || pg_get_constraintdef(dc.oid), ' '
                                            order by dc.conname)
                   from pg_constraint dc where dc.contypid = t.oid), '')
           when 'c' then 'composite (' || coalesce((
               select string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod),
                                 ', ' order by a.attnum)
               from pg_attribute a
               where a.attrelid = t.typrelid and a.attnum > 0 and not a.attisdropped), '') || ')'
           when 'r' then 'range of ' || (select format_type(r.rngsubtype, null)
                                         from pg_range r where r.rngtypid = t.oid)
           else 'base type'
       end as value
from pg_type t
join pg_namespace n on n.oid = t.typnamespace
where n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
  and t.typtype in ('b', 'c', 'd', 'e', 'r')
  and (t.typtype <> 'c' or exists (select 1 from pg_class c where c.oid = t.typrelid and c.relkind = 'c'))
  and not (t.typcategory = 'A' and t.typelem <> 0)
  and not exists (select 1 from pg_depend d
                  where d.classid = 'pg_type'::regclass and d.objid = t.oid and d.deptype = 'e')
order by 1
