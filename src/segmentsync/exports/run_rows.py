"""A run's per-row outcomes read back in seq order, wherever they are kept — without ever turning
a million kept members into objects.

A run's rows are three contiguous stretches of ``seq`` (the plan appends them group by group —
to send · to remove · refused · unchanged · invalid):

* ``run_members`` rows before the unchanged members (sent, removed, refused);
* the unchanged members, kept compactly in ``run_unchanged``: one zlib stream of
  ``email<TAB>profile key`` lines, line ``i`` being seq ``first_seq + i``;
* ``run_members`` rows after them (invalid).

A page is read by seeking, never by expanding everything: the ``run_members`` stretches through
their primary key ``(run_id, seq)`` (or the ``(run_id, outcome, seq)`` index when filtered by
outcome); the unchanged stretch by reading its stream a megabyte at a time from the database
(``substr``/``substring`` of the blob) and decompressing only up to the page's lines — counting the
lines of the blocks before them with ``bytes.count`` — or, to search by part of an email, by
looking for it in the decompressed bytes (``bytes.find``), line by line only where it occurs.
A search of ``run_members`` (a million rows of a first run) is one scan: ``instr``/``strpos`` on
the stored, lower-case emails collects the matching seqs (up to SEARCH_SEQS), which give the total
and the page's keys.

Pages come by cursor (the last ``seq`` seen: an indexed read at any depth) or by offset. An
offset without filters is turned into a ``seq`` directly when the run's rows fill their ``seq``
range without a gap (the run's stored counts say how many there are); otherwise the stretches
are counted. Totals come from the run's stored counts where they hold every row (a finished,
successful, not dry run whose rows are kept); otherwise they are counted.
"""

from __future__ import annotations

import bisect
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, overload

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from segmentsync.errors import Invalid
from segmentsync.exports.models import (
    RARE_OUTCOMES,
    MemberAction,
    Outcome,
    Run,
    RunMember,
    RunStatus,
    RunUnchanged,
)

PIECE = 1 << 20  # compressed bytes of the unchanged stream read at a time (at most)
FIRST_PIECE = 1 << 15
CHUNK_ROWS = 10_000  # run_members rows read per short session (the CSV)
COUNTED = ("invalid", "new", "updated", "unchanged", "removed", "rejected", "skipped")
_UNCHANGED = (MemberAction.UNCHANGED, Outcome.UNCHANGED)
OUTCOMES = tuple(o.value for o in Outcome)
RARE = ("removed", "rejected", "skipped", "invalid")  # indexed (ix_run_members_rare_outcome)


class Row(NamedTuple):
    """One of a run's rows, as the API, the pages and the CSV show it."""

    seq: int
    email: str
    profile_key: str | None
    action: MemberAction
    outcome: Outcome | None
    code: str | None
    message: str | None


@dataclass(frozen=True)
class Filter:
    """What a reader asked for: part of an email (lower case) and an outcome (or "pending")."""

    email: str | None = None
    outcome: str | None = None

    @classmethod
    def of(cls, email: str | None, outcome: str | None) -> Filter:
        """Checked: Invalid names what is wrong."""
        needle = email.strip().lower() if email else None
        if needle and len(needle) > 320:
            raise Invalid("the email search is longer than an email address can be", field="email")
        if outcome and outcome != "pending" and outcome not in OUTCOMES:
            raise Invalid(
                "unknown outcome %(outcome)s; choose one of %(names)s or pending",
                params={"outcome": repr(outcome), "names": ", ".join(OUTCOMES)},
                field="outcome",
            )
        return cls(needle or None, outcome or None)

    @property
    def any(self) -> bool:
        return self.email is not None or self.outcome is not None

    @property
    def reaches_unchanged(self) -> bool:
        return self.outcome in (None, Outcome.UNCHANGED.value)


@dataclass(frozen=True)
class Kept:
    """Where a run's unchanged members are: seq ``first_seq`` … ``end - 1``."""

    run_id: int
    first_seq: int
    count: int
    size: int  # compressed bytes
    store: str = ""  # which store (its URL): a process may read several, whose run ids repeat

    @property
    def end(self) -> int:
        return self.first_seq + self.count


