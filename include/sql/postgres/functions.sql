-- Section "functions": functions and procedures keyed by identity arguments, valued by the md5 of
-- pg_get_functiondef. Aggregates have no functiondef: the md5 covers their pg_aggregate parts.
select array[n.nspname, p.proname] as name, '(' || pg_get_function_identity_arguments(p.oid) || ')' as arguments,
       md5(case when p.prokind = 'a' then (
               select concat_ws(' ', a.aggkind, a.aggtransfn::regprocedure::text,
                                a.aggfinalfn::regproc::text, a.aggcombinefn::regproc::text,
                                format_type(a.aggtranstype, null), a.agginitval,
                                a.aggsortop::regoperator::text)
               from pg_aggregate a where a.aggfnoid = p.oid)
           else pg_get_functiondef(p.oid) end) as value
from pg_proc p
join pg_namespace n on n.oid = p.pronamespace
where n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
  and not exists (select 1 from pg_depend d
                  where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
order by 1
