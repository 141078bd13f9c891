"""What the view sends and accepts, as JSON: snapshots, events, node details, commands.

Everything here is plain Python (no ASGI stack), so it is tested on its own. Events go
out in the converter's form (what `dagtrio.dumps` writes), with the moment the view saw
them added as ``at``. The run's own values (inputs, outputs, payloads) may be anything
Python holds; what JSON cannot say is sent as its ``repr`` rather than failing the
stream, because a view must never stop showing a run over one odd output.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from json import encoder as _json_encoder
from json.encoder import encode_basestring_ascii as _quote
from typing import Any

import attrs
import cattrs

from .._model import commands as cmd
from .._model import events as ev
from .._model.convert import converter, to_data
from .._model.report import NodeRecord
from .._model.spec import NodeSpec

__all__ = [
    "CONTROLS",
    "ENDINGS",
    "BadRequest",
    "dump",
    "encode_event",
    "event_times",
    "node_detail",
    "node_row",
    "parse_command",
    "parse_grace",
]

#: the commands a view may send: steering a run, never growing or rewriting it
CONTROLS: dict[str, type[cmd.ExecutorCommand]] = {
    kind.__name__: kind
    for kind in (
        cmd.PauseBranch,
        cmd.ResumeBranch,
        cmd.CancelBranch,
        cmd.RetryNode,
        cmd.CompleteNode,
    )
}


def _refuse(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not a JSON value")


# The C encoder, made once: json.dumps builds a new one per call, which costs more than
# encoding a small event. The markers dict keeps its check for circular values.
_make: Any = getattr(_json_encoder, "c_make_encoder", None)
_c_encoder = _make({}, _refuse, _quote, None, ":", ",", False, False, False) if _make else None


def _encode(data: Any) -> str:
    if _c_encoder is None:  # pragma: no cover - CPython has the C encoder
        return json.dumps(data, allow_nan=False, separators=(",", ":"))
    return "".join(_c_encoder(data, 0))


class BadRequest(ValueError):
    """A request body the view refuses (400), with the reason to show."""


#: how deep `_safe` follows nested values before it says what is below in one line
_DEPTH = 100


def _repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:  # a repr that raises must not take the view down with it
        return f"<{type(value).__name__} that cannot be shown>"


def _safe(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON can hold it: odd leaves become their ``repr``, keys strings."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        try:
            return int(str(value))  # a bool's subclasses and ints too long to write
        except ValueError:
            return f"<int of {value.bit_length()} bits>"
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if depth >= _DEPTH:
        return f"<{type(value).__name__} nested more than {_DEPTH} deep>"
    if isinstance(value, Mapping):
        return {
            k if isinstance(k, str) else _repr(k): _safe(v, depth + 1) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_safe(item, depth + 1) for item in value]
    return _repr(value)


def dump(data: Any) -> str:
    """Compact JSON of ``data``; what JSON cannot hold is sent as its ``repr``."""
    try:
        return _encode(data)
    except (TypeError, ValueError, RecursionError):
        return _encode(_safe(data))


# ------------------------------------------------------------------ events

#: the events that end a node: they carry ``started_at`` when it is known
ENDINGS = frozenset({ev.NodeCompleted, ev.NodeFailed, ev.NodeCancelled, ev.NodeSkipped})


def _ref(ref: Any) -> str:
    return f'{{"dag":{_quote(ref.dag)},"node":{_quote(ref.node)}}}'


def _value(value: Any) -> str:
    return "null" if value is None else _encode(value)


def _completed(event: Any, at: float, started_at: float | None, *, outputs: bool) -> str:
    """A `NodeCompleted` written directly, with or without its outputs."""
    outcome = event.outcome
    shown = f'"outputs":{_value(outcome.outputs)},' if outputs else ""
    success = "true" if outcome.success is True else _encode(outcome.success)
    start = "" if started_at is None else f',"started_at":{started_at:.3f}'
    return (
        f'{{"node":{_ref(event.node)},"outcome":{{{shown}"success":{success},'
        f'"metadata":{_value(outcome.metadata)}}},"type":"NodeCompleted","at":{at:.3f}{start}}}'
    )


def event_times(
    nodes: Mapping[str, Any] | None,
    event: ev.ExecutionEvent,
    given: tuple[float, float | None] | None,
) -> tuple[float | None, float | None, bool | None]:
    """When ``event`` happened (``at``), when the node it ends had started, and whether
    a failed node is held: ``given`` (a journal record's times) or read from its node in
    ``nodes``, by the run's own clock. ``at`` is None when neither says."""
    at, started_at = given if given is not None else (None, None)
    held = None
    kind = type(event)
    if nodes is not None and (kind is ev.NodeStarted or kind in ENDINGS):
        node = nodes.get(event.node.node)  # type: ignore[attr-defined]
        if node is not None:
            if kind is ev.NodeStarted:
                at = at or node.started_at
            else:
                at = at or node.finished_at
                started_at = started_at or node.started_at
                if kind is ev.NodeFailed:
                    held = node.on_hold
    return at, started_at, held


def encode_event(
    event: ev.ExecutionEvent,
    at: float,
    started_at: float | None = None,
    held: bool | None = None,
) -> str:
    """One event as the view sends it: the converter's form plus ``at`` (and, for a
    node's end when known, ``started_at``; for a failure, whether the node is ``held``).
    Times are to the millisecond: a view needs no more, and fewer digits cost less.

    The events every node sends (added, started, completed) are written without the
    converter when their values are plain JSON: a run emits tens of thousands a
    second, and the view encodes them on the run's own core. Either way the text means
    the same (tests/test_web.py holds them to it).
    """
    kind = type(event)
    try:
        if kind is ev.NodeStarted:
            return (
                f'{{"node":{_ref(event.node)},"attempt":{event.attempt:d},'  # type: ignore[attr-defined]
                f'"type":"NodeStarted","at":{at:.3f}}}'
            )
        if kind is ev.NodeCompleted:
            return _completed(event, at, started_at, outputs=True)
        if kind is ev.NodeAdded:
            spec = event.spec  # type: ignore[attr-defined]
            data = {
                "node": {"dag": event.node.dag, "node": event.node.node},  # type: ignore[attr-defined]
                "spec": {
                    "action": spec.action,
                    "id": spec.id,
                    "deps": spec.deps,
                    "inputs": spec.inputs,
                    "timeout": spec.timeout,
                    "try_count": spec.try_count,
                    "retry_delay": spec.retry_delay,
                    "branch": spec.branch,
                    "cache": spec.cache,
                    "executor": spec.executor,
                    "max_retry_delay": spec.max_retry_delay,
                    "retry_jitter": spec.retry_jitter,
                    "defer": spec.defer,
                    "estimate": spec.estimate,
                    "priority": spec.priority,
                    "uses": spec.uses,
                },
                "branch": event.branch,  # type: ignore[attr-defined]
                "type": "NodeAdded",
                "at": round(at, 3),
            }
            return _encode(data)
    except (TypeError, ValueError, RecursionError):
        pass  # a value JSON does not hold as it is: the converter's way below
    general: dict[str, Any] = to_data(event)
    general["at"] = round(at, 3)
    if started_at is not None and kind in ENDINGS:
        general["started_at"] = round(started_at, 3)
    if held is not None and kind is ev.NodeFailed:
        general["held"] = held
    return dump(general)


# ------------------------------------------------------------------ nodes


def node_row(record: NodeRecord) -> dict[str, Any]:
    """A node in a snapshot: where it stands, without its inputs and outputs (those
    can be large; ``/api/nodes/{id}`` has them)."""
    return {
        "id": record.id,
        "action": record.action,
        "branch": record.branch,
        "deps": record.deps,
        "status": record.status.value,
        "attempts": record.attempts,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "error": record.error,
        "held": record.held,
        "supplied": record.supplied,
        "cached": record.cached,
        "ended": record.ended,
    }


def node_detail(record: NodeRecord, spec: NodeSpec) -> dict[str, Any]:
    """Everything about one node: its record (outputs, traceback…) and its spec (inputs)."""
    return {"record": converter.unstructure(record), "spec": converter.unstructure(spec)}


# ------------------------------------------------------------------ requests


def _json_body(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("the body is nested too deep") from None
    except ValueError as exc:  # an integer of more digits than Python reads
        raise BadRequest(f"the body is not JSON this view reads: {exc}") from None


def parse_command(body: bytes) -> cmd.ExecutorCommand:
    """The command in a request body (the converter's JSON form), or `BadRequest`.

    Only the steering commands in `CONTROLS` are accepted: a view pauses, resumes and
    cancels branches and decides held nodes; it does not add nodes or emit events.
    """
    data = _json_body(body)
    if not isinstance(data, dict):
        raise BadRequest(f"expected a JSON object with a 'type', got {type(data).__name__}")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise BadRequest("the command has no 'type' (one of: " + ", ".join(CONTROLS) + ")")
    cls = CONTROLS.get(kind)
    if cls is None:
        raise BadRequest(f"{kind!r} cannot be sent from a view; it takes " + ", ".join(CONTROLS))
    known = {field.name for field in attrs.fields(cls)} | {"type"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise BadRequest(f"{kind} has no field {', '.join(map(repr, unknown))}")
    _check_fields(kind, data)
    try:
        return converter.structure(data, cmd.ExecutorCommand)
    except cattrs.BaseValidationError as exc:
        raise BadRequest(f"{kind}: " + "; ".join(cattrs.transform_error(exc))) from None
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"{kind}: {exc}") from None


def _check_fields(kind: str, data: Mapping[str, Any]) -> None:
    # Before the converter: it would turn 3 into "3" for a str field, and a request
    # must say what it means.
    for name in ("branch", "node_id"):
        if name in data and (not isinstance(data[name], str) or not data[name]):
            raise BadRequest(f"{kind}.{name}: expected a non-empty string")
    for name in ("reason", "dag_name"):
        if data.get(name) is not None and not isinstance(data[name], str):
            raise BadRequest(f"{kind}.{name}: expected a string or null")
    if data.get("inputs") is not None and not isinstance(data["inputs"], dict):
        raise BadRequest(f"{kind}.inputs: expected an object or null")


def parse_grace(body: bytes) -> float | None:
    """The grace of a shutdown request (``{"grace": seconds | null}``), or `BadRequest`."""
    data = _json_body(body) if body.strip() else {}
    if not isinstance(data, dict) or set(data) - {"grace"}:
        raise BadRequest('expected {"grace": seconds or null}')
    grace = data.get("grace")
    if grace is None:
        return None
    if isinstance(grace, bool) or not isinstance(grace, int | float):
        raise BadRequest(f"grace: expected a number of seconds or null, got {grace!r}")
    try:
        seconds = float(grace)
    except OverflowError:
        raise BadRequest("grace: expected a finite number >= 0, got a huge one") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise BadRequest(f"grace: expected a finite number >= 0, got {seconds!r}")
    return seconds
