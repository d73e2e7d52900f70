"""Realistic synthetic profiles, generated inside DuckDB with SQL (no Python loops over rows).

Every value is a function of (row number, seed) through DuckDB's ``hash``, so the same seed, row
count and ``as_of`` date give the same profiles. Dates are relative to ``as_of`` (default: today)
so that segments like "purchased in the last 90 days" have members.

What is in there, on purpose: names and cities per country (PL, LV, RO, FI, DE, US, GB, FR, ES,
SE), e-mail addresses with about 2 % mixed case, 1.5 % invalid (no ``@``, two ``@``, a space, no
domain dot, empty), 0.5 % missing and 1 % duplicates (a second profile of the same person),
profiles that never bought anything (no ``last_purchase_at``), missing birth dates and consents.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from segmentsync.errors import Invalid
from segmentsync.profiles import store

MAX_ROWS = 100_000_000
CHUNK_ROWS = 1_000_000  # rows per INSERT: lets the progress bar move on big tables

# (weight in %, cities, first names, last names, e-mail domains, language)
COUNTRIES: dict[str, tuple[int, list[str], list[str], list[str], list[str], str]] = {
    "PL": (22, ["Warszawa", "Kraków", "Łódź", "Wrocław", "Poznań", "Gdańsk"],
           ["Anna", "Piotr", "Katarzyna", "Krzysztof", "Małgorzata", "Tomasz", "Agnieszka", "Paweł"],
           ["Nowak", "Kowalski", "Wiśniewska", "Wójcik", "Kamińska", "Lewandowski", "Zieliński"],
           ["wp.pl", "onet.pl", "o2.pl", "gmail.com", "interia.pl"], "pl"),
    "DE": (14, ["Berlin", "Hamburg", "München", "Köln", "Frankfurt am Main"],
           ["Lukas", "Sophie", "Jürgen", "Marie", "Felix", "Hannah", "Maximilian"],
           ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Becker", "Schäfer"],
           ["gmx.de", "web.de", "t-online.de", "gmail.com"], "de"),
    "US": (14, ["New York", "Chicago", "Austin", "Seattle", "Boston", "Denver"],
           ["James", "Mary", "Robert", "Patricia", "Michael", "Jennifer", "David"],
           ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "O'Brien"],
           ["gmail.com", "yahoo.com", "outlook.com", "icloud.com"], "en"),
    "RO": (11, ["București", "Cluj-Napoca", "Timișoara", "Iași", "Constanța"],
           ["Andrei", "Ioana", "Mihai", "Elena", "Ștefan", "Maria", "Alexandru"],
           ["Popescu", "Ionescu", "Popa", "Dumitrescu", "Stan", "Gheorghe", "Rădulescu"],
           ["yahoo.ro", "gmail.com", "yahoo.com"], "ro"),
    "FI": (8, ["Helsinki", "Espoo", "Tampere", "Oulu", "Turku", "Jyväskylä"],
           ["Mikko", "Aino", "Juha", "Elina", "Matti", "Sanna", "Väinö"],
           ["Korhonen", "Virtanen", "Mäkinen", "Nieminen", "Hämäläinen", "Laine"],
           ["luukku.com", "gmail.com", "elisanet.fi"], "fi"),
    "LV": (7, ["Rīga", "Daugavpils", "Liepāja", "Jelgava", "Jūrmala"],
           ["Jānis", "Anna", "Andris", "Līga", "Mārtiņš", "Ilze", "Kristīne"],
           ["Bērziņš", "Kalniņa", "Ozoliņš", "Jansons", "Liepiņa", "Krūmiņš"],
           ["inbox.lv", "gmail.com", "apollo.lv"], "lv"),
    "GB": (8, ["London", "Manchester", "Leeds", "Bristol", "Edinburgh"],
           ["Oliver", "Amelia", "Harry", "Isla", "George", "Emily"],
           ["Taylor", "Davies", "Evans", "Thomas", "Roberts", "Walker"],
           ["gmail.com", "btinternet.com", "outlook.com"], "en"),
    "FR": (7, ["Paris", "Lyon", "Marseille", "Toulouse", "Nantes"],
           ["Léa", "Hugo", "Chloé", "Louis", "Manon", "Théo"],
           ["Martin", "Bernard", "Dubois", "Lefèvre", "Moreau", "Girard"],
           ["orange.fr", "free.fr", "gmail.com", "laposte.net"], "fr"),
    "ES": (5, ["Madrid", "Barcelona", "Valencia", "Sevilla", "Bilbao"],
           ["Lucía", "Hugo", "Martina", "Pablo", "Sofía", "Álvaro"],
           ["García", "Fernández", "González", "Rodríguez", "López", "Martínez"],
           ["gmail.com", "hotmail.es", "yahoo.es"], "es"),
    "SE": (4, ["Stockholm", "Göteborg", "Malmö", "Uppsala"],
           ["Erik", "Astrid", "Lars", "Elsa", "Björn", "Maja"],
           ["Andersson", "Johansson", "Karlsson", "Nilsson", "Öberg"],
           ["telia.com", "gmail.com", "hotmail.se"], "sv"),
}  # fmt: skip

COLUMNS_SQL = """
    profile_id BIGINT NOT NULL, email VARCHAR, first_name VARCHAR, last_name VARCHAR,
    country VARCHAR, city VARCHAR, language VARCHAR, signup_date DATE,
    last_purchase_at TIMESTAMP WITH TIME ZONE, total_spend DECIMAL(12, 2), orders INTEGER,
    loyalty_tier VARCHAR, consent_email BOOLEAN, birth_date DATE