# ---------------------------------------------------------------- run_members


_COLUMNS: tuple[Any, ...] = (
    RunMember.seq,
    RunMember.email,
    RunMember.profile_key,
    RunMember.action,
    RunMember.outcome,
    RunMember.code,
    RunMember.message,
)


def members_query(run_id: int, where: Filter) -> sa.Select[Any]:
    """The run's ``run_members`` rows matching ``where``, in seq order (no payload, no hash)."""
    query: sa.Select[Any] = sa.select(*_COLUMNS).where(RunMember.run_id == run_id).order_by(RunMember.seq)
    if where.email:
        query = query.where(Holds(RunMember.email, sa.literal(where.email)))
    if where.outcome == "pending":
        query = query.where(RunMember.outcome.is_(None))
    elif where.outcome in RARE:  # the index's own condition, word for word: SQLite then uses it
        query = query.where(RunMember.outcome == where.outcome, sa.text(RARE_OUTCOMES))
    elif where.outcome:
        query = query.where(RunMember.outcome == where.outcome)
    return query


class Holds(FunctionElement[bool]):
    """``text`` holds ``part`` (literally, case-sensitive): ``instr`` on SQLite, ``strpos`` on
    PostgreSQL. The stored emails are lower case — the snapshot lower-cases every address, valid
    or not — and the search text is lower-cased (:meth:`Filter.of`), so this finds what
    ``lower(email) LIKE '%part%'`` found, without lower-casing a million values per search (half
    the time of a search) nor escaping LIKE's wildcards."""

    type = sa.Boolean()
    inherit_cache = True


@compiles(Holds)
def _holds_sqlite(element: Holds, compiler: SQLCompiler, **kw: Any) -> str:
    text, part = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"instr({text}, {part}) > 0"


@compiles(Holds, "postgresql")
def _holds_postgresql(element: Holds, compiler: SQLCompiler, **kw: Any) -> str:
    text, part = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"strpos({text}, {part}) > 0"


def _rows(session: Session, query: sa.Select[Any]) -> list[Row]:
    return [Row(*row) for row in session.execute(query)]


def _count(session: Session, query: sa.Select[Any]) -> int:
    counted = sa.select(sa.func.count()).select_from(
        query.order_by(None).with_only_columns(RunMember.seq).subquery()
    )
    return session.scalar(counted) or 0


# ---------------------------------------------------------------- the unchanged members


def kept(session: Session, run_id: int) -> Kept | None:
    found = session.execute(
        sa.select(RunUnchanged.first_seq, RunUnchanged.count, sa.func.length(RunUnchanged.data)).where(
            RunUnchanged.run_id == run_id
        )
    ).first()
    if not found:
        return None
    bind = session.get_bind()
    store = (bind if isinstance(bind, sa.Engine) else bind.engine).url.render_as_string(hide_password=True)
    return Kept(run_id, int(found[0]), int(found[1]), int(found[2]), store)


Fetch = Callable[[int, int], bytes]  # (offset, size) of the compressed stream → its bytes


def fetcher(session: Session, run_id: int) -> Fetch:
    """Read the compressed stream a piece at a time (``substr`` counts from 1, on both stores)."""

    def fetch(offset: int, size: int) -> bytes:
        piece = sa.func.substr(RunUnchanged.data, offset + 1, size)
        return bytes(session.scalar(sa.select(piece).where(RunUnchanged.run_id == run_id)) or b"")

    return fetch


def fetcher_in_sessions(readers: sessionmaker[Session], run_id: int) -> Fetch:
    """As :func:`fetcher`, each piece in a short session of its own (a long download)."""

    def fetch(offset: int, size: int) -> bytes:
        with readers() as session:
            return fetcher(session, run_id)(offset, size)

    return fetch


