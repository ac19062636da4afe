-- user_days: per (local day, user; NULL user kept apart), what KPIs 1, 6, 9, 10, 11 and 12 ask of
-- the user's day. Every column is an aggregate that adds up across partitions (bool_or, count).
SELECT day, user_id,
       bool_or(action = 'login' AND result = 'success')                     AS login_ok,
       bool_or(category = 'behaviour')                                      AS behaviour,
       count(*) FILTER (WHERE action = 'login' AND result = 'success')      AS logins,
       count(*) FILTER (WHERE action = 'login' AND result = 'success' AND mfa) AS mfa_logins,
       count(*) FILTER (WHERE action = 'login' AND result = 'failure')      AS failed_logins,
       bool_or(starts_with(action, 'calendar_'))                            AS calendar,
       bool_or(action = 'attendance_checkin')                               AS checkin
FROM part_events
GROUP BY day, user_id
