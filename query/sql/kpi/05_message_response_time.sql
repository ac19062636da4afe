-- KPI 5 消息響應時間 Message response time
-- Messages: `message_send` events in the period (by a user of the scope) that name a recipient
-- (detail.to), one per message id (target_id; the earliest send counts, ties by event_id).
-- Read: the recipient's first `message_read` of that message at or after the send, whenever it came.
-- Reply: the recipient's first `message_send` with detail.reply_to = that message, at or after the send.
-- @table msg_candidates
SELECT target_id, ts, event_id, recipient, first_read_ts, first_reply_ts FROM msg_sends
WHERE day >= $from AND day <= $to
  AND target_id IS NOT NULL AND recipient IS NOT NULL
  AND ($scope_dept IS NULL OR user_id IN (SELECT user_id FROM scope_users))
-- @table msg_first
-- The earliest send per message. Almost every message has one send: those are taken as they are,
-- and only the messages sent more than once are ranked (a window over two million one-row
-- partitions, or two aggregates and two joins over all of them, is what cost most:
-- benches/README.md).
WITH dup AS (
    SELECT target_id FROM msg_candidates GROUP BY target_id HAVING count(*) > 1
),
ranked AS (
    SELECT c.*, row_number() OVER (PARTITION BY target_id ORDER BY ts, event_id) AS nth
    FROM msg_candidates c
    WHERE target_id IN (SELECT target_id FROM dup)
)
SELECT target_id, ts, recipient, first_read_ts, first_reply_ts
FROM msg_candidates WHERE target_id NOT IN (SELECT target_id FROM dup)
UNION ALL
SELECT target_id, ts, recipient, first_read_ts, first_reply_ts
FROM ranked WHERE nth = 1
-- @table msg_latency
-- A send's first read and reply found in its own partition are final (see the rollup
-- msg_sends); the others are looked for in every read and send from the start of the period on.
WITH reads AS (
    SELECT s.target_id, min(r.ts) AS read_ts
    FROM msg_first s
    JOIN msg_reads r ON r.target_id = s.target_id AND r.user_id = s.recipient AND r.ts >= s.ts
    WHERE s.first_read_ts IS NULL
    GROUP BY s.target_id
),
replies AS (
    SELECT s.target_id, min(r.ts) AS reply_ts
    FROM msg_first s
    JOIN msg_sends r ON r.reply_to = s.target_id AND r.user_id = s.recipient AND r.ts >= s.ts
    WHERE s.first_reply_ts IS NULL
    GROUP BY s.target_id
)
SELECT s.target_id,
       (CAST(coalesce(s.first_read_ts, rd.read_ts) AS BIGINT) - CAST(s.ts AS BIGINT)) / 1000.0
           AS read_s,
       (CAST(coalesce(s.first_reply_ts, rp.reply_ts) AS BIGINT) - CAST(s.ts AS BIGINT)) / 1000.0
           AS reply_s
FROM msg_first s
LEFT JOIN reads rd ON rd.target_id = s.target_id
LEFT JOIN replies rp ON rp.target_id = s.target_id
-- @part main
SELECT percentile_cont(read_s, 0.5)                   AS value,
       count(*)                                       AS messages,
       count(read_s)                                  AS read_count,
       percentile_cont(read_s, 0.5)                   AS read_p50_seconds,
       percentile_cont(read_s, 0.9)                   AS read_p90_seconds,
       count(reply_s)                                 AS replied_count,
       count(reply_s) * 1.0 / NULLIF(count(*), 0)     AS reply_rate,
       percentile_cont(reply_s, 0.5)                  AS reply_p50_seconds,
       percentile_cont(reply_s, 0.9)                  AS reply_p90_seconds
FROM msg_latency
-- @part read_buckets object
-- Read latency buckets (lower bound inclusive) and messages never read by their recipient.
SELECT count(*) FILTER (WHERE read_s < 60)                        AS lt_1m,
       count(*) FILTER (WHERE read_s >= 60 AND read_s < 300)      AS "1m_5m",
       count(*) FILTER (WHERE read_s >= 300 AND read_s < 1800)    AS "5m_30m",
       count(*) FILTER (WHERE read_s >= 1800 AND read_s < 7200)   AS "30m_2h",
       count(*) FILTER (WHERE read_s >= 7200 AND read_s < 86400)  AS "2h_24h",
       count(*) FILTER (WHERE read_s >= 86400)                    AS ge_24h,
       count(*) FILTER (WHERE read_s IS NULL)                     AS unread
FROM msg_latency
