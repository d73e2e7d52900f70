"""A tiny real dbt project (dbt-core + dbt-duckdb), parsed by dbt itself into its manifest.json.

dbt-core pins ``pathspec<0.13`` and mypy (a dev tool of ours) needs ``pathspec>=1``: they cannot
share the project's environment. So dbt lives in a virtualenv of its own, made once per machine
(``~/.cache/segmentsync/dbt-venv-1.11``, or ``SEGMENTSYNC_TEST_DBT``: a ``dbt`` executable) and
kept; where it cannot be made (no network, no index), the dbt tests are skipped, saying why.
``dbt parse`` needs no database; its manifest is kept (``~/.cache/segmentsync/dbt-manifests/``,
named by a hash of the project and the dbt pins) and parsed again only when the project changes:
dbt takes 10-25 s to parse even this project.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

DBT_PINS = ("dbt-core>=1.10,<1.12", "dbt-duckdb>=1.9,<1.12")
VENV = Path.home() / ".cache" / "segmentsync" / "dbt-venv-1.11"

# The model: profiles who spent more than 100 over their orders (the same as tests' SQL segment).
MODEL_SQL = """\
select p.profile_id
from {{ source('shop', 'profiles') }} as p
join {{ source('shop', 'orders') }} as o on o.profile_id = p.profile_id
group by p.profile_id
having sum(o.amount) > 100
"""
SCHEMA_YML = """\
version: 2
sources:
  - name: shop
    schema: main
    tables:
      - name: profiles
      - name: orders
models:
  - name: big_spenders
    description: Profiles whose orders add up to more than 100.
    config:
      alias: big_spenders_v1
    columns:
      - name: profile_id
        description: The profile's key.
        data_tests: [unique, not_null]
  - name: scratch
    description: Ephemeral, so not a segment.
    config:
      materialized: ephemeral
"""


def dbt_command() -> list[str] | str:
    """The command that runs dbt, or the reason there is none (a string). The virtualenv's own
    Python runs ``dbt.cli.main``: its scripts' first lines name the directory it was built in."""
    given = os.environ.get("SEGMENTSYNC_TEST_DBT")
    if given:
        return [given]
    python = VENV / "bin" / "python"
    if python.exists():
        return [str(python), "-m", "dbt.cli.main"]
    building = VENV.with_name(f"{VENV.name}.{uuid.uuid4().hex[:8]}")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(building)], check=True, capture_output=True)
        subprocess.run(
            [str(building / "bin" / "python"), "-m", "pip", "install", "-q", *DBT_PINS],
            check=True,
            capture_output=True,
            timeout=600,
        )
        try:
            building.rename(VENV)  # atomic: another worker may have won the race, which is fine
        except OSError:
            shutil.rmtree(building, ignore_errors=True)
    except (subprocess.SubprocessError, OSError) as exc:
        shutil.rmtree(building, ignore_errors=True)
        detail = getattr(exc, "stderr", b"") or b""
        return f"dbt could not be installed in {building}: {exc} {detail.decode(errors='replace')[-300:]}"
    return [str(python), "-m", "dbt.cli.main"]


MANIFESTS = VENV.parent / "dbt-manifests"


def cached_manifest(directory: Path, dbt: list[str]) -> Path:
    """dbt's manifest of the project, parsed once per machine (per version of the project)."""
    digest = hashlib.sha256("\0".join([MODEL_SQL, SCHEMA_YML, *DBT_PINS]).encode()).hexdigest()[:16]
    kept = MANIFESTS / f"shop-{digest}.json"
    if not kept.exists():
        built = build_manifest(directory, dbt)
        MANIFESTS.mkdir(parents=True, exist_ok=True)
        partial = kept.with_name(f"{kept.name}.{uuid.uuid4().hex[:8]}")
        shutil.copyfile(built, partial)
        partial.replace(kept)  # atomic: a reader never sees half a file
    return kept


def build_manifest(directory: Path, dbt: list[str], *, database_file: str = "profiles.duckdb") -> Path:
    """Write the project into ``directory``, ``dbt parse`` it, and return target/manifest.json.

    The DuckDB file is named like the profile store (``profiles.duckdb``), so the relations dbt
    writes into the manifest are ``"profiles"."main"."…"``: the tests create them there.
    """
    (directory / "models").mkdir(parents=True, exist_ok=True)
    (directory / "dbt_project.yml").write_text(
        "name: shop\nversion: '1.0'\nprofile: shop\nmodel-paths: [models]\n", encoding="utf-8"
    )
    (directory / "profiles.yml").write_text(
        "shop:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: {directory / database_file}\n      schema: main\n",
        encoding="utf-8",
    )
    (directory / "models" / "big_spenders.sql").write_text(MODEL_SQL, encoding="utf-8")
    (directory / "models" / "scratch.sql").write_text("select 1 as profile_id\n", encoding="utf-8")
    (directory / "models" / "schema.yml").write_text(SCHEMA_YML, encoding="utf-8")
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1"}
    result = subprocess.run(
        [*dbt, "parse", "--project-dir", str(directory), "--profiles-dir", str(directory)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return directory / "target" / "manifest.json"
