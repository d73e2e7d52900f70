SELECT
  *
FROM "profiles" AS "t0"
WHERE
  TRUE
