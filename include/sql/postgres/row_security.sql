-- Section "row_security": tables with row-level security switched on ("table <schema>.<name>" ->
-- "enabled", "forced" or both) and every policy ("policy <schema>.<table>.<name>" -> its command,
-- kind, roles and expressions). A restore that lost these would hand every row to every reader.
select 'table' as kind, array[n.nspname, c.relname] as name,
       to_jsonb(concat_ws(', ', case when c.relrowsecurity then 'enabled' end,
                                case when c.relforcerowsecurity then 'forced' end)) as value
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
where (c.relrowsecurity or c.relforcerowsecurity)
  and n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
union all
select 'policy', array[n.nspname, c.relname, p.polname],
       jsonb_build_object(
           'command', case p.polcmd when 'r' then 'SELECT' when 'a' then 'INSERT' when 'w' then 'UPDATE'
                                    when 'd' then 'DELETE' else 'ALL' end,
           'permissive', p.polpermissive,
           'roles', (select jsonb_agg(x.name order by x.name collate "C")
                     from (select case r.oid when 0 then 'PUBLIC' else pg_get_userbyid(r.oid) end as name
                           from unnest(p.polroles) as r(oid)) x),
           'using', pg_get_expr(p.polqual, p.polrelid),
           'with_check', pg_get_expr(p.polwithcheck, p.polrelid))
from pg_policy p
join pg_class c on c.oid = p.polrelid
join pg_namespace n on n.oid = c.relnamespace
where n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
order by 1, 2
