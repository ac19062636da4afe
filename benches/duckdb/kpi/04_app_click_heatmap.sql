-- KPI 4 App click heatmap (DuckDB translation of query/sql/kpi/04_app_click_heatmap.sql)
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
SELECT coalesce(app, 'unknown') AS app, hour, count(*) AS count
FROM pev WHERE action = 'app_open'
GROUP BY coalesce(app, 'unknown'), hour ORDER BY 1, 2