"""


def email_letters(name: str) -> str:
    """A name as e-mail letters: ``Łódź`` → ``lodz`` (ł has no accent to strip, so it is mapped)."""
    folded = unicodedata.normalize("NFKD", name.translate(str.maketrans("łŁøØđĐß", "lLoOdDs")))
    return "".join(ch for ch in folded.lower() if "a" <= ch <= "z")


# Small lookup tables (temporary, in the writer's connection), joined by (country, position).
# Positions come from a uniform number times the list's length: DuckDB's modulo by a column
# (UBIGINT % INTEGER) is about 50 times slower than this.
LOOKUPS = {
    "gen_country": "c INTEGER, code VARCHAR, language VARCHAR, cities INTEGER, firsts INTEGER, lasts INTEGER, domains INTEGER",
    "gen_city": "c INTEGER, k INTEGER, city VARCHAR",
    "gen_first": "c INTEGER, k INTEGER, first_name VARCHAR, first_letters VARCHAR",
    "gen_last": "c INTEGER, k INTEGER, last_name VARCHAR, last_letters VARCHAR",
    "gen_domain": "c INTEGER, k INTEGER, domain VARCHAR",
}


def _lookup_rows() -> dict[str, list[tuple[object, ...]]]:
    rows: dict[str, list[tuple[object, ...]]] = {name: [] for name in LOOKUPS}
    for c, (code, (_, cities, firsts, lasts, domains, language)) in enumerate(COUNTRIES.items(), start=1):
        rows["gen_country"].append((c, code, language, len(cities), len(firsts), len(lasts), len(domains)))
        rows["gen_city"] += [(c, k, city) for k, city in enumerate(cities)]
        rows["gen_first"] += [(c, k, name, email_letters(name)) for k, name in enumerate(firsts)]
        rows["gen_last"] += [(c, k, name, email_letters(name)) for k, name in enumerate(lasts)]
        rows["gen_domain"] += [(c, k, domain) for k, domain in enumerate(domains)]
    return rows


def _create_lookups(con: duckdb.DuckDBPyConnection) -> None:
    tables = _lookup_rows()
    for name, columns in LOOKUPS.items():
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} ({columns})")
        values = tables[name]
        marks = ", ".join("?" * len(values[0]))
        # S608 is wrong here: the table name is one of ours; the values are parameters
        con.executemany(f"INSERT INTO {name} VALUES ({marks})", values)  # noqa: S608


def _weights() -> str:
    """The country numbers, each repeated by its weight in %: a 100-entry list to index."""
    weighted = [c for c, (weight, *_) in enumerate(COUNTRIES.values(), start=1) for _ in range(weight)]
    return "[" + ", ".join(map(str, weighted)) + "]"


# $1 seed, $2 first row, $3 end row, $4 as_of date. ORDER BY: the joins would shuffle rows; the
# table is stored in key order (about a fifth of the time, for tidy scans and previews). u_…: a uniform number in [0, 1) for one of
# the row's attributes; p: the person (1 % of profiles are a second profile of the previous one).
INSERT_SQL = """
INSERT INTO {staging}
WITH rows AS (
    SELECT i, CASE WHEN i > 0 AND hash(i, $1, 0) % 100 = 0 THEN i - 1 ELSE i END AS p
    FROM range($2, $3) AS r(i)
), people AS (
    SELECT i, p, list_element({weights}, (hash(p, $1, 1) % 100)::INTEGER + 1) AS c,
        (hash(i, $1, 9) % 1000000) / 1000000.0 AS u_email,
        (hash(i, $1, 10) % 1000000) / 1000000.0 AS u_orders,
        (hash(i, $1, 11) % 1000000) / 1000000.0 AS u_basket,
        (hash(i, $1, 12) % 1000000) / 1000000.0 AS u_recent,
        (hash(i, $1, 13) % 3650)::INTEGER AS signup_days_ago
    FROM rows
), picked AS (
    SELECT people.*, k.code, k.language,
        floor((hash(p, $1, 2) % 1000000) / 1000000.0 * k.firsts)::INTEGER AS fi,
        floor((hash(p, $1, 3) % 1000000) / 1000000.0 * k.lasts)::INTEGER AS li,
        floor((hash(p, $1, 4) % 1000000) / 1000000.0 * k.domains)::INTEGER AS di,
        CASE WHEN hash(i, $1, 5) % 50 = 0 THEN -1
            ELSE floor((hash(i, $1, 6) % 1000000) / 1000000.0 * k.cities)::INTEGER END AS ci,
        CASE WHEN u_orders < 0.3 THEN 0 ELSE 1 + floor(-ln(1.0 - u_basket) * 4)::INTEGER END AS orders
    FROM people JOIN gen_country AS k USING (c)
), named AS (
    SELECT picked.*, f.first_name, l.last_name, d.domain, t.city,
        f.first_letters || '.' || l.last_letters || p::VARCHAR AS local
    FROM picked
    JOIN gen_first AS f ON f.c = picked.c AND f.k = picked.fi
    JOIN gen_last AS l ON l.c = picked.c AND l.k = picked.li
    JOIN gen_domain AS d ON d.c = picked.c AND d.k = picked.di
    LEFT JOIN gen_city AS t ON t.c = picked.c AND t.k = picked.ci
)
SELECT i + 1 AS profile_id,
    CASE
        WHEN u_email < 0.005 THEN NULL
        WHEN u_email < 0.008 THEN ''
        WHEN u_email < 0.011 THEN local || domain
        WHEN u_email < 0.014 THEN local || '@@' || domain
        WHEN u_email < 0.017 THEN local || ' @' || domain
        WHEN u_email < 0.020 THEN local || '@' || split_part(domain, '.', 1)
        WHEN u_email < 0.030 THEN upper(local || '@' || domain)
        WHEN u_email < 0.040 THEN upper(left(local, 1)) || substr(local, 2) || '@' || upper(left(domain, 1)) || substr(domain, 2)
        ELSE local || '@' || domain
    END AS email,
    first_name, last_name, code AS country, city, language,
    $4::DATE - signup_days_ago AS signup_date,
    CASE WHEN orders = 0 THEN NULL ELSE $4::TIMESTAMPTZ
        - to_seconds((u_recent * u_recent * (signup_days_ago + 1) * 86400)::BIGINT) END
        AS last_purchase_at,
    round(orders * (15 + u_basket * 185), 2)::DECIMAL(12, 2) AS total_spend,
    orders,
    CASE WHEN orders = 0 THEN NULL WHEN orders * (15 + u_basket * 185) >= 2000 THEN 'platinum'
        WHEN orders * (15 + u_basket * 185) >= 800 THEN 'gold'
        WHEN orders * (15 + u_basket * 185) >= 200 THEN 'silver' ELSE 'bronze' END AS loyalty_tier,
    CASE WHEN hash(i, $1, 7) % 50 = 0 THEN NULL ELSE hash(i, $1, 7) % 10 < 7 END AS consent_email,
    CASE WHEN hash(i, $1, 8) % 100 < 8 THEN NULL
        ELSE $4::DATE - (6570 + hash(i, $1, 8) % 24000)::INTEGER END AS birth_date
