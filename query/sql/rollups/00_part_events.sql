-- part_events: the events of a range of UTC-date partitions ($part_from..$part_to), with their
-- local day and hour, and only the columns the rollups read (`detail` only where a rollup
-- reads a field of it). Every rollup below is built from this one reading.
SELECT e.ts, e.event_id, e.user_id, e.category, e.action, e.result, e.mfa, e.app, e.target_id,
       CASE WHEN e.action IN ('message_send', 'approval_submit', 'approval_approve')
            THEN e.detail END AS detail,
       local_day(e.ts)  AS day,
       local_hour(e.ts) AS hour
FROM events e
WHERE e.dt >= $part_from AND e.dt <= $part_to