def _inflated(kept: Kept, fetch: Fetch, most: int) -> Iterator[bytes]:
    """The stream decompressed piece by piece, each at most ``most`` bytes (0: as they come)."""
    inflate = zlib.decompressobj()
    offset = 0
    size = FIRST_PIECE  # a first page needs a few kilobytes of the stream: read more as it goes
    while offset < kept.size:
        piece = fetch(offset, size)
        if not piece:
            break
        offset += len(piece)
        size = min(size * 4, PIECE)
        while piece:
            text = inflate.decompress(piece, most)
            piece = inflate.unconsumed_tail
            if text:
                yield text
    tail = inflate.flush()
    if tail:
        yield tail


def blocks(kept: Kept, fetch: Fetch, skip: int = 0, *, most: int = 0) -> Iterator[tuple[int, bytes]]:
    """The stream's lines from line ``skip`` on, in blocks: (index of the block's first line,
    its whole lines joined by newlines), each made of at most ``most`` decompressed bytes and a
    line's rest (0: a piece's worth). Blocks before ``skip`` are decompressed and their lines
    counted, never split."""
    carry = b""
    index = 0  # of carry's first line
    for text in _inflated(kept, fetch, most):
        text = carry + text
        cut = text.rfind(b"\n")
        if cut < 0:
            carry = text
            continue
        block, carry = text[:cut], text[cut + 1 :]
        lines = block.count(b"\n") + 1
        if index + lines > skip:
            yield _from(index, block, skip)
        index += lines
    if carry and index + carry.count(b"\n") + 1 > skip:
        yield _from(index, carry, skip)


def _from(index: int, block: bytes, skip: int) -> tuple[int, bytes]:
    """The block's lines from line ``skip`` on (it holds that line)."""
    at = -1
    for _ in range(skip - index):
        at = block.index(b"\n", at + 1)
    return max(index, skip), block[at + 1 :]


def _line_row(kept: Kept, index: int, line: bytes) -> Row:
    email, _, key = line.decode().partition("\t")
    return Row(kept.first_seq + index, email, key or None, *_UNCHANGED, None, None)


def unchanged_rows(kept: Kept, fetch: Fetch, skip: int, limit: int) -> list[Row]:
    """Lines ``skip`` … ``skip + limit - 1`` as rows: read from the stream near its start, from
    the expanded text (:func:`expand`) deeper."""
    if skip >= kept.count:
        return []
    if skip >= STREAM_LINES or any(e.key[:2] == (kept.store, kept.run_id) for e in _EXPANDED):
        expanded = expand(kept, fetch)
        if expanded is not None:
            wanted = min(limit, kept.count - skip)
            return [
                _line_row(kept, skip + at, line)
                for at, line in enumerate(expanded.lines(skip, max(wanted, 0)))
            ]
    found: list[Row] = []
    for index, block in blocks(kept, fetch, skip):
        for at, line in enumerate(block.split(b"\n", limit - len(found))[: limit - len(found)]):
            found.append(_line_row(kept, index + at, line))
        if len(found) >= limit:
            break
    return found


def _hits(block: bytes, needle: bytes, begin: int = 0) -> Iterator[tuple[int, int]]:
    """(line number counted from ``begin`` — a line's start —, offset of the line's start) of the
    lines whose email holds ``needle``, each once."""
    at, line, counted_to = block.find(needle, begin), 0, begin
    while at >= 0:
        start = block.rfind(b"\n", begin, at) + 1 or begin
        tab = block.find(b"\t", start)
        end = block.find(b"\n", at)
        if tab < 0 or (end >= 0 and tab > end):
            tab = end if end >= 0 else len(block)
        if at + len(needle) <= tab:
            line += block.count(b"\n", counted_to, start)
            counted_to = start
            yield line, start
        if end < 0:
            return
        at = block.find(needle, end + 1)


