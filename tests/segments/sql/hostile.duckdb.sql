SELECT
  *
FROM "profiles" AS "t0"
WHERE
  "t0"."email" IS NOT NULL
  AND "t0"."email" = '''; DROP TABLE profiles; --'
  AND "t0"."odd ""column""" IS NOT NULL
  AND "t0"."odd ""column""" = 'x\y'
