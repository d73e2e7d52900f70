"""What a plainly valid email address looks like (the fast check used before email-validator).

A conservative subset of valid addresses, checked after lower-casing: everything it does not
accept is judged by ``email-validator`` instead, so it may only ever accept truly valid
addresses. The snapshot runs the same patterns inside DuckDB; destinations run them in Python.
"""

from __future__ import annotations

import re

FAST_EMAIL = (
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
)
SPECIAL_USE_TLD = r"\.(arpa|invalid|local|localhost|onion|test)$"
MAX_LOCAL_PART = 64

_FAST = re.compile(FAST_EMAIL)
_SPECIAL = re.compile(SPECIAL_USE_TLD)


def plainly_valid(email: str) -> bool:
    """True for ordinary ASCII addresses that need no closer look (lower case expected)."""
    local, _, _ = email.partition("@")
    return len(local) <= MAX_LOCAL_PART and bool(_FAST.match(email)) and not _SPECIAL.search(email)