def search(
    kept: Kept, fetch: Fetch, needle: str, skip: int, limit: int, *, after: int = -1, total: bool = True
) -> tuple[int, list[Row]]:
    """(how many lines match after line ``after`` — counted only if ``total`` —, the matches
    ``skip`` … ``skip + limit - 1`` among them)."""
    wanted = needle.encode()
    matched, found = 0, []
    expanded = expand(kept, fetch)
    pieces = [(0, expanded.text)] if expanded is not None else blocks(kept, fetch, 0)
    first = max(after + 1, 0)
    for index, block in pieces:
        begin = 0
        if expanded is not None:
            begin, index = expanded.line_start(first), first
        elif index + block.count(b"\n") < first:
            continue
        elif index < first:
            index, block = _from(index, block, first)
        for line, start in _hits(block, wanted, begin):
            if skip <= matched < skip + limit:
                end = block.find(b"\n", start)
                found.append(_line_row(kept, index + line, block[start : end if end >= 0 else len(block)]))
            matched += 1
            if not total and len(found) >= limit:
                return matched, found
    return matched, found


# ---------------------------------------------------------------- the unchanged stream, expanded once

EXPAND_AT_MOST = 64 << 20  # decompressed bytes kept in memory (one run's: a million members ≈ 32 MB)
WINDOW = 1 << 18  # the expanded text's lines are counted per window of this many bytes
STREAM_LINES = 5_000  # pages before this line are read from the stream without expanding it


@dataclass(frozen=True)
class Expanded:
    """A run's unchanged members decompressed once, with the newlines counted per window: a page
    at any line is then found by counting at most a window's lines. The latest run read deep or
    searched is kept (one, at most EXPAND_AT_MOST bytes); a stream never changes once written."""

    key: tuple[str, int, int, int, int]
    text: bytes
    newlines_before: list[int]  # newlines before each window's start (window i: i * WINDOW)

    def line_start(self, line: int) -> int:
        if line <= 0:
            return 0
        window = bisect.bisect_left(self.newlines_before, line) - 1
        at = window * WINDOW - 1
        for _ in range(line - self.newlines_before[window]):
            at = self.text.index(b"\n", at + 1)
        return at + 1

    def lines(self, first: int, limit: int) -> list[bytes]:
        start = self.line_start(first)
        found = []
        for _ in range(limit):
            if start > len(self.text):
                break
            end = self.text.find(b"\n", start)
            found.append(self.text[start : end if end >= 0 else len(self.text)])
            start = len(self.text) + 1 if end < 0 else end + 1
        return found


_EXPANDED: list[Expanded] = []
_EXPANDING = threading.Lock()


def expand(kept: Kept, fetch: Fetch) -> Expanded | None:
    """The run's unchanged members expanded (kept for the next request), or None if too big."""
    key = (kept.store, kept.run_id, kept.first_seq, kept.count, kept.size)
    with _EXPANDING:
        for expanded in _EXPANDED:
            if expanded.key == key:
                return expanded
        inflate = zlib.decompressobj()
        parts, size, offset = [], 0, 0
        while offset < kept.size:
            piece = fetch(offset, max(PIECE, 4 << 20))
            if not piece:
                break
            offset += len(piece)
            parts.append(inflate.decompress(piece, EXPAND_AT_MOST + 1 - size))
            size += len(parts[-1])
            if size > EXPAND_AT_MOST or inflate.unconsumed_tail:
                return None
        text = b"".join(parts) + inflate.flush()
        counts, total = [], 0
        for start in range(0, len(text) + 1, WINDOW):
            counts.append(total)
            total += text.count(b"\n", start, start + WINDOW)
        _EXPANDED[:] = [Expanded(key, text, counts)]
        return _EXPANDED[0]


# ---------------------------------------------------------------- pages


def stored_total(session: Session, run: Run, where: Filter) -> int | None:
    """The run's stored counts, where they hold every one of its rows; else None."""
    if (
        where.email
        or run.dry_run
        or run.status not in (RunStatus.SUCCEEDED, RunStatus.SUCCEEDED_WITH_REJECTIONS)
    ):
        return None
    if where.outcome == "pending":
        return 0
    if where.outcome:
        return int(getattr(run, where.outcome) or 0)
    return sum(int(getattr(run, name) or 0) for name in COUNTED)


