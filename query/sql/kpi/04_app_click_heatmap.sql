-- KPI 4 應用點擊熱區 App click heatmap: `app_open` events in the period,
-- by module and by local hour (0–23).
SELECT count(*) AS value,
       (SELECT app FROM pev WHERE action = 'app_open' AND app IS NOT NULL
        GROUP BY app ORDER BY count(*) DESC, app LIMIT 1) AS top_app
FROM pev
WHERE action = 'app_open'
-- @part by_app map_value
SELECT coalesce(app, 'unknown') AS app, count(*) AS count
FROM pev WHERE action = 'app_open'
GROUP BY coalesce(app, 'unknown') ORDER BY 1
-- @part cells list
-- Every non-zero (app, local hour) cell.
SELECT coalesce(app, 'unknown') AS app, hour, count(*) AS count
FROM pev WHERE action = 'app_open'
GROUP BY coalesce(app, 'unknown'), hour ORDER BY 1, 2
