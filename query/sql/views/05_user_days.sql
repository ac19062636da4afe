-- user_days: per (local day of the period, user of the scope; NULL user kept for the organisation),
-- the user's day as the rollup `user_days` records it, added up across the UTC partitions a
-- local day spans.
SELECT day, user_id,
       bool_or(login_ok)   AS login_ok,
       bool_or(behaviour)  AS behaviour,
       sum(logins)         AS logins,
       sum(mfa_logins)     AS mfa_logins,
       sum(failed_logins)  AS failed_logins,
       bool_or(calendar)   AS calendar,
       bool_or(checkin)    AS checkin
FROM user_days_parts
WHERE day >= $from AND day <= $to
  AND ($scope_dept IS NULL OR user_id IN (SELECT user_id FROM scope_users))
GROUP BY day, user_id
