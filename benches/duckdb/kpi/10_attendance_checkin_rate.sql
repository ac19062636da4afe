-- KPI 10 Attendance check-in rate (DuckDB translation of query/sql/kpi/10_attendance_checkin_rate.sql)
WITH checkins AS (
    SELECT DISTINCT p.user_id, p.day
    FROM pev p
    JOIN employed e ON e.user_id = p.user_id AND e.d = p.day
    WHERE p.action = 'attendance_checkin' AND e.workday
)
SELECT (SELECT count(*) FROM checkins)::DOUBLE
         / NULLIF((SELECT sum(headcount) FROM daily WHERE workday), 0)        AS value,
       (SELECT count(*) FROM checkins)                                        AS checkins,
       (SELECT CAST(coalesce(sum(headcount), 0) AS BIGINT) FROM daily WHERE workday) AS expected
