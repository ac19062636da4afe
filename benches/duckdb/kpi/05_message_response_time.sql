-- KPI 5 Message response time (DuckDB translation of query/sql/kpi/05_message_response_time.sql)
-- @table msg_sends
SELECT target_id, ts, recipient FROM (
    SELECT target_id, ts, json_extract_string(detail, '$.to') AS recipient,
           row_number() OVER (PARTITION BY target_id ORDER BY ts, event_id) AS nth
    FROM pev
    WHERE action = 'message_send' AND target_id IS NOT NULL
      AND json_extract_string(detail, '$.to') IS NOT NULL
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
    JOIN (SELECT user_id, ts, json_extract_string(detail, '$.reply_to') AS reply_to
          FROM events WHERE action = 'message_send' AND ts >= $period_start) r
      ON r.reply_to = s.target_id AND r.user_id = s.recipient AND r.ts >= s.ts
    GROUP BY s.target_id
)
SELECT s.target_id,
       (epoch_ms(rd.read_ts) - epoch_ms(s.ts)) / 1000.0  AS read_s,
       (epoch_ms(rp.reply_ts) - epoch_ms(s.ts)) / 1000.0 AS reply_s
FROM msg_sends s
LEFT JOIN reads rd ON rd.target_id = s.target_id
LEFT JOIN replies rp ON rp.target_id = s.target_id
-- @part main
SELECT quantile_cont(read_s, 0.5)                     AS value,
       count(*)                                       AS messages,
       count(read_s)                                  AS read_count,
       quantile_cont(read_s, 0.5)                     AS read_p50_seconds,
       quantile_cont(read_s, 0.9)                     AS read_p90_seconds,
       count(reply_s)                                 AS replied_count,
       count(reply_s)::DOUBLE / NULLIF(count(*), 0)   AS reply_rate,
       quantile_cont(reply_s, 0.5)                    AS reply_p50_seconds,
       quantile_cont(reply_s, 0.9)                    AS reply_p90_seconds
FROM msg_latency
-- @part read_buckets object
SELECT count(*) FILTER (WHERE read_s < 60)                        AS lt_1m,
       count(*) FILTER (WHERE read_s >= 60 AND read_s < 300)      AS "1m_5m",
       count(*) FILTER (WHERE read_s >= 300 AND read_s < 1800)    AS "5m_30m",
       count(*) FILTER (WHERE read_s >= 1800 AND read_s < 7200)   AS "30m_2h",
       count(*) FILTER (WHERE read_s >= 7200 AND read_s < 86400)  AS "2h_24h",
       count(*) FILTER (WHERE read_s >= 86400)                    AS ge_24h,
       count(*) FILTER (WHERE read_s IS NULL)                     AS unread
FROM msg_latency
