SELECT
  *
FROM "profiles" AS "t0"
WHERE
  "t0"."consent_email" IS NOT NULL AND "t0"."consent_email" = TRUE
