"""See and steer a run in the browser (extra ``web``: ``pip install 'dagtrio[web]'``).

``url = await nursery.start(dagtrio.web.serve, run)`` serves a live page of ``run``
from the application's own nursery; ``async with dagtrio.web.open_view(run) as url:``
does the same for the length of a block. Open the URL (it holds the view's token) to
watch the graph grow, read each node's inputs, outputs and errors, follow a Gantt chart
and the event log, and steer: pause, resume or cancel a branch, retry or complete a
held node, shut the run down. ``serve_journal`` shows another process's run from its
journal, read-only, following it as it grows (``dagtrio serve JOURNAL``).

The same HTTP API is there for scripts: ``GET /api/snapshot``, ``GET /api/events``
(every event, as server-sent events), ``GET /api/updates`` (what the page reads),
``GET /api/nodes/{id}``, ``POST /api/commands`` and ``POST /api/shutdown``; README.rst
says what each takes and answers.

A browser never slows the run: pages are sent a few updates a second of what changed
in the graph, made by one pump that reads the graph itself (`board`), so the run
builds no event for them; a script's event stream is fed by a tap the run never
waits on (`feed`). Either, falling behind, is sent a fresh snapshot instead of what
it missed.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from .._durable.sqlite import SqliteJournal
from .._runtime.run import Run
from .._validate import check_seconds
from .app import View, listening_socket, serve_view
from .feed import Feed, LiveSource
from .journal import JournalSource

__all__ = ["open_view", "serve", "serve_journal"]


def _token(token: str | None) -> str:
    if token is None:
        return secrets.token_urlsafe(24)
    if not isinstance(token, str) or len(token) < 16 or not token.isascii():
        raise ValueError("token must be an ASCII string of at least 16 characters")
    return token


def _address(host: str, port: int) -> None:
    if not isinstance(host, str) or not host:
        raise TypeError(f"host must be a host name or address, got {host!r}")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an int from 0 to 65535, got {port!r}")


async def serve(
    run: Run,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve a live view of ``run`` until cancelled; ``nursery.start`` returns its URL.

    ``host`` is loopback by default: only this machine can connect. ``port=0`` picks a
    free port. The URL carries ``token`` (random unless given): without it the page
    is read-only and every control request is refused. The view stays up after the run
    has ended, showing its final state, until the task is cancelled.
    """
    _address(host, port)
    if not isinstance(run, Run):
        raise TypeError(f"serve() takes a Run (from Coordinator.open_run), got {run!r}")
    view = View(LiveSource(run, Feed()), _token(token))
    sock = listening_socket(host, port)
    await serve_view(view, sock, host, task_status=task_status)


@asynccontextmanager
async def open_view(
    run: Run, *, host: str = "127.0.0.1", port: int = 0, token: str | None = None
) -> AsyncIterator[str]:
    """``async with open_view(run) as url:`` serves a live view of ``run`` in the block.

    Leaving the block tells every open page that the view is closing (the page keeps
    showing what it last saw) and stops the server. See `serve` for the arguments.
    """
    _address(host, port)
    if not isinstance(run, Run):
        raise TypeError(f"open_view() takes a Run (from Coordinator.open_run), got {run!r}")
    view = View(LiveSource(run, Feed()), _token(token))
    sock = listening_socket(host, port)  # here: a port in use is an OSError of its own
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        url: str = await nursery.start(
            lambda task_status: serve_view(view, sock, host, stop=stop, task_status=task_status)
        )
        try:
            yield url
        finally:
            stop.set()


async def serve_journal(
    path: str | os.PathLike[str],
    run_id: str | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    poll: float = 0.5,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve a read-only view of a journaled run until cancelled, following it as it grows.

    For a run in another process (``dagtrio run --journal``, a service): the journal
    is polled every ``poll`` seconds. ``run_id=None`` shows the journal's latest run.
    `KeyError` if there is no such run; `dagtrio.JournalError` if the file is not a
    journal. Nodes are shown from their outcomes: the journal does not record starts.
    """
    _address(host, port)
    poll = check_seconds("poll", poll, finite=True)
    if poll <= 0:
        raise ValueError(f"poll must be more than 0 seconds, got {poll!r}")
    journal = SqliteJournal(path, read_only=True)
    try:
        runs = await trio.to_thread.run_sync(journal.runs)
        if run_id is None:
            if not runs:
                raise KeyError(f"journal {journal.path} has no runs")
            info = max(runs, key=lambda one: one.started_at)
        else:
            found = [one for one in runs if one.run_id == run_id]
            if not found:
                raise KeyError(f"journal {journal.path} has no run {run_id!r}")
            info = found[0]
        source = JournalSource(journal, info, Feed(), float(poll))
        # Nobody can steer a run from its journal: the token only satisfies the page.
        view = View(source, _token(None))
        sock = listening_socket(host, port)
        await serve_view(view, sock, host, task_status=task_status)
    finally:
        journal.close()
