-- DuckDB only: the Athena tables as views over a local-directory bucket, so the queries in this
-- folder run unchanged on a laptop. Run from the repository root after `make demo` (or any
-- local pipeline run) has written local-bucket/calltype/..., e.g.
--   duckdb -c ".read infra/athena/duckdb-local.sql" -c ".read infra/athena/labels_per_day.sql"
-- Change 'local-bucket/calltype/' if your bucket directory or CALLTYPE_PREFIX differs.
-- Every column is read as text, as Athena's OpenCSVSerde does; "date" comes from the
-- date=YYYY-MM-DD folder names (hive partitioning), as Athena's partition projection does.
CREATE SCHEMA IF NOT EXISTS calltype;

CREATE OR REPLACE VIEW calltype.labeled AS
SELECT *
FROM read_csv('local-bucket/calltype/labeled/date=*/*.csv',
              header = true, all_varchar = true, hive_partitioning = true,
              hive_types = {'date': VARCHAR}, union_by_name = true);

CREATE OR REPLACE VIEW calltype.transcripts AS
SELECT *
FROM read_csv('local-bucket/calltype/transcripts/date=*/*.csv',
              header = true, all_varchar = true, hive_partitioning = true,
              hive_types = {'date': VARCHAR}, union_by_name = true);
