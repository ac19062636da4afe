-- KPI 6 Meeting participation (DuckDB translation of query/sql/kpi/06_meeting_participation.sql)
WITH joins AS (
    SELECT count(DISTINCT target_id)                       AS meetings,
           count(DISTINCT (target_id, user_id))            AS joins,
           count(DISTINCT user_id)                         AS participants
    FROM pev
    WHERE action = 'meeting_join' AND target_id IS NOT NULL AND user_id IS NOT NULL
),
mau AS (SELECT count(DISTINCT user_id) AS mau FROM active)
SELECT j.joins::DOUBLE / NULLIF(m.mau, 0)       AS value,
       j.meetings, j.joins, j.participants,
       j.joins::DOUBLE / NULLIF(j.meetings, 0)  AS avg_participants
FROM joins j CROSS JOIN mau m
