-- KPI 11 安全登入率 Secure login rate = logins with a second factor / successful logins
-- (`user_days` counts each user's successful, second-factor and failed logins per day.)
SELECT coalesce(sum(mfa_logins), 0) * 1.0 / NULLIF(coalesce(sum(logins), 0), 0) AS value,
       coalesce(sum(logins), 0)                                                AS logins,
       coalesce(sum(mfa_logins), 0)                                            AS mfa_logins,
       coalesce(sum(failed_logins), 0)                                         AS failed_logins
FROM user_days
