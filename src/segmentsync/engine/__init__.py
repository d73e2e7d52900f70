"""The run engine: what happens to one run of an export, from its claim to its last checkpoint.

Where to look:

* ``run.py`` — :func:`run.execute`: claim → snapshot → plan → send → finish, top to bottom.
* ``resume.py`` — where a run found interrupted starts again (a table: phase → what is kept).
* ``snapshot.py`` — the members read, normalised, validated, de-duplicated and hashed.
* ``plan.py`` — who gets which action (new · update · unchanged · remove · invalid), rendered.
* ``send.py`` — batches, the window of batches in flight, the feed; ``checkpoint.py`` — the
  recorder; ``overlap.py`` — sending while the plan is still stored.
* ``end.py`` — finished, failed (retry or not), cancelled; ``lease.py`` — fencing by the lease.
* ``workspace.py``, ``bulk.py``, ``rows.py``, ``context.py``, ``source.py`` — what they use.

The threads of one run, and what they share (each shared flag is one primitive):

| thread | started by | does | shares |
|---|---|---|---|
| the run's (the worker's own) | ``scheduling.worker`` | every step; stores the plan | — |
| ``heartbeat-run<id>`` | the worker | renews the lease | ``stop`` (an Event): set by the heartbeat when the lease is lost or the worker stops, and by the sender when a checkpoint finds the lease lost; read by every step and the sender |
| ``template_0`` | ``plan.plan`` | asks the destination for its row template while the plan is made | the destination (opened behind a lock, ``context.LazyDestination``) |
| ``run<id>-send`` | ``overlap.SendWhilePlanning`` | sends while the run's thread stores the plan | the feed (one Condition); ``stopped`` (an Event, set by this thread as it ends, after ``error``) |
| ``run<id>_<n>`` (a pool) | ``send._drive`` | one batch each: the HTTP request | futures only |
| ``run<id>-record`` | ``send._drive`` | checkpoints acknowledged batches | its queue (one Condition); ``cancelled`` and ``failed`` (Events set by this thread, read by the sending thread) |
"""
