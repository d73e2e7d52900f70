SELECT
  *
FROM "profiles" AS "t0"
WHERE
  (
    "t0"."country" IS NULL
  ) OR NOT (
    "t0"."country" IN ('PL', 'LV')
  )