def bounds(session: Session, run_id: int) -> tuple[int, int] | None:
    """The first and last seq of the run's kept rows (stored ones and the unchanged stretch), or
    None once they were pruned (its counts stay). One statement of four index seeks (it was six
    statements, each a round trip and the ORM's work, on every page of rows)."""
    members = sa.select(RunMember.seq).where(RunMember.run_id == run_id)
    unchanged = sa.select(RunUnchanged.first_seq).where(RunUnchanged.run_id == run_id)  # not its data
    low, high, first, last = session.execute(
        sa.select(
            members.with_only_columns(sa.func.min(RunMember.seq)).scalar_subquery(),
            members.with_only_columns(sa.func.max(RunMember.seq)).scalar_subquery(),
            unchanged.scalar_subquery(),
            unchanged.with_only_columns(RunUnchanged.first_seq + RunUnchanged.count - 1).scalar_subquery(),
        )
    ).one()
    starts = [int(x) for x in (low, first) if x is not None]
    ends = [int(x) for x in (high, last) if x is not None]
    return (min(starts), max(ends)) if starts else None


def has_rows(session: Session, run_id: int) -> bool:
    """False once the run's rows were pruned (its counts stay)."""
    return bounds(session, run_id) is not None


def page_after(session: Session, run_id: int, where: Filter, after: int, limit: int) -> list[Row]:
    """Up to ``limit`` matching rows with a seq after ``after``: indexed reads at any depth."""
    base = members_query(run_id, where)
    keep = kept(session, run_id)
    if keep is None:
        return _rows(session, base.where(RunMember.seq > after).limit(limit))
    found = []
    if after < keep.first_seq - 1:
        found = _rows(session, base.where(RunMember.seq > after, RunMember.seq < keep.first_seq).limit(limit))
    if len(found) < limit and where.reaches_unchanged and after < keep.end - 1:
        fetch = fetcher(session, run_id)
        if where.email:
            wanted = limit - len(found)
            found += search(keep, fetch, where.email, 0, wanted, after=after - keep.first_seq, total=False)[1]
        else:
            found += unchanged_rows(keep, fetch, max(after - keep.first_seq + 1, 0), limit - len(found))
    if len(found) < limit:
        found += _rows(
            session, base.where(RunMember.seq > max(after, keep.first_seq - 1)).limit(limit - len(found))
        )
    return found


def page_at(session: Session, run: Run, where: Filter, offset: int, limit: int) -> tuple[list[Row], int]:
    """The page at ``offset`` and how many rows match in all."""
    stored = stored_total(session, run, where)
    span = bounds(session, run.id) if stored is not None else None
    if stored is not None and span is None:
        stored = 0
    if stored and where.outcome and not where.email and stored == stored_total(session, run, Filter()):
        where = Filter()  # every row has this outcome (a first run: all new): the filter changes nothing
    if stored is not None and not where.any and span is not None:
        first, last = span
        if last == first + stored - 1:  # no gap
            return page_after(session, run.id, where, first + offset - 1, limit), stored
    if stored == 0 or (stored is not None and offset >= stored):
        return [], stored
    base = members_query(run.id, where)
    keep = kept(session, run.id)
    if keep is None:
        if where.email:
            searched = _search_members(session, base, offset, limit)
            if searched is not None:
                return searched
        rows = _rows(session, base.limit(limit).offset(offset))
        return rows, stored if stored is not None else _count(session, base)
    before_q = base.where(RunMember.seq < keep.first_seq)
    after_q = base.where(RunMember.seq >= keep.first_seq)
    before = _stored_before(where, stored)
    if before is None:
        before = _count(session, before_q)
    found: list[Row] = []
    if offset < before:
        found = _rows(session, before_q.limit(limit).offset(offset))
    middle, start = 0, max(offset - before, 0)
    if where.reaches_unchanged:
        fetch = fetcher(session, run.id)
        if where.email:
            middle, hits = search(keep, fetch, where.email, start, max(limit - len(found), 0))
            found += hits
        else:
            middle = keep.count
            if len(found) < limit and start < middle:
                found += unchanged_rows(keep, fetch, start, limit - len(found))
    if len(found) < limit:
        found += _rows(session, after_q.limit(limit - len(found)).offset(max(offset - before - middle, 0)))
    if stored is not None:
        return found, stored
    return found, before + middle + _count(session, after_q)


