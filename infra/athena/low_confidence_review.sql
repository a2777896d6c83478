-- Calls the model was least sure about (score below 0.6), for a person to review and label.
-- Change 0.6 to taste; scores are the top class probability in [0, 1]. The join adds the
-- Contact Lens summary, categories and the source object so a reviewer can open the call.
-- Athena (Trino) and DuckDB. Both tables are partitioned by contact date ("date").
WITH latest AS (
    SELECT
        l.*,
        row_number() OVER (
            PARTITION BY contact_id, redacted
            ORDER BY labeled_at DESC
        ) AS rn
    FROM calltype.labeled AS l
    WHERE "date" >= CAST(CAST(current_date - INTERVAL '90' DAY AS DATE) AS VARCHAR)
)
SELECT
    l.contact_date,
    l.contact_id,
    l.label,
    TRY_CAST(l.score AS DOUBLE) AS score,
    l.model,
    t.categories,
    t.summary,
    l.source_key
FROM latest AS l
LEFT JOIN calltype.transcripts AS t
    ON t.contact_id = l.contact_id
   AND t.redacted = l.redacted
   AND t."date" = l."date"
   -- The same bound as on labeled: Athena prunes transcripts' partitions only by its own predicate.
   AND t."date" >= CAST(CAST(current_date - INTERVAL '90' DAY AS DATE) AS VARCHAR)
WHERE l.rn = 1
  AND TRY_CAST(l.score AS DOUBLE) < 0.6
ORDER BY score ASC, l.contact_date DESC, l.contact_id
LIMIT 500;
