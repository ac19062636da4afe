-- KPI 11 安全登入率 Secure login rate = logins with a second factor / successful logins
SELECT count(*) FILTER (WHERE result = 'success' AND mfa) * 1.0
         / NULLIF(count(*) FILTER (WHERE result = 'success'), 0)   AS value,
       count(*) FILTER (WHERE result = 'success')                  AS logins,
       count(*) FILTER (WHERE result = 'success' AND mfa)          AS mfa_logins,
       count(*) FILTER (WHERE result = 'failure')                  AS failed_logins
FROM pev
WHERE action = 'login'
