-- KPI 9 Calendar adoption rate (DuckDB translation of query/sql/kpi/09_calendar_adoption_rate.sql)
WITH last_day AS (
    SELECT user_id FROM employed WHERE d = $last_day
),
users_ AS (
    SELECT count(DISTINCT p.user_id) AS users
    FROM pev p JOIN last_day l ON l.user_id = p.user_id
    WHERE starts_with(p.action, 'calendar_')
)
SELECT u.users::DOUBLE / NULLIF(h.headcount, 0) AS value,
       u.users,
       h.headcount
FROM users_ u CROSS JOIN (SELECT headcount FROM daily WHERE d = $last_day) h
