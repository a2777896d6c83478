-- Model labels against Contact Lens categories: for each label, how often each matched
-- category (a Contact Lens rule) occurs, as a count and as a share of that label's calls.
-- A category that matches one label's calls and no other's is a good cross-check of the model;
-- calls with no categories count under '(none)'.
-- transcripts.categories holds the matched category names joined by '|'.
-- Athena (Trino) and DuckDB: split() and CROSS JOIN UNNEST ... AS c(category) work in both.
WITH latest AS (
    SELECT
        contact_id,
        redacted,
        "date",
        label,
        row_number() OVER (
            PARTITION BY contact_id
            ORDER BY redacted DESC, labeled_at DESC
        ) AS rn
    FROM calltype.labeled
    WHERE "date" >= CAST(CAST(current_date - INTERVAL '90' DAY AS DATE) AS VARCHAR)
),
labeled_calls AS (
    SELECT
        l.contact_id,
        l.label,
        CASE WHEN coalesce(t.categories, '') = '' THEN '(none)' ELSE t.categories END AS categories
    FROM latest AS l
    JOIN calltype.transcripts AS t
        ON t.contact_id = l.contact_id
       AND t.redacted = l.redacted
       AND t."date" = l."date"
       -- The same bound as on labeled: Athena prunes transcripts' partitions only by its own predicate.
       AND t."date" >= CAST(CAST(current_date - INTERVAL '90' DAY AS DATE) AS VARCHAR)
    WHERE l.rn = 1
),
pairs AS (
    SELECT lc.label, lc.contact_id, c.category
    FROM labeled_calls AS lc
    CROSS JOIN UNNEST(split(lc.categories, '|')) AS c(category)
),
per_label AS (
    SELECT label, count(*) AS label_calls
    FROM labeled_calls
    GROUP BY label
)
SELECT
    p.label,
    p.category,
    count(DISTINCT p.contact_id) AS calls,
    pl.label_calls,
    round(count(DISTINCT p.contact_id) * 1.0 / pl.label_calls, 3) AS share_of_label
FROM pairs AS p
JOIN per_label AS pl ON pl.label = p.label
GROUP BY p.label, p.category, pl.label_calls
ORDER BY p.label, calls DESC, p.category;
