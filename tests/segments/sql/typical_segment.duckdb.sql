SELECT
  *
FROM "profiles" AS "t0"
WHERE
  "t0"."country" IS NOT NULL
  AND "t0"."country" IN ('PL', 'LV')
  AND "t0"."last_purchase_at" IS NOT NULL
  AND "t0"."last_purchase_at" >= MAKE_TIMESTAMPTZ(2025, 3, 3, 12, 0, 0.0, 'UTC')
  AND "t0"."last_purchase_at" <= MAKE_TIMESTAMPTZ(2025, 6, 1, 12, 0, 0.0, 'UTC')
  AND "t0"."total_spend" IS NOT NULL
  AND "t0"."total_spend" > CAST(100.00 AS DECIMAL(12, 2))
