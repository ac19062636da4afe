-- KPI 10 考勤打卡率 Attendance check-in rate = checkins / expected
-- checkins: distinct (user, workday d) with an `attendance_checkin` on d by a user employed on d
-- expected: the sum over workdays of headcount(d)
-- @table checkins
SELECT u.user_id, u.day
FROM user_days u
JOIN employed e ON e.user_id = u.user_id AND e.d = u.day
WHERE u.checkin AND e.workday
-- @part main
SELECT (SELECT count(*) FROM checkins) * 1.0
         / NULLIF((SELECT sum(headcount) FROM daily WHERE workday), 0) AS value,
       (SELECT count(*) FROM checkins)                                 AS checkins,
       (SELECT coalesce(sum(headcount), 0) FROM daily WHERE workday)   AS expected
