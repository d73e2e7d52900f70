"""The run engine: what happens to one run of an export, from its claim to its last checkpoint.

See ``docs/architecture.md`` ("The run engine") for the phases, the threads and where a run resumes.
"""
