-- doc_edits: the period's `doc_edit` events of the scope, counted by (document, local day, editor).
SELECT target_id, day, user_id, sum(n) AS n
FROM doc_edits_parts
WHERE day >= $from AND day <= $to
  AND ($scope_dept IS NULL OR user_id IN (SELECT user_id FROM scope_users))
GROUP BY target_id, day, user_id
