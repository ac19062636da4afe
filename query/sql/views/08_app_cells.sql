-- app_cells: the period's `app_open` events of the scope, counted by (module, local hour).
SELECT app, hour, sum(n) AS n
FROM app_cells_parts
WHERE day >= $from AND day <= $to
  AND ($scope_dept IS NULL OR user_id IN (SELECT user_id FROM scope_users))
GROUP BY app, hour
