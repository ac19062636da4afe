-- scope_users: the users a KPI run is about.
-- The whole organisation ($scope_dept is NULL), or the users of the departments listed in
-- `scope_departments` (one for `kpi --by dept`, a department admin's on the dashboard).
-- Departments come from the directory.
SELECT * FROM users
WHERE $scope_dept IS NULL OR dept_id IN (SELECT dept_id FROM scope_departments)
