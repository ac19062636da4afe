-- meeting_joins: the distinct (meeting, user) pairs of the period's `meeting_join` events of the scope.
SELECT DISTINCT target_id, user_id
FROM meeting_joins_parts
WHERE day >= $from AND day <= $to
  AND ($scope_dept IS NULL OR user_id IN (SELECT user_id FROM scope_users))
