"""A SQL segment's refusal (:mod:`segmentsync.segments.sql`) in the reader's language, with its place.

The check says, in English, ``line 3, column 6: the table function read_csv() is not allowed: …``.
The segment page shows that beside the query when a save or preview is refused, and the SQL editor
shows it as it is typed (``POST /segments/sql/check``); both put it in the page's language here:
the place (*line, column*) and the check's own sentences are translated; what comes from sqlglot
(why a query cannot be parsed) and the names in the query are kept as they are.
"""

from __future__ import annotations

import re

from segmentsync.errors import SegmentSyncError
from segmentsync.web.i18n import N_, Translator
from segmentsync.web.messages import capitalised

PLACE = re.compile(r"^line (?P<line>\d+), column (?P<column>\d+): ")
# The check's sentences (segments/sql.py), each with its translatable form; the named parts of
# the pattern fill the placeholders of the same name.
SENTENCES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"the SQL cannot be parsed \((?P<dialect>[^)]*)\): (?P<reason>.*)", re.S),
     N_("the SQL cannot be parsed (%(dialect)s): %(reason)s")),
    (re.compile(r"the SQL cannot be read from about here \(a comment or quote that is not closed\?\)"),
     N_("the SQL cannot be read from about here (a comment or quote that is not closed?)")),
    (re.compile(r"only one statement is allowed; a second one starts here"),
     N_("only one statement is allowed; a second one starts here")),
    (re.compile(r"only a SELECT is allowed, not (?P<what>.+)"),
     N_("only a SELECT is allowed, not %(what)s")),
    (re.compile(r"(?P<what>.+) is not allowed in a segment's query \(only reading\)"),
     N_("%(what)s is not allowed in a segment's query (only reading)")),
    (re.compile(r"the function (?P<name>.+)\(\) is not allowed \(it reaches files, URLs, settings or "
                r"other sessions, or has side effects\)"),
     N_("the function %(name)s() is not allowed (it reaches files, URLs, settings or other sessions, "
        "or has side effects)")),
    (re.compile(r"the table function (?P<name>.+)\(\) is not allowed: select from tables and views"),
     N_("the table function %(name)s() is not allowed: select from tables and views")),
    (re.compile(r"(?P<name>.+) looks like a file or URL: select from tables and views only"),
     N_("%(name)s looks like a file or URL: select from tables and views only")),
    (re.compile(r"the SQL is empty: write one SELECT"), N_("the SQL is empty: write one SELECT")),
    (re.compile(r"the SQL holds no statement: write one SELECT"),
     N_("the SQL holds no statement: write one SELECT")),
    (re.compile(r"the SQL holds a NUL character"), N_("the SQL holds a NUL character")),
    (re.compile(r"the SQL is (?P<length>[\d,]+) characters long; at most (?P<limit>[\d,]+) are accepted"),
     N_("the SQL is %(length)s characters long; at most %(limit)s are accepted")),
    (re.compile(r"the SQL is nested too deeply to be checked"), N_("the SQL is nested too deeply to be checked")),
]  # fmt: skip
CODES = frozenset({"invalid_sql", "unsafe_sql"})


def is_sql_problem(error: SegmentSyncError) -> bool:
    return error.code in CODES


def place(error: SegmentSyncError) -> tuple[int, int] | None:
    """The line and column (from 1) the check names, if it names one."""
    line, column = error.details.get("line"), error.details.get("column")
    if isinstance(line, int) and isinstance(column, int) and line > 0 and column > 0:
        return line, column
    return None


def problem_text(tr: Translator, error: SegmentSyncError) -> str:
    """The refusal as a sentence in the reader's language: *Line 3, column 6: the table function …*."""
    message = error.message
    found = PLACE.match(message)
    problem = message[found.end() :] if found else message
    for pattern, text in SENTENCES:
        matched = pattern.fullmatch(problem)
        if matched:
            problem = tr(text, **matched.groupdict())
            break
    if found:
        return capitalised(
            tr.gettext(
                "Line %(line)s, column %(column)s: %(problem)s",
                line=found["line"],
                column=found["column"],
                problem=problem,
            )
        )
    return capitalised(problem)
