-- KPI 12 Department coverage (DuckDB translation of query/sql/kpi/12_dept_coverage.sql)
SELECT (SELECT avg(covered::DOUBLE / departments) FROM daily
        WHERE workday AND departments > 0)                    AS value,
       (SELECT departments FROM daily WHERE d = $last_day)    AS departments
