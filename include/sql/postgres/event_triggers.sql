-- Section "event_triggers": the database's event triggers (pg_dump keeps them; creating them again
-- takes a superuser), not those that belong to an extension.
select e.evtname as key,
       jsonb_build_object(
           'event', e.evtevent,
           'function', e.evtfoid::regprocedure::text,
           'enabled', e.evtenabled::text,
           'owner', pg_get_userbyid(e.evtowner),
           'tags', to_jsonb(e.evttags)) as value
from pg_event_trigger e
where not exists (select 1 from pg_depend d
                  where d.classid = 'pg_event_trigger'::regclass and d.objid = e.oid and d.deptype = 'e')
order by 1
