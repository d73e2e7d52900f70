SELECT
  *
FROM "profiles" AS "t0"
WHERE
  "t0"."signup_date" IS NOT NULL
  AND "t0"."signup_date" < MAKE_DATE(2020, 1, 1)
  AND "t0"."signup_date" < MAKE_DATE(2025, 5, 2)
  AND "t0"."last_purchase_at" IS NOT NULL
  AND "t0"."last_purchase_at" >= MAKE_TIMESTAMPTZ(2025, 3, 3, 12, 0, 0.0, 'UTC')
  AND "t0"."last_purchase_at" <= MAKE_TIMESTAMPTZ(2025, 6, 1, 12, 0, 0.0, 'UTC')
