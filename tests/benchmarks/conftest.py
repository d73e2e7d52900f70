"""The benchmark scripts' own modules (``benchmarks/year.py``, ``bench_year.py``) are imported by
the tests here: the repository's root goes first on the path, before ``tests/`` (whose
``benchmarks`` folder would otherwise hide them)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
sys.modules.pop("benchmarks", None)  # a namespace package of tests/benchmarks, if it came first
