from __future__ import annotations

import pytest

from segmentsync.sandbox.launcher import Sandbox

from .platforms import PLATFORMS, Platform


@pytest.fixture(params=sorted(PLATFORMS))
def platform(request: pytest.FixtureRequest, sandbox: Sandbox) -> Platform:
    """Each platform in turn, with a fresh account in the (reset) sandbox."""
    harness: Platform = PLATFORMS[request.param](sandbox)
    return harness
