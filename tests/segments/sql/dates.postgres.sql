SELECT
  *
FROM "profiles" AS "t0"
WHERE
  "t0"."signup_date" IS NOT NULL
  AND "t0"."signup_date" < MAKE_DATE(2020, 1, 1)
  AND "t0"."signup_date" < MAKE_DATE(2025, 5, 2)
  AND "t0"."last_purchase_at" IS NOT NULL
  AND "t0"."last_purchase_at" >= CAST('2025-03-03T12:00:00+00:00' AS TIMESTAMPTZ)
  AND "t0"."last_purchase_at" <= CAST('2025-06-01T12:00:00+00:00' AS TIMESTAMPTZ)
