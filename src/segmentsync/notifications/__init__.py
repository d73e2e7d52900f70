"""Telling people: webhook endpoints and their deliveries, alert rules per export, e-mail.

* ``events``: the lifecycle events (``run.started`` … ``alert.resolved``), written to the
  outbox (``deliveries``) in the same transaction as the change they describe.
* ``delivery``: the loop in every ``serve``/``worker`` process that claims due deliveries
  (like runs: a lease, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and sends them — webhooks signed
  by the Standard Webhooks specification, e-mail through SMTP — with exponential backoff.
* ``alerts``: the rules per export (failed, rejected share, stale, slow), one notice when a rule
  starts to hold and one when it recovers.
* ``service``: webhook endpoints as admins manage them (secrets in the vault, shown once).
"""
