-- KPI 6 視訊會議參與 Meeting participation: joins per monthly active user.
-- Over `meeting_join` events in the period (`meeting_joins`: their distinct (meeting, user) pairs).
WITH joins AS (
    SELECT count(DISTINCT target_id)                       AS meetings,
           count(*)                                        AS joins,
           count(DISTINCT user_id)                         AS participants
    FROM meeting_joins
),
mau AS (SELECT count(DISTINCT user_id) AS mau FROM active)
SELECT j.joins * 1.0 / NULLIF(m.mau, 0)         AS value,
       j.meetings, j.joins, j.participants,
       j.joins * 1.0 / NULLIF(j.meetings, 0)    AS avg_participants
FROM joins j CROSS JOIN mau m
