SELECT
  *
FROM "profiles" AS "t0"
WHERE
  (
    "t0"."country" IS NULL
  ) OR (
    "t0"."country" <> 'PL'
  )
