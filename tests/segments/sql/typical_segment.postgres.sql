SELECT
  *
FROM "profiles" AS "t0"
WHERE
  "t0"."country" IS NOT NULL
  AND "t0"."country" IN ('PL', 'LV')
  AND "t0"."last_purchase_at" IS NOT NULL
  AND "t0"."last_purchase_at" >= CAST('2025-03-03T12:00:00+00:00' AS TIMESTAMPTZ)
  AND "t0"."last_purchase_at" <= CAST('2025-06-01T12:00:00+00:00' AS TIMESTAMPTZ)
  AND "t0"."total_spend" IS NOT NULL
  AND "t0"."total_spend" > CAST('100.00' AS DECIMAL(12, 2))
