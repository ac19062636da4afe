-- approval_events: every approval submit and terminal event before the end of the period, of
-- everyone (an instance's outcome is decided by whoever acts on it; KPIs scope the submits).
SELECT * FROM approval_events_parts WHERE ts < $period_end
