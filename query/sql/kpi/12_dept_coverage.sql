-- KPI 12 部門覆蓋率 Department coverage
-- value: mean over workdays d of covered(d) / departments(d), skipping days with no departments
--   departments(d): departments (directory dept_id) with at least one employed member on d
--   covered(d):     of those, the ones with at least one active member on d
-- departments: departments with members on the last day of the period
SELECT (SELECT avg(covered * 1.0 / departments) FROM daily
        WHERE workday AND departments > 0)                    AS value,
       (SELECT departments FROM daily WHERE d = $last_day)    AS departments
