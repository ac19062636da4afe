-- doc_edits: `doc_edit` events counted by (local day, document, editor) (KPI 7).
SELECT day, target_id, user_id, count(*) AS n
FROM part_events WHERE action = 'doc_edit'
GROUP BY day, target_id, user_id
