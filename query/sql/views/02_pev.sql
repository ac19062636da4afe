-- pev ("period events"): deduplicated events whose local day lies in the period,
-- with their local day and local hour in the organisation's timezone.
-- The UTC-date partitions ($dt_from..$dt_to) are listed so that only they are read.
SELECT e.*,
       local_day(e.ts)  AS day,
       local_hour(e.ts) AS hour
FROM events e
WHERE e.dt >= $dt_from AND e.dt <= $dt_to
  AND e.ts >= $period_start AND e.ts < $period_end
  AND ($scope_dept IS NULL OR user_id IN (SELECT user_id FROM scope_users))
