-- headcount: users employed on each local day of the period (0 on days nobody was).
SELECT p.d, p.workday, count(e.user_id) AS headcount
FROM period_days p
LEFT JOIN employed e ON e.d = p.d
GROUP BY p.d, p.workday
