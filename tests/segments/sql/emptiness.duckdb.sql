SELECT
  *
FROM "profiles" AS "t0"
WHERE
  (
    (
      "t0"."email" IS NULL
    ) OR (
      "t0"."email" = ''
    )
  )
  AND NOT (
    "t0"."signup_date" IS NULL
  )
