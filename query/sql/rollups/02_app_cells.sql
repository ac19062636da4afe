-- app_cells: `app_open` events counted by (local day, user, module, local hour) (KPI 4).
SELECT day, user_id, app, hour, count(*) AS n
FROM part_events WHERE action = 'app_open'
GROUP BY day, user_id, app, hour
