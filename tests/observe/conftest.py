"""The observability tests use the world of the export tests (users, profiles, segments,
connections to the sandbox): the same fixtures, imported."""

from exports.conftest import settings, world  # noqa: F401  # tests/ is on sys.path (rootdir)
