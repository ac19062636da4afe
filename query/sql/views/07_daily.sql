-- daily: per local day of the period, headcount, active users, departments with members
-- and departments with an active member (the denominators and numerators of KPIs 1 and 12).
SELECT h.d, h.workday, h.headcount,
       coalesce(a.active_users, 0)  AS active_users,
       coalesce(m.departments, 0)   AS departments,
       coalesce(c.covered, 0)       AS covered
FROM headcount h
LEFT JOIN (SELECT d, count(*) AS active_users FROM active GROUP BY d) a ON a.d = h.d
LEFT JOIN (SELECT d, count(DISTINCT dept_id) AS departments FROM employed GROUP BY d) m ON m.d = h.d
LEFT JOIN (SELECT d, count(DISTINCT dept_id) AS covered FROM active GROUP BY d) c ON c.d = h.d
