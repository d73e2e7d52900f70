SELECT
  *
FROM "profiles" AS "t0"
WHERE
  "t0"."total_spend" IS NOT NULL
  AND "t0"."total_spend" BETWEEN CAST('10.00' AS DECIMAL(12, 2)) AND CAST('99.50' AS DECIMAL(12, 2))
