-- KPI 1 活躍用戶率 Active user rate
-- value:     mean over workdays d of active(d) / headcount(d), skipping workdays with headcount 0
-- dau_avg:   mean active users per workday
-- mau:       distinct users active on at least one day of the period
-- headcount: users employed on the last day of the period
-- employees: users employed on at least one day of the period; mau_rate = mau / employees
SELECT
    (SELECT avg(active_users * 1.0 / headcount) FROM daily WHERE workday AND headcount > 0) AS value,
    (SELECT avg(active_users * 1.0) FROM daily WHERE workday)                               AS dau_avg,
    (SELECT count(DISTINCT user_id) FROM active)                                            AS mau,
    (SELECT headcount FROM daily WHERE d = $last_day)                                       AS headcount,
    (SELECT count(DISTINCT user_id) FROM employed)                                          AS employees,
    (SELECT count(DISTINCT user_id) FROM active) * 1.0
        / NULLIF((SELECT count(DISTINCT user_id) FROM employed), 0)                         AS mau_rate
-- @part daily list
-- The series behind the value, for charts: every local day of the period.
SELECT d AS day, workday, headcount, active_users AS active FROM daily ORDER BY d
