-- active: (d, user) pairs where the user is active on local day d:
-- a successful `login` AND at least one `behaviour` event that day, and employed that day.
SELECT a.d, a.user_id, e.dept_id, e.workday
FROM (
    SELECT day AS d, user_id
    FROM pev
    WHERE user_id IS NOT NULL
    GROUP BY day, user_id
    HAVING bool_or(action = 'login' AND result = 'success')
       AND bool_or(category = 'behaviour')
) a
JOIN employed e ON e.d = a.d AND e.user_id = a.user_id
