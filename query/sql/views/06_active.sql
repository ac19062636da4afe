-- active: (d, user) pairs where the user is active on local day d:
-- a successful `login` AND at least one `behaviour` event that day, and employed that day.
SELECT u.day AS d, u.user_id, e.dept_id, e.workday
FROM user_days u
JOIN employed e ON e.d = u.day AND e.user_id = u.user_id
WHERE u.user_id IS NOT NULL AND u.login_ok AND u.behaviour
