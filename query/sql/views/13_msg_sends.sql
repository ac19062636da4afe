-- msg_sends: every `message_send` from the start of the period on, whenever it came (the
-- period's messages, and the replies to them).
SELECT * FROM msg_sends_parts WHERE ts >= $period_start
