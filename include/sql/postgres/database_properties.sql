-- Section "database_properties": what pg_dump leaves out unless it recreates the database itself
-- (--create), and a restore into a database of another name must therefore apply on its own: owner,
-- comment, connection limit, privileges on the database, and the settings of ALTER DATABASE ... SET
-- (for everyone, and per role in this database). Privileges are "grantee:PRIVILEGE[:grantable]", the
-- built-in default spelled out when the ACL is NULL, so both spellings compare equal. One row.
select jsonb_build_object(
           'owner', pg_get_userbyid(d.datdba),
           'comment', shobj_description(d.oid, 'pg_database'),
           'connection_limit', d.datconnlimit,
           'privileges', coalesce((
               select jsonb_agg(x.item order by x.item collate "C")
               from (select distinct
                            case a.grantee when 0 then 'PUBLIC' else pg_get_userbyid(a.grantee) end
                            || ':' || a.privilege_type
                            || case when a.is_grantable then ':grantable' else '' end as item
                     from aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a) x), '[]'),
           'settings', coalesce((
               select jsonb_agg(s.setting order by s.setting collate "C")
               from pg_db_role_setting rs cross join unnest(rs.setconfig) as s(setting)
               where rs.setdatabase = d.oid and rs.setrole = 0), '[]'),
           'role_settings', coalesce((
               select jsonb_object_agg(r.role, r.settings)
               from (select pg_get_userbyid(rs.setrole) as role,
                            (select jsonb_agg(s.setting order by s.setting collate "C")
                             from unnest(rs.setconfig) as s(setting)) as settings
                     from pg_db_role_setting rs
                     where rs.setdatabase = d.oid and rs.setrole <> 0) r), '{}')) as value
from pg_database d
where d.datname = current_database()
