-- msg_reads: every `message_read` from the start of the period on, whenever it came.
SELECT * FROM msg_reads_parts WHERE ts >= $period_start
