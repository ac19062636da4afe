-- KPI 1 Active user rate (DuckDB translation of query/sql/kpi/01_active_user_rate.sql)
SELECT
    (SELECT avg(active_users::DOUBLE / headcount) FROM daily WHERE workday AND headcount > 0) AS value,
    (SELECT avg(active_users::DOUBLE) FROM daily WHERE workday)                              AS dau_avg,
    (SELECT count(DISTINCT user_id) FROM active)                                             AS mau,
    (SELECT headcount FROM daily WHERE d = $last_day)                                        AS headcount,
    (SELECT count(DISTINCT user_id) FROM employed)                                           AS employees,
    (SELECT count(DISTINCT user_id) FROM active)::DOUBLE
        / NULLIF((SELECT count(DISTINCT user_id) FROM employed), 0)                          AS mau_rate
-- @part daily list
SELECT d AS day, workday, headcount, active_users AS active FROM daily ORDER BY d
