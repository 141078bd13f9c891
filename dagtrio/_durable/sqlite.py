"""Durable runs: an append-only SQLite journal that a crashed run resumes from.

What a run writes, in the order it happens (``seq`` numbers the records of one run):

- ``add``: a batch of nodes that went into the graph (the initial specs, every applied
  `AddNode` / `AddNodes`), with their final ids, so a grown graph is rebuilt exactly;
- ``command``: every other applied command (`SetNodeInputs`, branch commands,
  `EmitEvent`);
- ``outcome``: a node's final state, with its outputs as JSON (``cached`` instead for
  a node that succeeded by reusing a cached result);
- ``started``: every hook's ``on_start`` ran and its commands were applied (a resumed
  run calls ``on_start`` again only without it);
- ``stop``: a shutdown or fail_fast began, with its reason (a resumed run finishes it).

The first ``add`` is committed with the run's row, so a run in the journal always has
its graph; its data holds the specs and the automatic id counter after them. An
``outcome`` of a failed node keeps the last attempt's traceback.

A run belongs to one process at a time: the one that started it, or resumed it last.
It holds a claim on the run, an operating-system lock on one byte of a file beside the
journal (``<journal>-claims``) that the kernel drops when the process ends, however it
ends; a pid, which the system reuses, could block a resume forever or let two in. The
``owner`` column (host and pid) only says who it was, for error messages.

The ``runs`` table holds one row per run: its DAG name, options, start, end and
verdict, and ``handled``: the last ``seq`` whose events have passed every hook, with
the commands they caused applied and committed. Nothing is written per event, so the
file grows with nodes and commands, not with events.

Records are written by one task per run, in batches (one transaction each), in a
worker thread; the coordinator only appends to a list. Events wait at the head of the
event pipeline until every record before them is committed, so nothing a hook or a
reader has seen can be lost in a crash.

The ``cache`` table holds memoized results (``Coordinator(cache=journal)``): the
outputs of a successful computation under its cache key, shared by every run that uses
the file as its cache.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import trio

from .._errors import JournalError, describe
from .._model.report import RunReport
from .._validate import check_int, check_seconds
from .claims import CLAIMS, LIVE, LIVE_LOCK, OWNER
from .records import RunInfo, StoredRun
from .replay import stored_report
from .schema import (
    SCHEMA_VERSION,
    SYNCHRONOUS,
    insert_records,
    open_file,
    transaction,
)

__all__ = [
    "SCHEMA_VERSION",
    "JournalError",
    "RunInfo",
    "SqliteJournal",
    "StoredRun",
    "journal_limiter",
]

#: threads for journal and cache calls, per Trio run (see `journal_limiter`)
_LIMITER: trio.lowlevel.RunVar[trio.CapacityLimiter] = trio.lowlevel.RunVar(
    "dagtrio.journal_limiter"
)
JOURNAL_THREADS = 4


def journal_limiter() -> trio.CapacityLimiter:
    """The thread limiter of journal and cache calls in this Trio run.

    Not Trio's default one, which sync actions share: forty sync actions blocked (or
    timed out and abandoned, still running) would hold every token, and a journaled
    run could then commit nothing, so deliver no event and never end.
    """
    try:
        return _LIMITER.get()
    except LookupError:
        limiter = trio.CapacityLimiter(JOURNAL_THREADS)
        _LIMITER.set(limiter)
        return limiter


class SqliteJournal:
    """An SQLite file recording runs so that a crashed run can be resumed.

    ``Coordinator(registry, journal=SqliteJournal("runs.db"))`` records every run of
    that coordinator; `Coordinator.resume` finishes a run whose process died, without
    re-running any node that had succeeded. The file needs no server; many runs (also
    at once, also from several coordinators of one process) share one file, each
    seeing only its own records.

    - ``timeout``: seconds to wait for a lock another process holds before failing
      with `JournalError`.
    - ``synchronous``: SQLite's ``synchronous`` setting. ``"NORMAL"`` (the default,
      in WAL mode) loses nothing when the process is killed; ``"FULL"`` also survives a
      power cut, at the cost of an fsync per commit.
    - ``read_only``: open an existing journal for reading only (`runs`, `report`,
      `stored_run`, `cache_size`), as ``dagtrio report`` does: the file is never
      created, upgraded or switched to WAL, and a file that is not a journal is
      left as it was. Coordinators refuse a read-only journal.

    The file is opened on first use, not here. The blocking methods (`runs`,
    `stored_run`, `report`, `prune`) are for scripts and the ``dagtrio report``
    command; from Trio code call them through ``trio.to_thread.run_sync``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = 5.0,
        synchronous: str = "NORMAL",
        read_only: bool = False,
    ) -> None:
        if not isinstance(synchronous, str) or synchronous.upper() not in SYNCHRONOUS:
            raise ValueError(
                f"synchronous must be one of {', '.join(SYNCHRONOUS)}, got {synchronous!r}"
            )
        timeout = check_seconds("timeout", timeout, finite=True)
        if not isinstance(read_only, bool):
            raise TypeError(f"read_only must be True or False, got {read_only!r}")
        self.path = os.fspath(path)
        # Fixed now: a relative path must name the same file (and the same claims)
        # however the working directory changes while the journal is in use.
        self._file = os.path.abspath(self.path)
        self._real = os.path.realpath(self._file)
        self.timeout = float(timeout)
        self.synchronous = synchronous.upper()
        self.read_only = read_only
        self._connection: sqlite3.Connection | None = None
        #: the schema version of the open file (older than ours only when read-only)
        self._version = SCHEMA_VERSION
        # One connection, used by one thread at a time: runs write from Trio worker
        # threads, which are not always the same thread.
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        mode = ", read_only=True" if self.read_only else ""
        return f"SqliteJournal({self.path!r}{mode})"

    # ---------------------------------------------------------------- connection

    @contextmanager
    def _db(self, doing: str, *, writes: bool = False) -> Iterator[sqlite3.Connection]:
        """The open connection, under the lock; SQLite errors become `JournalError`."""
        if writes and self.read_only:
            raise JournalError(f"journal {self.path}: cannot {doing}: it was opened read-only")
        with self._lock:
            try:
                if self._connection is None:
                    self._connection, self._version = open_file(
                        self.path,
                        self._file,
                        timeout=self.timeout,
                        synchronous=self.synchronous,
                        read_only=self.read_only,
                    )
                yield self._connection
            except sqlite3.Error as exc:
                raise JournalError(self._explain(exc, doing)) from exc

    def _explain(self, exc: sqlite3.Error, doing: str) -> str:
        text = str(exc)
        if "locked" in text or "busy" in text:
            why = f"it is locked by another process (waited {self.timeout:g}s)"
        elif "full" in text:
            why = "the disk (or the database's size limit) is full"
        elif "not a database" in text or "malformed" in text:
            why = "the file is not a dagtrio journal or is corrupt"
        else:
            why = describe(exc)
        return f"journal {self.path}: cannot {doing}: {why}"

    def close(self) -> None:
        """Close the file (it reopens on next use)."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    # ---------------------------------------------------------------- writing (runs)

    def _begin(
        self,
        run_id: str,
        dag_name: str,
        options: Mapping[str, Any],
        now: float,
        rows: Sequence[tuple[Any, ...]] = (),
        nodes: int = 0,
    ) -> None:
        """Record a new run with its first ``rows`` (the initial graph), in one
        transaction, and claim it for this process.

        Together, so that a run in the journal always has its graph: a crash right
        after a header written alone would leave a run that "resumes" to an empty
        success.
        """
        key = self._live_key(run_id)
        with LIVE_LOCK:
            if key in LIVE or not self._acquire(run_id):
                raise self._already(run_id)
            LIVE.add(key)
        try:
            doing = f"record the start of run {run_id!r}"
            with self._db(doing, writes=True) as db, transaction(db):
                try:
                    db.execute(
                        "INSERT INTO runs (run_id, dag_name, options, started_at, status,"
                        " nodes, owner) VALUES (?, ?, ?, ?, 'running', ?, ?)",
                        (run_id, dag_name, json.dumps(dict(options)), now, nodes, OWNER),
                    )
                except sqlite3.IntegrityError:
                    raise self._already(run_id) from None
                insert_records(db, run_id, rows)
        except BaseException:
            self._release(run_id)
            raise

    def _already(self, run_id: str) -> JournalError:
        return JournalError(
            f"journal {self.path}: run {run_id!r} is already in the journal"
            " (resume it with Coordinator.resume, or choose another run_id)"
        )

    def _acquire(self, run_id: str) -> bool:
        # Under LIVE_LOCK, which guards memory only: never held across SQLite I/O
        # (a worker thread waiting out another process's lock would stall the Trio
        # thread, which takes it to release a claim).
        try:
            return CLAIMS.acquire(self._real, run_id)
        except OSError as exc:
            raise JournalError(
                f"journal {self.path}: cannot claim run {run_id!r}: cannot open "
                f"{self.path}-claims ({describe(exc)})"
            ) from None

    def _live_key(self, run_id: str) -> tuple[str, str]:
        return (self._real, run_id)

    def _release(self, run_id: str) -> None:
        """The run ended in this process (or never started): it may be resumed again."""
        with LIVE_LOCK:
            key = self._live_key(run_id)
            if key in LIVE:
                LIVE.discard(key)
                CLAIMS.release(key[0], run_id)

    def _write(
        self,
        run_id: str,
        rows: Sequence[tuple[Any, ...]],
        handled: int,
        nodes: int,
        end: tuple[float, bool, str | None] | None = None,
        *,
        reopen: bool = False,
    ) -> None:
        """Append ``rows`` (``(seq, kind, node, status, attempts, started_at,
        finished_at, error, data, traceback, ended)``) and update the run's row, in one
        transaction; ``reopen``: a finished run goes on (a re-run), in the same one."""
        with self._db(f"write run {run_id!r}", writes=True) as db, transaction(db):
            if reopen:
                db.execute(
                    "UPDATE runs SET status = 'running', finished_at = NULL, success = NULL,"
                    " error = NULL, owner = ? WHERE run_id = ?",
                    (OWNER, run_id),
                )
            insert_records(db, run_id, rows)
            if end is None:
                cursor = db.execute(
                    "UPDATE runs SET handled = ?, nodes = ? WHERE run_id = ?",
                    (handled, nodes, run_id),
                )
            else:
                finished_at, success, error = end
                cursor = db.execute(
                    "UPDATE runs SET handled = ?, nodes = ?, status = 'finished',"
                    " finished_at = ?, success = ?, error = ? WHERE run_id = ?",
                    (handled, nodes, finished_at, int(success), error, run_id),
                )
            if cursor.rowcount != 1:
                # Records of a run the journal no longer lists would be orphans that
                # a later run of the same id would read as its own.
                raise JournalError(
                    f"journal {self.path}: run {run_id!r} was deleted from the journal"
                    " while it ran (pruned?); its records can no longer be kept"
                )

    def _claim(self, run_id: str, *, reopen: bool = False) -> tuple[StoredRun, bool]:
        """Read run ``run_id`` to resume it and, unless it finished, claim it; in one
        step, so that nobody can finish (or claim) it between the reading and the claim.

        Returns what the journal holds and whether the run is now this process's to
        finish (``False``: it had finished, and nothing changed; a finished run is
        read without a claim, so that someone else holding it for a moment does not
        matter). With ``reopen`` (a re-run) a finished run is claimed too, its row
        left as it is until the re-run's first records are written (`_write` with
        ``reopen``). `KeyError` if there is no such run; `JournalError` if it is
        going on, in this process or another. A caller that got ``True`` must
        `_release` it.
        """
        key = self._live_key(run_id)
        with LIVE_LOCK:
            here = key in LIVE
            claimed = not here and self._acquire(run_id)
            if claimed:
                LIVE.add(key)
        if not claimed:
            with self._db(f"read run {run_id!r}") as db:
                row = db.execute(
                    "SELECT status, owner FROM runs WHERE run_id = ?", (run_id,)
                ).fetchone()
                if row is None:
                    raise KeyError(f"journal {self.path} has no run {run_id!r}")
                if row[0] == "finished" and not reopen:
                    return self._read_run(db, run_id), False
            where = (
                "this process" if here else "another process" + (f" ({row[1]})" if row[1] else "")
            )
            if row[0] == "finished":
                raise JournalError(
                    f"journal {self.path}: run {run_id!r} finished but is held by {where}"
                    " right now; re-run it once it is free"
                )
            raise JournalError(
                f"journal {self.path}: run {run_id!r} is going on in {where};"
                " it can be resumed once it has stopped"
            )
        try:
            with self._db(f"resume run {run_id!r}", writes=True) as db, transaction(db):
                stored = self._read_run(db, run_id)
                finished = stored.info.status == "finished"
                if not finished:
                    db.execute(
                        "UPDATE runs SET status = 'running', finished_at = NULL,"
                        " success = NULL, error = NULL, owner = ? WHERE run_id = ?",
                        (OWNER, run_id),
                    )
        except BaseException:
            self._release(run_id)
            raise
        if finished and not reopen:
            self._release(run_id)
            return stored, False
        return stored, True

    # ---------------------------------------------------------------- the cache

    def _cache_get(self, key: str) -> tuple[str | None] | None:
        """``(outputs JSON,)`` stored under ``key``, or None if there is no entry."""
        with self._db("read the cache") as db:
            row = db.execute("SELECT outputs FROM cache WHERE key = ?", (key,)).fetchone()
        return None if row is None else (row[0],)

    def _cache_put(
        self, key: str, action: str, outputs: str | None, run_id: str, node: str
    ) -> None:
        with self._db("write the cache", writes=True) as db:
            db.execute(
                "INSERT OR REPLACE INTO cache (key, action, outputs, run_id, node, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (key, action, outputs, run_id, node, time.time()),
            )

    def cache_size(self, action: str | None = None) -> int:
        """How many results the cache holds (of ``action`` only, if given)."""
        with self._db("read the cache") as db:
            if action is None:
                row = db.execute("SELECT COUNT(*) FROM cache").fetchone()
            else:
                row = db.execute(
                    "SELECT COUNT(*) FROM cache WHERE action = ?", (action,)
                ).fetchone()
        return int(row[0])

    def clear_cache(self, action: str | None = None) -> int:
        """Forget cached results (of ``action`` only, if given); return how many.

        Use it when an action's code changed in a way its cache key does not capture.
        Runs and their reports are not touched.
        """
        with self._db("clear the cache", writes=True) as db:
            if action is None:
                cursor = db.execute("DELETE FROM cache")
            else:
                cursor = db.execute("DELETE FROM cache WHERE action = ?", (action,))
        return int(cursor.rowcount)

    # ---------------------------------------------------------------- reading

    def runs(self) -> list[RunInfo]:
        """Every run in the journal, oldest first."""
        with self._db("list runs") as db:
            rows = db.execute(
                "SELECT run_id, dag_name, status, started_at, finished_at, success, error,"
                " nodes FROM runs ORDER BY started_at, run_id"
            ).fetchall()
        return [_info(row) for row in rows]

    def mean_durations(self, *, runs: int = 5) -> dict[str, float]:
        """Seconds an attempt of each action took on average, over the successes of the
        journal's ``runs`` latest runs (an action with none is left out).

        What ``Coordinator(order="critical_path")`` estimates a node by when its spec
        gives no ``estimate``. A success's time from first start to end is spread
        evenly over its attempts.
        """
        check_int("runs", runs, 1)
        with self._db("read past durations") as db:
            latest = [
                row[0]
                for row in db.execute(
                    "SELECT run_id FROM runs ORDER BY started_at DESC, run_id LIMIT ?", (runs,)
                )
            ]
            totals: dict[str, list[float]] = {}
            for run_id in latest:
                actions: dict[str, str] = {}
                for (data,) in db.execute(
                    "SELECT data FROM records WHERE run_id = ? AND kind = 'add'", (run_id,)
                ):
                    batch = json.loads(data)
                    specs = batch["specs"] if isinstance(batch, dict) else batch
                    for spec in specs:
                        actions[spec["id"]] = spec["action"]
                for node, attempts, started, finished in db.execute(
                    "SELECT node, attempts, started_at, finished_at FROM records"
                    " WHERE run_id = ? AND kind = 'outcome' AND status = 'succeeded'"
                    " AND started_at IS NOT NULL AND finished_at IS NOT NULL",
                    (run_id,),
                ):
                    action = actions.get(node)
                    if action is None:
                        continue
                    total = totals.setdefault(action, [0.0, 0.0])
                    total[0] += max(finished - started, 0.0) / max(attempts or 1, 1)
                    total[1] += 1
        return {action: seconds / count for action, (seconds, count) in totals.items()}

    def stored_run(self, run_id: str) -> StoredRun:
        """All the journal holds about ``run_id``; `KeyError` if it has no such run."""
        with self._db(f"read run {run_id!r}") as db:
            return self._read_run(db, run_id)

    def _read_run(self, db: sqlite3.Connection, run_id: str) -> StoredRun:
        row = db.execute(
            "SELECT run_id, dag_name, status, started_at, finished_at, success, error,"
            " nodes, options, handled FROM runs WHERE run_id = ?",
            (run_id,),
        ).fetchone()
        if row is None:
            raise KeyError(f"journal {self.path} has no run {run_id!r}")
        records = self._read_records(db, run_id, 0)
        return StoredRun(_info(row[:8]), json.loads(row[8]), records, row[9], self.path)

    def _read_records(
        self, db: sqlite3.Connection, run_id: str, after: int
    ) -> list[tuple[int, str, dict[str, Any]]]:
        # A file of an older schema, opened read-only, was not upgraded.
        traceback = "traceback" if self._version >= 4 else "NULL AS traceback"
        ended = "ended" if self._version >= 5 else "NULL AS ended"
        cursor = db.execute(
            "SELECT seq, kind, node, status, attempts, started_at, finished_at, error,"
            f" data, {traceback}, {ended} FROM records WHERE run_id = ? AND seq > ?"
            " ORDER BY seq",
            (run_id, after),
        )
        names = [column[0] for column in cursor.description]
        return [(r[0], r[1], dict(zip(names, r, strict=True))) for r in cursor]

    def _follow(
        self, run_id: str, after: int
    ) -> tuple[RunInfo, list[tuple[int, str, dict[str, Any]]]]:
        """The run's summary and its records past seq ``after``, read together.

        For following a run that another process is writing (``dagtrio serve``): one
        read transaction, so the summary never says "finished" before the records
        that led there are seen. `KeyError` if there is no such run.
        """
        with self._db(f"read run {run_id!r}") as db:
            db.execute("BEGIN")
            try:
                row = db.execute(
                    "SELECT run_id, dag_name, status, started_at, finished_at, success,"
                    " error, nodes FROM runs WHERE run_id = ?",
                    (run_id,),
                ).fetchone()
                if row is None:
                    raise KeyError(f"journal {self.path} has no run {run_id!r}")
                return _info(row), self._read_records(db, run_id, after)
            finally:
                db.execute("COMMIT")

    def report(self, run_id: str) -> RunReport:
        """The `RunReport` of ``run_id`` as the journal tells it.

        For a run that did not finish (its process died), nodes the journal has no
        outcome for show the status they would resume in (``PENDING`` or ``READY``).
        """
        return stored_report(self.stored_run(run_id))

    def prune(self, *, older_than: float, include_unfinished: bool = False) -> int:
        """Delete runs that finished more than ``older_than`` seconds ago; return how many.

        Unfinished runs (resumable ones) are kept unless ``include_unfinished``, in which
        case those started more than ``older_than`` seconds ago go too, except the ones
        going on, in this process or another (their claim is held). Cached results
        stored more than ``older_than`` seconds ago go as well (a cache entry does not
        depend on the run that stored it). The freed pages are reused by later runs; run
        ``VACUUM`` yourself to shrink the file.
        """
        older_than = check_seconds("older_than", older_than)
        cutoff = time.time() - older_than
        here = self._real
        held: list[str] = []  # unfinished runs claimed for the moment of their deletion
        with self._db("prune runs", writes=True) as db, transaction(db):
            finished = [
                row[0]
                for row in db.execute(
                    "SELECT run_id FROM runs WHERE status = 'finished' AND finished_at < ?",
                    (cutoff,),
                )
            ]
            unfinished = []
            if include_unfinished:
                unfinished = [
                    row[0]
                    for row in db.execute(
                        "SELECT run_id FROM runs WHERE status != 'finished' AND started_at < ?",
                        (cutoff,),
                    )
                ]
            try:
                with LIVE_LOCK:
                    live = {run_id for path, run_id in LIVE if path == here}
                    doomed = [run_id for run_id in finished if run_id not in live]
                    for run_id in unfinished:
                        # A run that another process is running holds its claim, stays.
                        if run_id not in live and self._acquire(run_id):
                            LIVE.add((here, run_id))
                            held.append(run_id)
                doomed += held
                for run_id in doomed:
                    db.execute("DELETE FROM records WHERE run_id = ?", (run_id,))
                    db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
                db.execute("DELETE FROM cache WHERE created_at < ?", (cutoff,))
                # Left by a run deleted while it ran elsewhere, before it noticed.
                db.execute("DELETE FROM records WHERE run_id NOT IN (SELECT run_id FROM runs)")
            finally:
                for run_id in held:
                    self._release(run_id)
        return len(doomed)


def _info(row: Sequence[Any]) -> RunInfo:
    run_id, dag_name, status, started_at, finished_at, success, error, nodes = row
    return RunInfo(
        run_id,
        dag_name,
        status,
        started_at,
        finished_at,
        None if success is None else bool(success),
        error,
        nodes,
    )
