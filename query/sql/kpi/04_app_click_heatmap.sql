-- KPI 4 應用點擊熱區 App click heatmap: `app_open` events in the period,
-- by module and by local hour (0–23).
-- @table app_hours
-- The period's `app_open` events counted once, by module (NULL kept apart) and local hour
-- (`app_cells`); every figure below is a sum over these cells.
SELECT app, hour, n FROM app_cells
-- @part main
SELECT coalesce(sum(n), 0) AS value,
       (SELECT app FROM app_hours WHERE app IS NOT NULL
        GROUP BY app ORDER BY sum(n) DESC, app LIMIT 1) AS top_app
FROM app_hours
-- @part by_app map_value
SELECT coalesce(app, 'unknown') AS app, sum(n) AS count
FROM app_hours
GROUP BY coalesce(app, 'unknown') ORDER BY 1
-- @part cells list
-- Every non-zero (app, local hour) cell.
SELECT coalesce(app, 'unknown') AS app, hour, sum(n) AS count
FROM app_hours
GROUP BY coalesce(app, 'unknown'), hour ORDER BY 1, 2
