"""The services' messages reach the pages in the reader's language (issue 21: "every message a
sentence in the user's language"), while the API keeps their English words and codes.

The catalogue checks need no store; the pages are checked through the form client, in Polish,
on SQLite (the services behind them are tested on both stores by their own tests).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from babel.util import pathmatch

from reliability.scenario import ON_SQLITE  # tests/ is on sys.path (rootdir)
from segmentsync.connections import service as connections
from segmentsync.connections.models import ConnectionType
from segmentsync.connections.schemas import ApiKeyAuth, ConnectionCreate
from segmentsync.db import transaction
from segmentsync.errors import Invalid
from segmentsync.exports.models import Export, RunStatus
from segmentsync.scheduling.worker import Worker
from segmentsync.web import i18n, messages
from segmentsync.web.i18n import Translator
from segmentsync.web.labels import LABELS

from .pages import field_error
from .test_pages import World, _segment, world  # noqa: F401  # the pages' world: users, profiles, the sandbox

PLACEHOLDER = re.compile(r"%\(\w+\)s")
ERROR_CLASSES = set(i18n.ERROR_CLASSES)


@pytest.fixture(scope="module")
def templates() -> list[str]:
    return [str(message.id) for message in i18n.extract_errors() if message.id]


@pytest.mark.parametrize("lang", i18n.TRANSLATED)
def test_every_service_message_that_can_reach_a_page_is_translated(lang: str, templates: list[str]) -> None:
    catalog = i18n.read_catalog(lang, "errors")
    assert len(templates) > 200  # the services' templates are collected at all
    untranslated = [t for t in templates if catalog.get(t) is None or not catalog.get(t).string]
    assert not untranslated, f"{lang}: no translation for {untranslated} (run python -m segmentsync.web.i18n)"
    for message in catalog:
        if not message.id:
            continue
        assert message.id in templates, (
            f"{lang}: {message.id!r} is no longer used (python -m segmentsync.web.i18n)"
        )
        assert not message.fuzzy, message.id
        assert sorted(PLACEHOLDER.findall(message.string)) == sorted(PLACEHOLDER.findall(message.id)), (
            message.id
        )


def _reachable_modules() -> list[Path]:
    """The modules whose messages the catalog collects (as :data:`i18n.ERROR_METHODS` selects)."""
    found = []
    for path in sorted(i18n.PACKAGE_DIR.rglob("*.py")):
        relative = path.relative_to(i18n.PACKAGE_DIR).as_posix()
        method = next(m for pattern, m in i18n.ERROR_METHODS if pathmatch(pattern, relative))
        if method != "ignore" or relative.startswith("web/"):
            found.append(path)
    return found


def _built_text(node: ast.expr) -> bool:
    """A message put together where it is raised: an f-string, ``+``, ``%`` or ``.format``."""
    if isinstance(node, ast.JoinedStr | ast.BinOp):
        return True
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"


def test_no_service_message_is_put_together_where_the_catalog_cannot_see_it() -> None:
    """An f-string message would reach the pages in English: templates and ``params`` instead."""
    built = []
    modules = _reachable_modules()
    assert any(path.name == "checks.py" for path in modules)
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if (name in ERROR_CLASSES and _built_text(node.args[0])) or (
                name == "N_" and _built_text(node.args[0])
            ):
                built.append(f"{path.relative_to(i18n.PACKAGE_DIR)}:{node.lineno}")
    assert not built, f"messages built outside the catalog (use a template and params=): {built}"


@pytest.mark.parametrize("lang", i18n.TRANSLATED)
def test_a_stored_english_message_is_read_back_into_its_template(lang: str, templates: list[str]) -> None:
    """Runs keep their error as English text: each template's message is translated back whole,
    by that template (no other template takes it)."""
    tr = Translator(lang)
    wrong = []
    for template, _pattern in messages._patterns():
        names = dict.fromkeys(PLACEHOLDER.findall(template))
        values = {name[2:-2]: f"<v{index}>" for index, name in enumerate(names)}
        english = template % values
        expected = messages._fill(i18n.translations(lang).gettext(template), values)
        if messages.localise_text(tr, english) != expected:
            wrong.append((template, messages.localise_text(tr, english)))
    assert not wrong


def test_an_error_is_translated_from_its_template_and_values_nested_ones_too() -> None:
    inner = "Campaign Monitor: Invalid ListID (HTTP 400, code 101)"
    error = Invalid(
        "the list %(list_id)s could not be used on “%(connection_name)s”: %(message)s",
        params={"list_id": "abc", "connection_name": "Shop", "message": inner},
    )
    assert error.message == f"the list abc could not be used on “Shop”: {inner}"  # the API's English
    polish = messages.error_sentence(Translator("pl"), error)
    assert polish == (
        "Nie można użyć listy abc w połączeniu „Shop”: Campaign Monitor odpowiada: Invalid ListID (HTTP 400, kod 101)."
    )
    assert messages.localise_text(Translator("fi"), error.message).startswith("listaa abc ei voitu käyttää")
    assert (
        messages.localise_text(Translator("pl"), "a message no service writes")
        == "a message no service writes"
    )


# ---------------------------------------------------------------- the pages, in Polish


@ON_SQLITE
def test_every_problem_the_export_service_finds_is_shown_in_polish_beside_its_field(
    world: World,  # noqa: F811
) -> None:
    connection_id = world.connection()
    pages = world.pages(language="pl")
    pages.get("/segments/new")
    segment_id = _segment(pages)
    pages.get("/exports/new")
    form = {"name": "Polska", "connection_id": connection_id, "list_id": "123", "email_column": "no_such_column",
            "consent_to_track": "column", "schedule_mode": "cron", "segment_ids": segment_id}  # fmt: skip
    answer = pages.post("/exports/new", form)
    assert answer.status_code == 422
    shown = {
        field: field_error(answer.text, field)
        for field in ("list_id", "email_column", "consent_column", "cron")
    }
    assert (
        shown["list_id"]
        == "'123' nie jest identyfikatorem listy Campaign Monitor: ma postać 32 znaki szesnastkowe."
    )
    assert shown["email_column"].startswith("Kolumna e-mail 'no_such_column' nie jest kolumną tabeli profili")
    assert shown["consent_column"] == "Wybierz kolumnę profilu, która zawiera zgodę na śledzenie."
    assert shown["cron"] == "Własny harmonogram wymaga reguły cron, np. '0 6 * * *'."
    for text in shown.values():
        assert not re.search(r"\b(is|the|choose|needs)\b", text), text  # no English left


@ON_SQLITE
def test_a_failed_run_and_a_refused_action_speak_polish(world: World) -> None:  # noqa: F811
    data = ConnectionCreate(
        type=ConnectionType.CAMPAIGN_MONITOR, name="Bez użytkownika", consent=True, add_me_as_export_user=False,
        auth=ApiKeyAuth(api_key=world.cm["ApiKey"], client_id=world.cm["ClientID"]),
    )  # fmt: skip
    with transaction(world.runtime.sessions) as session:
        connection_id = connections.create(
            session=session, runtime=world.runtime, data=data, actor=world.admin()
        ).id
        export = Export(
            name="Tygodniowy", connection_id=connection_id, list_id="a" * 32, email_column="email"
        )
        session.add(export)
        session.flush()
        export_id = export.id
    pages = world.pages(language="pl")
    pages.get(f"/exports/{export_id}")
    started = pages.post(f"/exports/{export_id}/run", {})
    run_id = int(started.headers["location"].rsplit("/", 1)[1])
    assert Worker(world.runtime).run_once() == run_id  # the run fails: the connection has no export user

    english = world.pages().get(f"/runs/{run_id}/live").json()
    assert english["status"] == RunStatus.FAILED.value
    assert english["error"].startswith("This connection has no export user. An admin must open")
    polish = (
        "To połączenie nie ma użytkownika eksportu. Administrator musi otworzyć połączenie "
        "„Bez użytkownika” i dodać siebie jako użytkownika eksportu."
    )
    assert pages.get(f"/runs/{run_id}/live").json()["error"] == polish
    assert polish in pages.get(f"/runs/{run_id}").text.replace("&#34;", '"')
    assert polish in pages.get(f"/exports/{export_id}").text  # the export's run history

    pages.get(f"/runs/{run_id}")
    refused = pages.post(f"/runs/{run_id}/cancel", {})  # the run has ended: a notice says so
    notice = pages.get(refused.headers["location"]).text
    failed = Translator("pl")(LABELS["run_status"]["failed"])  # the status by its label
    assert f"Przebieg #{run_id} już się zakończył ({failed})." in notice
