"""Typer builds the Click command tree from the functions' annotations at every ``CliRunner.invoke``
(≈ 0.26 s for the whole `segmentsync` tree); the tree never changes, so these tests build it once."""

from __future__ import annotations

import functools

import pytest
import typer.testing


def build_commands_once(monkeypatch: pytest.MonkeyPatch) -> None:
    build = functools.cache(typer.main.get_command)
    monkeypatch.setattr(typer.testing, "_get_command", build)