SEARCH_SEQS = 20_000  # matches of a search collected in one scan, at most (else: page, then count)


def _search_members(
    session: Session, base: sa.Select[Any], offset: int, limit: int
) -> tuple[list[Row], int] | None:
    """A search's page and total in one scan of the run's rows: the matching seqs (a search
    rarely matches many), then the page's rows by key. None when over SEARCH_SEQS match: then
    the page is read in seq order (it fills fast) and the matches counted."""
    seqs = list(session.scalars(base.order_by(None).with_only_columns(RunMember.seq).limit(SEARCH_SEQS + 1)))
    if len(seqs) > SEARCH_SEQS:
        return None
    seqs.sort()
    wanted = seqs[offset : offset + limit]
    rows = _rows(session, base.where(RunMember.seq.in_(wanted))) if wanted else []
    return rows, len(seqs)


def _stored_before(where: Filter, stored: int | None) -> int | None:
    """How many matching rows come before the unchanged stretch, from a finished run's stored
    counts: the plan's groups are in seq order — sent · removed · refused · unchanged · invalid —
    so every row of an outcome but unchanged and invalid comes before it."""
    if stored is None or where.email or not where.outcome:
        return None
    return 0 if where.outcome in (Outcome.UNCHANGED.value, Outcome.INVALID.value) else stored


# ---------------------------------------------------------------- every row, streamed


_PLAIN = sa.text(
    "SELECT seq, email, profile_key, action, outcome, code, message FROM run_members "
    "WHERE run_id = :run AND seq > :after AND seq < :before ORDER BY seq LIMIT :limit"
)
Plain = tuple[Any, ...]  # (seq, email, profile_key, action, outcome, code, message) as stored


class UnchangedLines(NamedTuple):
    """A block of unchanged members as stored: ``email<TAB>key`` lines, the first being ``seq``."""

    seq: int
    data: bytes

    def rows(self) -> list[Plain]:
        return [_plain_line(self.seq + at, line) for at, line in enumerate(self.data.split(b"\n"))]

    def cells(self) -> list[Cells]:
        return [_line_cells(line) for line in self.data.split(b"\n")]


@overload
def plain_rows(
    readers: sessionmaker[Session], run_id: int, where: Filter, *, cells: Literal[False] = False
) -> Iterator[list[Plain] | UnchangedLines]: ...


@overload
def plain_rows(
    readers: sessionmaker[Session], run_id: int, where: Filter, *, cells: Literal[True]
) -> Iterator[list[Cells] | UnchangedLines | CsvText]: ...


def plain_rows(
    readers: sessionmaker[Session], run_id: int, where: Filter, *, cells: bool = False
) -> Iterator[list[Plain] | list[Cells] | UnchangedLines | CsvText]:
    """Every matching row in seq order, in chunks of plain tuples (action and outcome as their
    stored text) or, with ``cells``, of the CSV's cells (:data:`Cells`) or its finished lines
    (:class:`CsvText`) — and, for the unchanged members without a search, blocks of their lines
    as stored (:class:`UnchangedLines`: the CSV turns them into its lines with bytes operations). Each chunk is read in a short session of
    its own: a million rows never hold a transaction."""
    members = _csv_members if cells else _plain_members
    with readers() as session:
        keep = kept(session, run_id)
    if keep is None:
        yield from members(readers, run_id, where, 0, 2**62)
        return
    yield from members(readers, run_id, where, 0, keep.first_seq)
    if where.reaches_unchanged:
        fetch = fetcher_in_sessions(readers, run_id)
        needle = where.email.encode() if where.email else None
        for index, block in blocks(keep, fetch, most=UNCHANGED_BLOCK if cells else 0):
            seq = keep.first_seq + index
            if needle is None:
                yield UnchangedLines(seq, block)
            else:
                lines = block.split(b"\n")
                if cells:
                    yield [_line_cells(lines[at]) for at in _lines_of(block, needle)]
                else:
                    yield [_plain_line(seq + at, lines[at]) for at in _lines_of(block, needle)]
    yield from members(readers, run_id, where, keep.first_seq - 1, 2**62)


