-- KPI 7 Document co-editing (DuckDB translation of query/sql/kpi/07_doc_coedit_count.sql)
WITH edits AS (
    SELECT target_id, day, user_id FROM pev
    WHERE action = 'doc_edit' AND target_id IS NOT NULL
),
doc_days AS (
    SELECT target_id, day FROM edits
    GROUP BY target_id, day
    HAVING count(DISTINCT user_id) >= 2
)
SELECT (SELECT count(*) FROM doc_days)                      AS value,
       (SELECT count(DISTINCT target_id) FROM edits)        AS docs_edited,
       (SELECT count(*) FROM pev WHERE action = 'doc_edit') AS edits,
       (SELECT count(DISTINCT target_id) FROM doc_days)     AS coedited_docs
