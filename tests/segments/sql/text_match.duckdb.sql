SELECT
  *
FROM "profiles" AS "t0"
WHERE
  (
    (
      "t0"."email" IS NOT NULL
    ) AND CONTAINS("t0"."email", '50%_')
  )
  OR (
    (
      "t0"."email" IS NOT NULL
    ) AND STARTS_WITH("t0"."email", 'o''')
  )
  OR (
    (
      "t0"."email" IS NOT NULL
    )
    AND SUFFIX(LOWER("t0"."email"), LOWER('@Gmail.com'))
  )
