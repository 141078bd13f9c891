"""The journal file: its tables and format version, opening it, upgrading an older one."""

from __future__ import annotations

import functools
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .._errors import JournalError

__all__ = [
    "APPLICATION",
    "CACHE_TABLE",
    "INSERT_RECORD",
    "INSERT_CHUNK",
    "MIGRATIONS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "SYNCHRONOUS",
    "insert_records",
    "open_file",
    "statements",
    "transaction",
]

#: The journal format this dagtrio writes and reads: 2 added the ``cache`` table, 3 the
#: ``owner`` of each run, 4 the ``traceback`` of failed outcomes and the id counter in
#: ``add`` records, 5 the ``ended`` of cancelled and timed-out attempts (see `Ending`).
#: An older file is upgraded in place when opened for writing.
SCHEMA_VERSION = 5

APPLICATION = "dagtrio-journal"

SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    dag_name TEXT NOT NULL,
    options TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    status TEXT NOT NULL,
    success INTEGER,
    error TEXT,
    handled INTEGER NOT NULL DEFAULT 0,
    nodes INTEGER NOT NULL DEFAULT 0,
    owner TEXT
);
CREATE TABLE IF NOT EXISTS records (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    node TEXT,
    status TEXT,
    attempts INTEGER,
    started_at REAL,
    finished_at REAL,
    error TEXT,
    data TEXT,
    traceback TEXT,
    ended TEXT,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
"""

CACHE_TABLE = """
CREATE TABLE IF NOT EXISTS cache (
    key TEXT PRIMARY KEY,
    action TEXT NOT NULL,
    outputs TEXT,
    run_id TEXT NOT NULL,
    node TEXT NOT NULL,
    created_at REAL NOT NULL
) WITHOUT ROWID
"""

SCHEMA += CACHE_TABLE

#: statements that take a file from schema version N to N + 1
MIGRATIONS: dict[int, list[str]] = {
    1: [CACHE_TABLE],
    2: ["ALTER TABLE runs ADD COLUMN owner TEXT"],
    # `add` records of version 3 hold a list of specs, of version 4 an object; both read.
    3: ["ALTER TABLE records ADD COLUMN traceback TEXT"],
    4: ["ALTER TABLE records ADD COLUMN ended TEXT"],
}

INSERT_RECORD = (
    "INSERT INTO records (run_id, seq, kind, node, status, attempts, started_at,"
    " finished_at, error, data, traceback, ended) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
)

#: rows per statement of `insert_records`, at most (a power of two)
INSERT_CHUNK = 256


def insert_records(
    connection: sqlite3.Connection, run_id: str, rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert a run's records: ``rows`` of ``(seq, kind, …)`` as `INSERT_RECORD` takes them.

    Many rows per statement, not ``executemany``: Python's sqlite3 lets go of the GIL
    around every step of a statement, so a batch written by ``executemany`` in the
    journal's thread took the GIL back once per row, and while the run kept the main
    thread busy each of those waits lasted until the main thread let go (a scheduler
    pass at least): 1024 rows took 130 to 170 ms, and most of a journaled run's
    records were written only after its last node ended. A statement of 256 rows
    takes it back once, and costs no more to bind and run. Statements are of
    power-of-two sizes, so that the connection's statement cache holds them all.
    """
    # The number of parameters a statement may have (999 before SQLite 3.32).
    limit = connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    chunk = INSERT_CHUNK
    while chunk > 1 and chunk * _COLUMNS > limit:
        chunk //= 2
    start, count = 0, len(rows)
    while start < count:
        size = min(chunk, 1 << ((count - start).bit_length() - 1))
        params = [value for row in rows[start : start + size] for value in (run_id, *row)]
        connection.execute(_insert_many(size), params)
        start += size


#: the columns of `INSERT_RECORD`
_COLUMNS = 12


@functools.cache
def _insert_many(size: int) -> str:
    values = ",".join(["(" + ",".join("?" * _COLUMNS) + ")"] * size)
    return INSERT_RECORD.partition(" VALUES ")[0] + " VALUES " + values


def statements(script: str) -> list[str]:
    """The statements of ``script``, one by one (``executescript`` would commit)."""
    return [statement for statement in script.split(";") if statement.strip()]


def open_file(
    label: str, file: str, *, timeout: float, synchronous: str, read_only: bool
) -> tuple[sqlite3.Connection, int]:
    """A connection to the journal at ``file`` (named ``label`` in errors), and the
    schema version of the file: created and upgraded as needed, unless ``read_only``."""
    if read_only:
        return _open_read_only(label, file, timeout)
    connection = sqlite3.connect(
        file, timeout=timeout, isolation_level=None, check_same_thread=False
    )
    try:
        _enable_wal(connection, timeout)
        connection.execute(f"PRAGMA synchronous={synchronous}")
        if "meta" not in _tables(label, connection):
            # Created in one transaction, with the table list read again inside
            # it: another process creating the same new file at the same moment
            # makes this one wait, then find the journal complete.
            with transaction(connection):
                if "meta" not in _tables(label, connection):
                    for statement in statements(SCHEMA):
                        connection.execute(statement)
                    connection.executemany(
                        "INSERT INTO meta (key, value) VALUES (?, ?)",
                        [("application", APPLICATION), ("schema_version", str(SCHEMA_VERSION))],
                    )
        version = _check_schema(label, connection, read_only=False)
    except BaseException:
        connection.close()
        raise
    return connection, version


def _open_read_only(label: str, file: str, timeout: float) -> tuple[sqlite3.Connection, int]:
    # SQLite would create a missing file even in read-only mode's absence of one,
    # and "unable to open database file" does not say which problem it is.
    if not os.path.isfile(file):
        raise JournalError(f"journal {label}: no such file")
    uri = "file:" + urllib.parse.quote(file) + "?mode=ro"
    connection = sqlite3.connect(
        uri, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False
    )
    try:
        if not _tables(label, connection):
            raise JournalError(f"journal {label}: not a dagtrio journal (it has no tables)")
        version = _check_schema(label, connection, read_only=True)
    except BaseException:
        connection.close()
        raise
    return connection, version


def _tables(label: str, connection: sqlite3.Connection) -> set[str]:
    tables = {
        row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
    }
    if tables and "meta" not in tables:
        raise JournalError(
            f"journal {label}: not a dagtrio journal (it has tables {sorted(tables)})"
        )
    return tables


def _enable_wal(connection: sqlite3.Connection, timeout: float) -> None:
    # Changing the journal mode does not go through SQLite's busy handler: it fails
    # at once while another connection holds a lock, so wait here as SQLite would.
    deadline = time.monotonic() + timeout
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL").fetchone()
            return
        except sqlite3.OperationalError as exc:
            busy = "locked" in str(exc) or "busy" in str(exc)
            if not busy or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


def _check_schema(label: str, connection: sqlite3.Connection, *, read_only: bool) -> int:
    """The file's schema version, after upgrading it unless ``read_only``."""
    meta = dict(connection.execute("SELECT key, value FROM meta").fetchall())
    if meta.get("application") != APPLICATION:
        raise JournalError(f"journal {label}: not a dagtrio journal")
    version = meta.get("schema_version", "")
    if not version.isdigit() or int(version) < 1:
        raise JournalError(f"journal {label}: unknown schema version {version!r}")
    if int(version) > SCHEMA_VERSION:
        raise JournalError(
            f"journal {label}: written by a newer dagtrio (schema {version}; "
            f"this one reads up to {SCHEMA_VERSION}); upgrade dagtrio to read it"
        )
    if int(version) == SCHEMA_VERSION or read_only:
        return int(version)
    with transaction(connection):
        # Again inside the transaction: another process may have upgraded it.
        (current,) = connection.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'"
        ).fetchone()
        for step in range(int(current), SCHEMA_VERSION):
            for statement in MIGRATIONS[step]:
                connection.execute(statement)
        connection.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
        )
    return SCHEMA_VERSION


@contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """A write transaction, taking the file's write lock up front (``IMMEDIATE``): what
    runs inside reads what it will change under the lock, and all of it lands or none."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
