SELECT
  *
FROM "profiles" AS "t0"
WHERE
  "t0"."orders" IS NOT NULL
  AND "t0"."orders" >= 2
  AND "t0"."orders" < 10
  AND "t0"."total_spend" IS NOT NULL
  AND "t0"."total_spend" > CAST('100.00' AS DECIMAL(12, 2))