# ---------------------------------------------------------------- the CSV's cells

FORMULA_START = frozenset(("=", "+", "-", "@", "\t", "\r"))  # spreadsheet formulas: defused with a quote
Cells = tuple[Any, ...]  # email, profile key, action, outcome ("pending" if none), code, message
UNCHANGED_BLOCK = 1 << 18  # decompressed bytes of the unchanged stream turned into CSV at a time


def defused(value: str | None) -> str | None:
    """A cell a spreadsheet would take for a formula, behind a quote."""
    return "'" + value if value and value[:1] in FORMULA_START else value


def _line_cells(line: bytes) -> Cells:
    email, _, key = line.decode().partition("\t")
    return (defused(email), defused(key or None), "unchanged", "unchanged", None, None)


def _defused_sql(column: Any) -> Any:
    """:func:`defused`, by the database."""
    starts = sa.func.substr(column, 1, 1).in_(sorted(FORMULA_START))
    return sa.case((starts, sa.literal("'", sa.String) + column), else_=column)


_CELLS: tuple[Any, ...] = (
    _defused_sql(RunMember.email),
    _defused_sql(RunMember.profile_key),
    sa.type_coerce(RunMember.action, sa.String),
    sa.func.coalesce(sa.type_coerce(RunMember.outcome, sa.String), "pending"),
    _defused_sql(RunMember.code),
    _defused_sql(RunMember.message),
)


def _defused_text(column: str) -> str:
    """:func:`defused` in SQL (SQLite and PostgreSQL alike; built from constants only)."""
    starts = ", ".join(f"'{c}'" for c in sorted(FORMULA_START))
    return f"CASE WHEN substr({column}, 1, 1) IN ({starts}) THEN '''' || {column} ELSE {column} END"


_CELLS_SQL = (  # built from constants only
    f"SELECT {_defused_text('email')}, {_defused_text('profile_key')}, action, coalesce(outcome, 'pending'), "  # noqa: S608
    f"{_defused_text('code')}, {_defused_text('message')} FROM run_members "
    "WHERE run_id = {run} AND seq >= {start} AND seq < {end} ORDER BY seq"
)
# Each row as one CSV line, quoting and defusing left out (:func:`plain_csv` then checks that none
# was needed): one value per row for the driver to hand over, none of the csv module's work.
_LINES_SQL = {
    "sqlite": "SELECT printf('%s,%s,%s,%s,%s,%s\r\n', email, profile_key, action, ifnull(outcome, 'pending'), "
    "code, message) FROM run_members WHERE run_id = :run AND seq >= :start AND seq < :end ORDER BY seq",
    "postgresql": "SELECT email || ',' || coalesce(profile_key, '') || ',' || action || ',' || "
    "coalesce(outcome, 'pending') || ',' || coalesce(code, '') || ',' || coalesce(message, '') || E'\\r\\n' "
    "FROM run_members WHERE run_id = %(run)s AND seq >= %(start)s AND seq < %(end)s ORDER BY seq",
}
_PLACES = {"sqlite": ":{}", "postgresql": "%({})s"}  # the drivers' own parameter styles
_STARTS = tuple(sorted(FORMULA_START - {"\r"}))  # a carriage return is counted apart


class CsvText(NamedTuple):
    """``run_members`` rows already as the CSV's lines, exactly as the csv module writes them."""

    text: str


def plain_csv(text: str, lines: int) -> bool:
    """True if ``lines`` lines of six cells joined by commas (``text``, each line ending in CRLF)
    are what the csv module writes for those cells after :func:`defused`: no cell holds a comma,
    a quote, a carriage return or a newline (each line then has exactly five commas, one CR and
    one LF, so every comma and newline is a separator) — nothing to quote — and no cell starts
    with a formula character (none follows a separator, nor starts the text) — nothing to defuse."""
    return (
        text.count(",") == 5 * lines
        and text.count("\n") == lines
        and text.count("\r") == lines
        and '"' not in text
        and text[:1] not in FORMULA_START
        and not any(c in text and ("," + c in text or "\n" + c in text) for c in _STARTS)
    )  # (a character first, as one is found much faster than two; "@" is in every line)


