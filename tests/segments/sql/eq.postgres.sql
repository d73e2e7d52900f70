SELECT
  *
FROM "profiles" AS "t0"
WHERE
  "t0"."country" IS NOT NULL AND "t0"."country" = 'PL'
