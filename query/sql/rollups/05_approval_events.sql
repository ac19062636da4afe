-- approval_events: every submit and terminal event of an approval instance, one row each
-- (KPIs 2 and 3 need the first per instance across all time, so nothing is aggregated here).
SELECT ts, event_id, day, user_id, target_id, action,
       json_bool(detail, 'final')  AS final,
       json_str(detail, 'process') AS process
FROM part_events
WHERE target_id IS NOT NULL
  AND action IN ('approval_submit', 'approval_approve', 'approval_reject', 'approval_revoke')
