-- KPI 2 Approval completion rate (DuckDB translation of query/sql/kpi/02_approval_completion_rate.sql)
-- json_bool(detail, 'final') = true  ≡  lower(json_extract_string(detail, '$.final')) = 'true'
-- (a JSON true or the text "true" in any case).
WITH submitted AS (
    SELECT DISTINCT target_id FROM pev
    WHERE action = 'approval_submit' AND target_id IS NOT NULL
),
terminal AS (
    SELECT target_id,
           CASE action WHEN 'approval_approve' THEN 'approved'
                       WHEN 'approval_reject'  THEN 'rejected'
                       ELSE 'revoked' END AS outcome,
           row_number() OVER (PARTITION BY target_id ORDER BY ts, event_id) AS nth
    FROM events
    WHERE ts < $period_end
      AND target_id IN (SELECT target_id FROM submitted)
      AND (action IN ('approval_reject', 'approval_revoke')
           OR (action = 'approval_approve' AND lower(json_extract_string(detail, '$.final')) = 'true'))
),
outcome AS (
    SELECT s.target_id, t.outcome
    FROM submitted s LEFT JOIN terminal t ON t.target_id = s.target_id AND t.nth = 1
),
counts AS (
    SELECT count(*)                                          AS submitted,
           count(*) FILTER (WHERE outcome = 'approved')      AS approved,
           count(*) FILTER (WHERE outcome = 'rejected')      AS rejected,
           count(*) FILTER (WHERE outcome = 'revoked')       AS revoked
    FROM outcome
)
SELECT (approved + rejected)::DOUBLE / NULLIF(submitted - revoked, 0) AS value,
       submitted, approved, rejected, revoked,
       approved + rejected                                  AS completed,
       submitted - approved - rejected - revoked            AS pending
FROM counts
