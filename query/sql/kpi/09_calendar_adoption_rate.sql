-- KPI 9 日程使用率 Calendar adoption rate = users / headcount
-- users: distinct users employed on the last day of the period with at least one event in the
-- period whose action starts with `calendar_` (opening the calendar module is not using it).
WITH last_day AS (
    SELECT user_id FROM employed WHERE d = $last_day
),
users_ AS (
    SELECT count(DISTINCT u.user_id) AS users
    FROM user_days u JOIN last_day l ON l.user_id = u.user_id
    WHERE u.calendar
)
SELECT u.users * 1.0 / NULLIF(h.headcount, 0) AS value,
       u.users,
       h.headcount
FROM users_ u CROSS JOIN (SELECT headcount FROM daily WHERE d = $last_day) h
