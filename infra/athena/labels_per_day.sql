-- Calls per call type per contact date (the last 90 days).
-- A contact can have a raw and a redacted copy, and a copy can be labeled again after a model
-- change: each contact counts once, by its latest label (redacted copy first).
-- Athena (Trino) and DuckDB. "date" is the partition column (quoted: DATE is a keyword); the
-- filter on it lets Athena's partition projection read only those days.
WITH latest AS (
    SELECT
        contact_id,
        contact_date,
        label,
        row_number() OVER (
            PARTITION BY contact_id
            ORDER BY redacted DESC, labeled_at DESC
        ) AS rn
    FROM calltype.labeled
    WHERE "date" >= CAST(CAST(current_date - INTERVAL '90' DAY AS DATE) AS VARCHAR)
)
SELECT
    contact_date,
    label,
    count(*) AS calls
FROM latest
WHERE rn = 1
GROUP BY contact_date, label
ORDER BY contact_date, calls DESC, label;
