-- KPI 5 消息響應時間 Message response time
-- Messages: `message_send` events in the period that name a recipient (detail.to),
-- one per message id (target_id; the earliest send counts).
-- Read: the recipient's first `message_read` of that message at or after the send, whenever it came.
-- Reply: the recipient's first `message_send` with detail.reply_to = that message, at or after the send.
-- @table msg_sends
SELECT target_id, ts, recipient FROM (
    SELECT target_id, ts, json_str(detail, 'to') AS recipient,
           row_number() OVER (PARTITION BY target_id ORDER BY ts, event_id) AS nth
    FROM pev
    WHERE action = 'message_send' AND target_id IS NOT NULL
      AND json_str(detail, 'to') IS NOT NULL
) WHERE nth = 1
-- @table msg_latency
WITH reads AS (
    SELECT s.target_id, min(r.ts) AS read_ts
    FROM msg_sends s
    JOIN events r ON r.action = 'message_read' AND r.target_id = s.target_id
                 AND r.user_id = s.recipient AND r.ts >= s.ts
    WHERE r.ts >= $period_start
    GROUP BY s.target_id
),
replies AS (
    SELECT s.target_id, min(r.ts) AS reply_ts
    FROM msg_sends s
    JOIN (SELECT user_id, ts, json_str(detail, 'reply_to') AS reply_to
          FROM events WHERE action = 'message_send' AND ts >= $period_start) r
      ON r.reply_to = s.target_id AND r.user_id = s.recipient AND r.ts >= s.ts
    GROUP BY s.target_id
)
SELECT s.target_id,
       (CAST(rd.read_ts AS BIGINT) - CAST(s.ts AS BIGINT)) / 1000.0  AS read_s,
       (CAST(rp.reply_ts AS BIGINT) - CAST(s.ts AS BIGINT)) / 1000.0 AS reply_s
FROM msg_sends s
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
