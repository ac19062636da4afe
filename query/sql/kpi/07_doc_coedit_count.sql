-- KPI 7 文件協同編輯 Document co-editing: (document, local day) pairs in the period
-- with two or more distinct editors.
-- @table doc_cells
-- The period's `doc_edit` events counted once by (document, local day, editor) (`doc_edits`).
SELECT target_id, day, user_id, n FROM doc_edits
-- @table doc_days
SELECT target_id, day FROM doc_cells
WHERE target_id IS NOT NULL
GROUP BY target_id, day
HAVING count(DISTINCT user_id) >= 2
-- @part main
SELECT (SELECT count(*) FROM doc_days)                                    AS value,
       (SELECT count(DISTINCT target_id) FROM doc_cells)                  AS docs_edited,
       (SELECT coalesce(sum(n), 0) FROM doc_cells)                        AS edits,
       (SELECT count(DISTINCT target_id) FROM doc_days)                   AS coedited_docs
