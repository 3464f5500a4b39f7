-- Roles the database uses: owners of its objects and event triggers, grantees in its ACLs and
-- default ACLs and on the database itself, roles named in row-level security policies or given
-- settings in this database, the database owner, and (transitively) the roles these
-- are members of. Attributes only: this reads pg_roles, never pg_authid, and no password column.
with recursive used(oid) as (
    select n.nspowner from pg_namespace n
    where n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
    union select c.relowner from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
    union select p.proowner from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
    union select t.typowner from pg_type t join pg_namespace n on n.oid = t.typnamespace
    where n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
    union select l.lomowner from pg_largeobject_metadata l
    union select d.defaclrole from pg_default_acl d
    union select d.datdba from pg_database d where d.datname = current_database()
    union select r.role from pg_policy p cross join unnest(p.polroles) as r(role)
    union select e.evtowner from pg_event_trigger e
    union select rs.setrole from pg_db_role_setting rs join pg_database d on d.oid = rs.setdatabase
    where d.datname = current_database()
    union select (aclexplode(d.datacl)).grantee from pg_database d where d.datname = current_database()
    union select (aclexplode(n.nspacl)).grantee from pg_namespace n
    where n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
    union select (aclexplode(c.relacl)).grantee from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
    union select (aclexplode(a.attacl)).grantee from pg_attribute a
    join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
    where a.attacl is not null and n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
    union select (aclexplode(p.proacl)).grantee from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
    union select (aclexplode(t.typacl)).grantee from pg_type t join pg_namespace n on n.oid = t.typnamespace
    where n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
    union select (aclexplode(l.lomacl)).grantee from pg_largeobject_metadata l
    union select (aclexplode(d.defaclacl)).grantee from pg_default_acl d
),
closure(oid) as (
    select oid from used where oid <> 0
    union
    select m.roleid from pg_auth_members m join closure c on m.member = c.oid
)
select r.rolname as key,
       jsonb_build_object(
           'name', r.rolname,
           'rolsuper', r.rolsuper,
           'rolinherit', r.rolinherit,
           'rolcreaterole', r.rolcreaterole,
           'rolcreatedb', r.rolcreatedb,
           'rolcanlogin', r.rolcanlogin,
           'rolreplication', r.rolreplication,
           'rolbypassrls', r.rolbypassrls,
           'rolconnlimit', r.rolconnlimit,
           'member_of', coalesce((
               select jsonb_agg(jsonb_build_object('role', g.role, 'admin_option', g.admin_option)
                                order by g.role collate "C")
               from (select pr.rolname as role, bool_or(m.admin_option) as admin_option
                     from pg_auth_members m join pg_roles pr on pr.oid = m.roleid
                     where m.member = r.oid group by pr.rolname) g), '[]'::jsonb)
       ) as value
from pg_roles r
join closure c on c.oid = r.oid
order by 1