def _csv_members(
    readers: sessionmaker[Session], run_id: int, where: Filter, after: int, before: int
) -> Iterator[list[Cells] | CsvText]:
    """The ``run_members`` rows with ``after < seq < before`` as the CSV's cells, made by the
    database, CHUNK_ROWS seqs at a time (a run's seqs have no gaps to speak of), each chunk in a
    short session. Unfiltered, the driver's cursor answers with each row as one CSV line
    (:class:`CsvText`) and, where a chunk has anything to quote or defuse, with its cells (plain
    tuples, none of SQLAlchemy's work per row)."""
    within = (RunMember.run_id == run_id, RunMember.seq > after, RunMember.seq < before)
    with readers() as session:  # min and max apart: each one seek (together, SQLite scans the range)
        first: int | None = session.scalar(sa.select(sa.func.min(RunMember.seq)).where(*within))
        last: int | None = session.scalar(sa.select(sa.func.max(RunMember.seq)).where(*within))
        dialect = session.get_bind().dialect.name
    if first is None or last is None:
        return
    query = (
        members_query(run_id, where)
        .with_only_columns(*_CELLS)
        .where(RunMember.seq >= sa.bindparam("start"), RunMember.seq < sa.bindparam("end"))
    )
    place = _PLACES.get(dialect)
    raw = _CELLS_SQL.format(**{name: place.format(name) for name in ("run", "start", "end")}) if place else ""
    lines_sql = _LINES_SQL.get(dialect, "")
    for start in range(int(first), int(last) + 1, CHUNK_ROWS):
        params = {"run": run_id, "start": start, "end": min(start + CHUNK_ROWS, int(last) + 1)}
        with readers() as session:
            if where.any or not raw:
                yield [tuple(row) for row in session.connection().execute(query, params)]
                continue
            cursor = session.connection().connection.cursor()
            try:
                lines = [row[0] for row in _fetched(cursor, lines_sql, params)]
                text = "".join(lines)
                if plain_csv(text, len(lines)):
                    chunk: list[Cells] | CsvText = CsvText(text)
                else:
                    chunk = _fetched(cursor, raw, params)
            finally:
                cursor.close()
        if chunk:
            yield chunk


def _fetched(cursor: Any, sql: str, params: dict[str, int]) -> list[Any]:
    cursor.execute(sql, params)
    return list(cursor.fetchall())


def _plain_line(seq: int, line: bytes) -> Plain:
    email, _, key = line.decode().partition("\t")
    return (seq, email, key or None, "unchanged", "unchanged", None, None)


def _lines_of(block: bytes, needle: bytes) -> list[int]:
    return [line for line, _ in _hits(block, needle)]


def _plain_members(
    readers: sessionmaker[Session], run_id: int, where: Filter, after: int, before: int
) -> Iterator[list[Plain]]:
    query = (
        members_query(run_id, where)
        .with_only_columns(
            *(
                sa.type_coerce(column, sa.String) if column.key in ("action", "outcome") else column
                for column in _COLUMNS
            )
        )
        .where(RunMember.seq < before)
        .limit(CHUNK_ROWS)
    )
    while True:
        with readers() as session:
            if where.any:
                chunk = [tuple(row) for row in session.execute(query.where(RunMember.seq > after))]
            else:  # plain SQL: the driver's tuples as they are, no conversion per value
                found = session.execute(
                    _PLAIN, {"run": run_id, "after": after, "before": before, "limit": CHUNK_ROWS}
                )
                chunk = [tuple(row) for row in found]
        if chunk:
            yield chunk
        if len(chunk) < CHUNK_ROWS:
            return
        after = int(chunk[-1][0])
