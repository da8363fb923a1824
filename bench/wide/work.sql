-- bench/wide.py's SQLite workload (sqlite3 < work.sql, an in-memory
-- database): 60000 rows made by a recursive CTE, an index, a GROUP BY, a
-- join through the index and a LIKE scan.  Integer keys and text only, so
-- the output is the same on every system.
CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, val INTEGER, name TEXT);
WITH RECURSIVE c(i, s) AS (
  SELECT 1, 12345
  UNION ALL
  SELECT i + 1, (s * 1103515245 + 12345) % 2147483648 FROM c WHERE i < 60000)
INSERT INTO t SELECT i, s % 97, s % 100003, printf('n%06d-%x', i, s % 65536) FROM c;
CREATE INDEX t_grp ON t(grp, val);
SELECT count(*), sum(val), max(name) FROM t;
SELECT grp, count(*), max(val), min(name) FROM t GROUP BY grp ORDER BY count(*) DESC, grp LIMIT 3;
SELECT count(*), sum(b.val % 1000) FROM t a JOIN t b ON b.grp = a.grp AND b.val BETWEEN a.val AND a.val + 30;
SELECT count(*) FROM t WHERE name LIKE '%ff%';
