-- KPI 11 Secure login rate (DuckDB translation of query/sql/kpi/11_secure_login_rate.sql)
SELECT count(*) FILTER (WHERE result = 'success' AND mfa)::DOUBLE
         / NULLIF(count(*) FILTER (WHERE result = 'success'), 0)   AS value,
       count(*) FILTER (WHERE result = 'success')                  AS logins,
       count(*) FILTER (WHERE result = 'success' AND mfa)          AS mfa_logins,
       count(*) FILTER (WHERE result = 'failure')                  AS failed_logins
FROM pev
WHERE action = 'login'
