-- msg_sends: every `message_send`, with the recipient and the message it replies to (KPI 5), and
-- the recipient's first read of it and first reply to it found in the same events, at or after the
-- send. Built from one UTC-date partition, that is exact whenever it is found: a read in the send's
-- partition at or after the send comes before any read in a later partition (and none in an
-- earlier one can be at or after it), so only the sends still without one need the later
-- partitions (`msg_reads`, and these rows' `reply_to`) at query time.
WITH sends AS (
    SELECT ts, event_id, day, user_id, target_id,
           json_str(detail, 'to')       AS recipient,
           json_str(detail, 'reply_to') AS reply_to
    FROM part_events
    WHERE action = 'message_send'
),
reads AS (
    SELECT ts, target_id, user_id FROM part_events
    WHERE action = 'message_read' AND target_id IS NOT NULL AND user_id IS NOT NULL
),
first_read AS (
    SELECT s.event_id, min(r.ts) AS ts
    FROM sends s
    JOIN reads r ON r.target_id = s.target_id AND r.user_id = s.recipient AND r.ts >= s.ts
    GROUP BY s.event_id
),
first_reply AS (
    SELECT s.event_id, min(p.ts) AS ts
    FROM sends s
    JOIN sends p ON p.reply_to = s.target_id AND p.user_id = s.recipient AND p.ts >= s.ts
    GROUP BY s.event_id
)
SELECT s.ts, s.event_id, s.day, s.user_id, s.target_id, s.recipient, s.reply_to,
       fr.ts AS first_read_ts, fp.ts AS first_reply_ts
FROM sends s
LEFT JOIN first_read fr ON fr.event_id = s.event_id
LEFT JOIN first_reply fp ON fp.event_id = s.event_id
