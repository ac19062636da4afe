-- employed: one row per (local day d of the period, user employed on d).
-- Employed on d: hired_at <= d (or unknown) and not yet left (left_at null or d < left_at).
SELECT p.d, p.workday, u.user_id, u.dept_id
FROM period_days p
JOIN scope_users u
  ON (u.hired_at IS NULL OR u.hired_at <= p.d)
 AND (u.left_at IS NULL OR p.d < u.left_at)
