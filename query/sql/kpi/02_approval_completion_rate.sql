-- KPI 2 審批完成率 Approval completion rate = completed / (submitted − revoked)
-- Instances: those with an `approval_submit` in the period (by a user of the scope).
-- Each instance's FIRST terminal event by the end of the period decides its outcome:
--   `approval_approve` with detail.final = true → approved, `approval_reject` → rejected,
--   `approval_revoke` → revoked. Later terminal events do not change it.
-- (`approval_events` holds every submit and terminal event before the end of the period.)
-- @table approvals_submitted
SELECT DISTINCT target_id FROM approval_events
WHERE action = 'approval_submit' AND day >= $from AND day <= $to
  AND ($scope_dept IS NULL OR user_id IN (SELECT user_id FROM scope_users))
-- @part main
WITH terminal AS (
    SELECT target_id,
           CASE action WHEN 'approval_approve' THEN 'approved'
                       WHEN 'approval_reject'  THEN 'rejected'
                       ELSE 'revoked' END AS outcome,
           row_number() OVER (PARTITION BY target_id ORDER BY ts, event_id) AS nth
    FROM approval_events
    WHERE target_id IN (SELECT target_id FROM approvals_submitted)
      AND (action IN ('approval_reject', 'approval_revoke')
           OR (action = 'approval_approve' AND final = true))
),
outcome AS (
    SELECT s.target_id, t.outcome
    FROM approvals_submitted s LEFT JOIN terminal t ON t.target_id = s.target_id AND t.nth = 1
),
counts AS (
    SELECT count(*)                                          AS submitted,
           count(*) FILTER (WHERE outcome = 'approved')      AS approved,
           count(*) FILTER (WHERE outcome = 'rejected')      AS rejected,
           count(*) FILTER (WHERE outcome = 'revoked')       AS revoked
    FROM outcome
)
SELECT (approved + rejected) * 1.0 / NULLIF(submitted - revoked, 0) AS value,
       submitted, approved, rejected, revoked,
       approved + rejected                                  AS completed,
       submitted - approved - rejected - revoked            AS pending
FROM counts
