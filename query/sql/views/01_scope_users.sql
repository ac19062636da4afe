-- scope_users: the users a KPI run is about.
-- The whole organisation, or one department's users for `kpi --by dept`
-- ($user_scope is `TRUE` or `dept_id = '<dept>'`). Departments come from the directory.
SELECT * FROM users WHERE $user_scope
