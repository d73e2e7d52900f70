SELECT
  *
FROM "profiles" AS "t0"
WHERE
  (
    (
      "t0"."email" IS NOT NULL
    ) AND (
      POSITION('50%_' IN "t0"."email") > 0
    )
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
    AND (
      RIGHT(LOWER("t0"."email"), LENGTH(LOWER('@Gmail.com'))) = LOWER('@Gmail.com')
    )
  )
