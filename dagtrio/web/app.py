"""The view's HTTP side: Starlette routes served by hypercorn's Trio worker.

The only module that imports the ASGI stack (the ``web`` extra). Why these two:
hypercorn runs natively on Trio (``hypercorn.trio.serve`` starts in a nursery and
reports its bound address through ``task_status``), so the view lives in the
application's own nursery, on the run's own event loop, with no thread or second loop
between the page and the run; Starlette is a small router with no globals, running on
Trio through anyio.

The server owns no state of its own: it reads the run (a `Source`) and sends ordinary
commands. Every request is checked before any route: the ``Host`` must be the one the
view was bound to (a page on another site cannot reach it by DNS rebinding); commands
must carry the view's token, come from the view's own origin, and be JSON.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, MutableMapping
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import trio

try:
    from hypercorn.config import Config
    from hypercorn.trio import serve as hypercorn_serve
    from starlette.applications import Starlette
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import Response
    from starlette.routing import Route
except ImportError as exc:  # pragma: no cover - the extra is installed in CI
    raise ImportError(
        f"dagtrio.web needs the 'web' extra ({exc.name} is missing): pip install 'dagtrio[web]'"
    ) from exc

from .feed import Rejected, Source, snapshot_of
from .wire import BadRequest, dump, parse_command, parse_grace

__all__ = ["View", "listening_socket", "serve_view"]

_log = logging.getLogger("dagtrio.web")

STATIC = Path(__file__).parent / "static"
#: the page's files, by URL name; nothing else is served from disk
_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
#: largest command body accepted (a CompleteNode's outputs included)
MAX_BODY = 1 << 20
#: a server-sent-events comment this often keeps proxies from closing a quiet stream
#: and lets a stream to a vanished browser notice it is gone
PING = 15.0
#: a stream writes at most this often: events in between go out in one write (five
#: updates a second are live to a person, and each write costs the page a frame)
PACE = 0.2
#: events in one write at most
CHUNK = 4096
#: event streams open at once at most: each holds a snapshot on its way (megabytes for
#: a big graph) while its browser reads it, so a thousand stalled ones would hold
#: gigabytes (a stalled one still holds one snapshot: 128 of them, half a gigabyte
#: at 20 000 nodes). The next one is refused (503) until one closes.
MAX_STREAMS = 128
#: how long a snapshot's JSON is reused for requests at the same position
SNAPSHOT_REUSE = 1.0

_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "x-frame-options": "DENY",
}

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class View:
    """One served view: its source, its token, and the hosts it answers to."""

    def __init__(self, source: Source, token: str) -> None:
        self.source = source
        self.token = token
        self.hosts: frozenset[str] = frozenset()
        self.any_host = False
        self.url = ""
        self.closing = False
        self.streams = 0
        self._snapshots: dict[bool, tuple[Any, float, int, str]] = {}
        self._page_snapshots: dict[bool, tuple[Any, float, int, str]] = {}

    def snapshot(self, control: bool) -> tuple[int, str]:
        """A snapshot's position and JSON, made at most once per position and second:
        a hundred browsers that connect at once cost one snapshot, not a hundred."""
        key = self.source.version()
        now = time.monotonic()
        kept = self._snapshots.get(control)
        if kept is not None and kept[0] == key and now - kept[1] < SNAPSHOT_REUSE:
            return kept[2], kept[3]
        data = self.source.snapshot(control)
        text = dump(data)
        self._snapshots[control] = (key, now, data["position"], text)
        return data["position"], text

    def page_snapshot(self, control: bool) -> tuple[int, str]:
        """A snapshot for a page, taken right after a look: its position is that
        look's update, and the next update applies on top. Reused for a second while
        no look has happened since (a hundred pages opening at once cost one)."""
        board = self.source.board
        now = time.monotonic()
        kept = self._page_snapshots.get(control)
        fresh = kept is not None and now - kept[1] < SNAPSHOT_REUSE
        if fresh and kept is not None and kept[0] == (board.base, board.seq):
            return kept[2], kept[3]  # what the graph was at the last look
        board.settle()
        key = (board.base, board.seq)
        source = self.source
        text = dump(snapshot_of(source.graph, board.seq, source.run_info(control)))
        self._page_snapshots[control] = (key, now, board.seq, text)
        return board.seq, text

    def bound(self, url: str, host: str) -> None:
        """The server listens at ``url`` (its real port), asked for as ``host``."""
        parts = urlsplit(url)
        port = parts.port
        names = {parts.hostname or host, host}
        if _is_loopback(host):
            names |= {"127.0.0.1", "localhost", "::1"}
        hosts = set()
        for name in names:
            shown = f"[{name}]" if ":" in name else name
            hosts.add(f"{shown}:{port}")
            if port == 80:
                hosts.add(shown)
        self.hosts = frozenset(hosts)
        # Bound to every interface, the address a browser uses cannot be known ahead:
        # any IP address is let in, and this machine's names, but no other name (a
        # page reaching the view through DNS rebinding sends its own domain's).
        self.any_host = host in ("0.0.0.0", "::", "")
        self.port = port
        self.names = {"localhost", socket.gethostname().lower(), socket.getfqdn().lower()}
        self.url = url

    def host_ok(self, host: str | None) -> bool:
        if host is None:
            return False
        host = host.lower()
        if host in self.hosts:
            return True
        if not self.any_host:
            return False
        name, _, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
        if not name or (port and port != str(self.port)):
            return False
        name = name.strip("[]")
        if name in self.names:
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True

    def token_in(self, request: Request) -> str | None:
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, value = header.partition(" ")
            if scheme.lower() == "bearer":
                return value.strip()
            return None
        return request.query_params.get("token")

    def authorised(self, request: Request) -> bool:
        given = self.token_in(request)
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _json(data: Any, status: int = 200) -> Response:
    return Response(dump(data), status, media_type="application/json")


def _error(status: int, reason: str) -> Response:
    return _json({"error": reason}, status)


# ------------------------------------------------------------------ reading


async def _page(view: View, request: Request) -> Response:
    return _file("index.html")


async def _static(view: View, request: Request) -> Response:
    return _file(request.path_params["name"])


def _file(name: str) -> Response:
    kind = _FILES.get(name)
    if kind is None:
        return _error(404, f"no such file: {name}")
    return Response((STATIC / name).read_bytes(), media_type=kind)


async def _snapshot(view: View, request: Request) -> Response:
    _, text = view.snapshot(view.authorised(request))
    return Response(text, media_type="application/json")


async def _node(view: View, request: Request) -> Response:
    node_id = request.path_params["node_id"]
    try:
        return _json(view.source.detail(node_id))
    except KeyError:
        return _error(404, f"node {node_id!r} is not in the graph")


class _Stream:
    """A stream of server-sent events: a raw ASGI endpoint, so that its loop is plain
    Trio code. At most `MAX_STREAMS` at once; each ends when its browser leaves."""

    def __init__(self, view: View) -> None:
        self.view = view

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        view = self.view
        if view.streams >= MAX_STREAMS:
            refusal = _error(503, f"this view has {MAX_STREAMS} pages open already: close one")
            await refusal(scope, receive, send)
            return
        view.streams += 1
        try:
            await self._serve(scope, receive, send)
        finally:
            view.streams -= 1

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        control = self.view.authorised(Request(scope))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"x-accel-buffering", b"no"),
                ],
            }
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_until_disconnect, receive, nursery.cancel_scope)
            await self._stream(send, control)
            nursery.cancel_scope.cancel()
        with trio.CancelScope(shield=True):
            # Ends the response; after a disconnect hypercorn ignores it.
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _stream(self, send: Send, control: bool) -> None:
        raise NotImplementedError

    async def _end(self, send: Send, control: bool) -> None:
        end = {"run": self.view.source.run_info(control), "closing": self.view.closing}
        await _write(send, f"event: end\ndata: {dump(end)}\n\n")


class _Events(_Stream):
    """``GET /api/events``: every event of the run, for a person's own scripts.

    A snapshot first, then the feed from the snapshot's position on, a fresh snapshot
    whenever the feed has moved past this stream's cursor, and ``end`` when the run is
    over. The run builds its every event only while such a stream is open.
    """

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        feed = self.view.source.feed
        feed.join()  # before the snapshot: every event after it is kept
        try:
            await super()._serve(scope, receive, send)
        finally:
            feed.leave()

    async def _stream(self, send: Send, control: bool) -> None:
        feed = self.view.source.feed
        cursor, text = self.view.snapshot(control)
        await _write(send, f"event: snapshot\ndata: {text}\n\n")
        while True:
            with trio.move_on_after(PING) as waited:
                await feed.wait(cursor)
            if waited.cancelled_caught:
                await _write(send, ": ping\n\n")
                continue
            entries = feed.take(cursor, CHUNK)
            if entries is None:
                cursor, text = self.view.snapshot(control)
                await _write(send, f"event: snapshot\ndata: {text}\n\n")
            elif entries:
                cursor = entries[-1][0] + 1
                await _write(send, "".join(f"id: {p}\ndata: {text}\n\n" for p, text in entries))
            elif feed.closed:
                await self._end(send, control)
                return
            if not feed.closed:
                await trio.sleep(PACE)


class _Updates(_Stream):
    """``GET /api/updates``: what the page reads (see `board`). A snapshot, then the
    board's updates (``event: update``), a fresh snapshot if this stream fell behind,
    and ``end`` when the run is over."""

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        board = self.view.source.board
        board.join()  # before the snapshot: the next update says what changed since
        try:
            await super()._serve(scope, receive, send)
        finally:
            board.leave()

    async def _stream(self, send: Send, control: bool) -> None:
        board = self.view.source.board
        cursor, text = self.view.page_snapshot(control)
        await _write(send, f"event: snapshot\ndata: {text}\n\n")
        while True:
            with trio.move_on_after(PING) as waited:
                await board.wait(cursor)
            if waited.cancelled_caught:
                await _write(send, ": ping\n\n")
                continue
            updates = board.take(cursor)
            if updates is None:
                cursor, text = self.view.page_snapshot(control)
                await _write(send, f"event: snapshot\ndata: {text}\n\n")
            elif updates:
                cursor += len(updates)
                await _write(send, "".join(updates))
            elif board.closed:
                await self._end(send, control)
                return


async def _write(send: Send, text: str) -> None:
    await send({"type": "http.response.body", "body": text.encode(), "more_body": True})


async def _until_disconnect(receive: Receive, scope: trio.CancelScope) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return


# ------------------------------------------------------------------ controlling


async def _checked_body(view: View, request: Request) -> bytes | Response:
    """The body of a control request, or the response refusing it."""
    if view.source.read_only:
        return _error(403, "this view is read-only: it follows a run from its journal")
    if not view.authorised(request):
        return _error(403, "this view is read-only without its token (see the printed URL)")
    own = f"http://{request.headers.get('host', '')}"
    for origin in request.headers.getlist("origin"):
        if origin != own:
            return _error(403, f"cross-site request refused (origin {origin})")
    if request.headers.get("sec-fetch-site") == "cross-site":
        return _error(403, "cross-site request refused")
    kind = request.headers.get("content-type", "")
    if kind.split(";")[0].strip().lower() != "application/json":
        return _error(415, "send the command as JSON (Content-Type: application/json)")
    body = bytearray()
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size <= MAX_BODY:
                body += chunk
            elif size > 16 * MAX_BODY:
                break  # read on only so far: the client hears the answer either way
    except ClientDisconnect:
        return _error(400, "the client left before its request was read")
    if size > MAX_BODY:
        # Read to the end first: a client still sending would not see an early answer.
        return _error(413, f"the body is larger than {MAX_BODY} bytes")
    return bytes(body)


async def _control(
    view: View,
    request: Request,
    parse: Callable[[bytes], Any],
    apply: Callable[[Any], Awaitable[None]],
    answer: dict[str, bool],
) -> Response:
    """A control request: checked, parsed (400), applied (409 if the run refuses)."""
    body = await _checked_body(view, request)
    if isinstance(body, Response):
        return body
    try:
        what = parse(body)
    except BadRequest as exc:
        return _error(400, str(exc))
    try:
        await apply(what)
    except Rejected as exc:
        return _error(409, str(exc))
    return _json(answer)


async def _command(view: View, request: Request) -> Response:
    return await _control(view, request, parse_command, view.source.submit, {"applied": True})


async def _shutdown(view: View, request: Request) -> Response:
    return await _control(view, request, parse_grace, view.source.shutdown, {"shutting_down": True})


# ------------------------------------------------------------------ the app


class _Guard:
    """Before every route: the Host check; after: the security headers."""

    def __init__(self, app: Any, view: View) -> None:
        self.app = app
        self.view = view
        self.headers = [(k.encode(), v.encode()) for k, v in _HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)  # lifespan
            return
        host = None
        for key, value in scope["headers"]:
            if key == b"host":
                host = value.decode("latin-1")
                break
        if not self.view.host_ok(host):
            response = _error(
                403, f"unexpected Host {host!r}: this view answers to {self.view.url}"
            )
            await response(scope, receive, self._with_headers(send))
            return
        await self.app(scope, receive, self._with_headers(send))

    def _with_headers(self, send: Send) -> Send:
        async def sender(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *self.headers]
            await send(message)

        return sender


def app_for(view: View) -> Any:
    """The ASGI application of ``view``."""

    def route(path: str, handler: Any, methods: list[str]) -> Route:
        return Route(path, partial(handler, view), methods=methods)

    app = Starlette(
        routes=[
            route("/", _page, ["GET"]),
            route("/static/{name}", _static, ["GET"]),
            route("/api/snapshot", _snapshot, ["GET"]),
            route("/api/nodes/{node_id:path}", _node, ["GET"]),
            Route("/api/events", _Events(view), methods=["GET"]),
            Route("/api/updates", _Updates(view), methods=["GET"]),
            route("/api/commands", _command, ["POST"]),
            route("/api/shutdown", _shutdown, ["POST"]),
        ]
    )
    return _Guard(app, view)


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, or an `OSError` that says which address.

    Bound here rather than by hypercorn so that a port in use is a plain error raised
    by `serve` itself (not from inside the server's nurseries), before anything starts.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise OSError(f"dagtrio.web cannot listen on {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise OSError(
            exc.errno, f"dagtrio.web cannot listen on {host}:{port}: {exc.strerror}"
        ) from None
    return sock


def _cut_connections(address: Any, wildcard: bool) -> int:
    """Shut down every connection accepted on ``address`` that is still open.

    hypercorn writes to a connection in a shielded call with no timeout: a browser
    that stopped reading (a stalled laptop, a hostile local process) would keep the
    view, and the application's nursery, from ever closing. Once the view's grace has
    passed, its accepted sockets are shut down (found among the process's open files,
    as hypercorn keeps them to itself), which ends those writes with an error. Where
    the open files cannot be listed, this does nothing.
    """
    folder = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
    try:
        descriptors = [int(name) for name in os.listdir(folder)]
    except (OSError, ValueError):
        return 0
    cut = 0
    for descriptor in descriptors:
        try:
            duplicate = os.dup(descriptor)
        except OSError:
            continue  # closed meanwhile
        try:
            sock = socket.socket(fileno=duplicate)
        except OSError:
            os.close(duplicate)  # not a socket
            continue
        try:
            local = sock.getsockname()
            if (
                sock.type != socket.SOCK_STREAM
                or not isinstance(local, tuple)
                or local[1] != address[1]
                or (not wildcard and local[0] != address[0])
            ):
                continue
            sock.getpeername()  # the listening socket has no peer: left alone
            sock.shutdown(socket.SHUT_RDWR)
            cut += 1
        except OSError:
            pass
        finally:
            sock.close()  # the duplicate only
    return cut


async def serve_view(
    view: View,
    sock: socket.socket,
    host: str,
    *,
    stop: trio.Event | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``view`` on ``sock`` (from `listening_socket`, asked for as ``host``) until
    cancelled or ``stop`` is set; report its URL once listening."""
    address = sock.getsockname()
    config = Config()
    # hypercorn takes the socket over (and closes it) by its file descriptor.
    config.bind = [f"fd://{sock.detach()}"]
    config.errorlog = _log
    config.accesslog = None
    config.graceful_timeout = 1.0
    config.include_server_header = False
    wildcard = host in ("0.0.0.0", "::", "")
    following = trio.CancelScope()
    pumping = trio.CancelScope()
    watching = trio.CancelScope()

    async def cut_stalled_connections() -> None:
        with watching:
            try:
                if stop is None:
                    await trio.sleep_forever()
                else:
                    await stop.wait()
                    await trio.sleep(config.graceful_timeout + 0.5)
            finally:
                # Cancelled (serve's task) or past the grace (open_view's end):
                # whatever connection still blocks a write is cut.
                _cut_connections(address, wildcard)

    async def follow(*, task_status: trio.TaskStatus[None]) -> None:
        with following:
            await view.source.follow(task_status=task_status)

    async def pump() -> None:
        with pumping:
            await view.source.board.pump()

    async def listen(*, task_status: trio.TaskStatus[list[str]]) -> None:
        trigger = stop.wait if stop is not None else None
        try:
            await hypercorn_serve(
                app_for(view), config, shutdown_trigger=trigger, task_status=task_status
            )
        finally:
            following.cancel()  # the server is gone: nobody to keep the feed for
            pumping.cancel()
            watching.cancel()

    async with trio.open_nursery() as nursery:
        await nursery.start(follow)
        nursery.start_soon(pump)
        nursery.start_soon(cut_stalled_connections)
        binds = await nursery.start(listen)
        base = binds[0]
        if wildcard:
            # Every interface: the printed URL is this machine's own way in.
            local = "[::1]" if host == "::" else "127.0.0.1"
            base = f"http://{local}:{address[1]}"
        view.bound(base, host)
        task_status.started(f"{base}/?token={view.token}")
        if stop is not None:
            await stop.wait()
            # Every stream sends its end and returns within hypercorn's graceful time.
            view.closing = True
            view.source.board.close()
            view.source.feed.close()
