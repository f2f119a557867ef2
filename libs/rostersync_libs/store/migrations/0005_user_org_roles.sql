-- rostersync schema, version 5: one canonical view of who has which role in which org, whatever
-- the source said it in: 1.1 users.role + orgSourcedIds (user_orgs) or 1.2 roles.csv records
-- (user_roles). Roles are in the 1.2 vocabulary (docs/identity.md has the mapping table).
CREATE VIEW user_org_roles AS
SELECT o.tenant_id, o.user_internal_id, o.org_internal_id, o.role,
       'primary'::text AS role_type, NULL::date AS begin_date, NULL::date AS end_date,
       'users'::text AS declared_in
FROM user_orgs o
UNION ALL
SELECT r.tenant_id, r.user_internal_id, r.org_internal_id,
       coalesce(r.payload->>'canonicalRole', r.role) AS role,
       r.role_type, r.begin_date, r.end_date, 'roles'::text AS declared_in
FROM user_roles r
WHERE r.archived_at IS NULL;
