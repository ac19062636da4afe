-- scope_users: the users a KPI run is about.
-- The whole organisation, or one department's users for `kpi --by dept`
-- ($scope_dept is NULL, or the department's id). Departments come from the directory.
SELECT * FROM users WHERE $scope_dept IS NULL OR dept_id = $scope_dept
