SELECT
  *
FROM "profiles" AS "t0"
WHERE
  NOT (
    (
      "t0"."country" IS NOT NULL
    )
    AND (
      "t0"."country" = 'PL'
    )
    AND (
      (
        "t0"."orders" IS NOT NULL
      ) AND (
        "t0"."orders" > 1
      )
    )
  )