FROM named
ORDER BY i
"""


@dataclass(frozen=True)
class GenerateResult:
    table: str
    rows: int
    seconds: float


def generate(
    path: Path,
    *,
    rows: int,
    seed: int = 42,
    table: str = "profiles",
    as_of: date | None = None,
    progress: Callable[[int, int], None] | None = None,
    lock_wait: float = store.LOCK_WAIT_SECONDS,
) -> GenerateResult:
    """Replace ``table`` in the DuckDB file at ``path`` with ``rows`` synthetic profiles.

    ``progress(done, total)`` is called after each chunk. The previous table stays until the new
    one is complete (built in a staging table, then swapped in one transaction).
    """
    if not 1 <= rows <= MAX_ROWS:
        raise Invalid(f"rows must be between 1 and {MAX_ROWS:,}", field="rows")
    check_seed(seed)
    store.check_identifier(table, what="table name")
    started = time.perf_counter()
    staging = store.quote(store.staging_name(table))
    insert = INSERT_SQL.format(staging=staging, weights=_weights())
    with store.writer(path, lock_wait=lock_wait) as con:
        try:
            _create_lookups(con)
            con.execute(f"CREATE OR REPLACE TABLE {staging} ({COLUMNS_SQL})")
            for start in range(0, rows, CHUNK_ROWS):
                end = min(start + CHUNK_ROWS, rows)
                con.execute(insert, [seed, start, end, as_of or date.today()])
                if progress:
                    progress(end, rows)
            store.swap_in(con, table, append=False)
        finally:
            store.drop_staging(con, table)
    return GenerateResult(table=table, rows=rows, seconds=time.perf_counter() - started)


def check_seed(seed: int) -> None:
    if not 0 <= seed < 2**63:
        raise Invalid("seed must be a non-negative 64-bit integer", field="seed")
