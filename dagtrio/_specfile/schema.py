"""The DAG file schema (DESIGN.md §6), structured with cattrs through strict hooks.

A file is a mapping: ``dag`` (the name), ``actions`` (``module`` or ``module:attribute``
naming an `ActionRegistry`), ``hooks`` (``module:attribute`` each), ``options``
(coordinator options), ``defaults`` (spec fields for every node) and ``nodes`` (a list
of `NodeSpec` fields, named exactly as in Python).

Nothing is coerced: cattrs' own hooks would make ``"3"`` the integer 3 and the string
``"fetch"`` the deps ``('f', 'e', 't', 'c', 'h')``, so every scalar type gets a hook
that takes its own type only. Every problem of a file is gathered, each with its path
(``nodes[1].deps``), before one `DagFileError` reports them all with their lines.

Each node is structured by a converter without detailed validation first (the fast
path: valid files are the common case) and, only when that fails, again by one with
it, so that every problem of the node is found, not only the first.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs
import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    ForbiddenExtraKeysError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, override

from .._errors import DagtrioError, InvalidSpecError
from .._model.graph import dag_order, gc_paused
from .._model.spec import NodeSpec
from . import load
from .load import Document, FileProblem, Path_

__all__ = ["DagFile", "DagFileError", "FileOptions", "Problem", "load_file", "render_path"]

#: Spec fields a node may leave to ``defaults``; an id is each node's own.
_NODE_FIELDS = tuple(field.name for field in attrs.fields(NodeSpec))

#: How many problems a `DagFileError` message lists; the rest are counted.
MAX_SHOWN = 50


@attrs.frozen
class Problem:
    """One thing wrong with a DAG file: where (a path in the document) and what."""

    path: Path_
    message: str


class DagFileError(DagtrioError, ValueError):
    """A DAG file that cannot be used: every problem found, each with its line.

    ``problems`` holds them in file order as ``(line, path, message)``; the message
    of the exception is one line per problem, ``file:line: path: message``.
    """

    def __init__(self, file: Path, problems: Sequence[tuple[int | None, str, str]]) -> None:
        self.file = file
        self.problems = list(problems)
        shown = [_line(file, *problem) for problem in self.problems[:MAX_SHOWN]]
        if len(self.problems) > MAX_SHOWN:
            shown.append(f"{file}: ... and {len(self.problems) - MAX_SHOWN} more problems")
        super().__init__("\n".join(shown))


def _line(file: Path, line: int | None, path: str, message: str) -> str:
    where = f"{file}:{line}" if line is not None else str(file)
    return f"{where}: {path}: {message}" if path else f"{where}: {message}"


def render_path(path: Path_) -> str:
    """``("nodes", 1, "deps")`` as ``nodes[1].deps``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


@attrs.frozen
class FileOptions:
    """The coordinator options a DAG file may set (the command line may override
    ``max_parallel``); journal and cache are the command line's to choose."""

    max_parallel: int = 64
    event_capacity: int = 100
    command_capacity: int = 100
    on_failure: Literal["skip", "fail_fast", "hold"] = "skip"
    hook_errors: Literal["fail", "isolate"] = "fail"
    order: Literal["fifo", "critical_path"] = "fifo"
    limits: dict[str, int] = attrs.field(factory=dict)


@attrs.frozen
class DagFile:
    """A DAG file that passed every check: its specs, in file order, each with an id.

    Nodes without an ``id`` get ``{action}-{n}`` as the coordinator would give them,
    so what ``dagtrio graph`` exports names the nodes a run of the file reports.
    """

    document: Document
    dag: str
    actions: str
    hooks: tuple[str, ...]
    options: FileOptions
    specs: tuple[NodeSpec, ...]
    #: each node's index in ``nodes``, for pointing at its line later
    index: Mapping[str, int]
    #: ``(dep, node)`` pairs by position in ``specs``: the graph, for its analysis
    edges: Sequence[tuple[int, int]] = ()
    #: positions in ``specs``, deps first
    order: Sequence[int] = ()

    @property
    def path(self) -> Path:
        """The file."""
        return self.document.path

    def check_actions(self, registry: Any) -> None:
        """`DagFileError` naming every node whose action ``registry`` does not hold."""
        known = set(registry)
        missing = {spec.action for spec in self.specs if spec.action not in known}
        if missing:
            listed = ", ".join(sorted(known)) or "none"
            raise self.error(
                [
                    Problem(
                        ("nodes", self.index[str(spec.id)], "action"),
                        f"no action {spec.action!r} in {self.actions} (registered: {listed})",
                    )
                    for spec in self.specs
                    if spec.action in missing
                ]
            )

    def error(self, problems: Sequence[Problem]) -> DagFileError:
        """A `DagFileError` for problems found after loading (an unknown action)."""
        return _error(self.document, problems)


@attrs.frozen
class _Top:
    """The document's top level, the nodes left as data (they are checked one by one,
    with the defaults merged in)."""

    actions: str
    nodes: list[Any]
    dag: str = "dag"
    hooks: list[str] = attrs.Factory(list)
    options: FileOptions = FileOptions()
    defaults: dict[str, Any] = attrs.Factory(dict)


# --- what a value is, in the file's own words ---------------------------------------------


def describe(value: Any) -> str:
    """``value`` as a reader of the file sees it: "the string '3'", "true", "a list"."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {shown!r}"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


class _Mismatch(TypeError):
    """A value of the wrong type; the message says what was expected and what came."""


def _quoted_hint(value: Any, wanted: str) -> str:
    # "3" for a number is nearly always a quoted number; say how to write it.
    if isinstance(value, str) and wanted.startswith(("an integer", "a number")):
        try:
            float(value)
        except ValueError:
            return ""
        return f" (write {value} without quotes)"
    if (
        isinstance(value, str)
        and wanted.startswith("true or false")
        and value.lower() in _YAML11_BOOLS
    ):
        return " (YAML 1.2: only true and false are booleans)"
    return ""


_YAML11_BOOLS = {"yes", "no", "on", "off", "y", "n", "true", "false"}


def _expect(wanted: str, value: Any) -> _Mismatch:
    return _Mismatch(f"expected {wanted}, got {describe(value)}{_quoted_hint(value, wanted)}")


def _str(value: Any, _: Any) -> str:
    if type(value) is not str:
        raise _expect("a string", value)
    return value


def _int(value: Any, _: Any) -> int:
    if type(value) is not int:
        raise _expect("an integer", value)
    return value


def _float(value: Any, _: Any) -> float:
    kind = type(value)
    if kind is float:
        return float(value)
    if kind is int:
        return float(value)
    raise _expect("a number", value)


def _bool(value: Any, _: Any) -> bool:
    if type(value) is not bool:
        raise _expect("true or false", value)
    return value


def _optional(inner: Callable[[Any, Any], Any], wanted: str) -> Callable[[Any, Any], Any]:
    def structure(value: Any, _: Any) -> Any:
        if value is None:
            return None
        try:
            return inner(value, None)
        except _Mismatch:
            raise _expect(f"{wanted} or null", value) from None

    return structure


def _deps(value: Any, _: Any) -> tuple[str, ...]:
    if type(value) is str:
        raise _Mismatch(
            f"expected a list of node ids, got the string {value!r} (for one dep, write [{value}])"
        )
    if type(value) is not list:
        raise _expect("a list of node ids", value)
    for dep in value:
        if type(dep) is not str:
            raise _Mismatch(f"expected a list of node ids, one of them is {describe(dep)}")
    return tuple(value)


def _flow(value: str) -> str:
    """``value`` as an item of a YAML flow list: quoted if it holds what would end it."""
    plain = value and not any(c in value for c in ":,[]{}#&*!|>'\"%@`") and value.strip() == value
    return value if plain else json.dumps(value)


def _inputs(value: Any, _: Any) -> dict[str, Any]:
    if type(value) is not dict:
        raise _expect("a mapping of input names to values", value)
    for key in value:
        if type(key) is not str:
            raise _Mismatch(f"input names must be strings, one of them is {describe(key)}")
    return value


def _amounts(value: Any, wanted: str, each: str) -> dict[str, int]:
    """A mapping of resource names to integers (``uses``, ``limits``)."""
    if type(value) is not dict:
        raise _expect(wanted, value)
    for key, amount in value.items():
        if type(key) is not str:
            raise _Mismatch(f"resource names must be strings, one of them is {describe(key)}")
        if type(amount) is not int:
            raise _Mismatch(f"the {each} of {key!r} must be an integer, got {describe(amount)}")
    return value


def _uses(value: Any, _: Any) -> dict[str, int] | None:
    if value is None:
        return None
    return _amounts(value, "a mapping of resource names to amounts or null", "amount")


def _limits(value: Any, _: Any) -> dict[str, int]:
    return _amounts(value, "a mapping of resource names to amounts", "limit")


def _string_list(value: Any, _: Any) -> list[str]:
    if type(value) is str:
        raise _Mismatch(
            f"expected a list, got the string {value!r} (for one, write [{_flow(value)}])"
        )
    if type(value) is not list:
        raise _expect("a list of strings", value)
    for item in value:
        if type(item) is not str:
            raise _Mismatch(f"expected a list of strings, one of them is {describe(item)}")
    return value


def _literal(*choices: str) -> Callable[[Any, Any], str]:
    def structure(value: Any, _: Any) -> str:
        if value not in choices or type(value) is not str:
            listed = ", ".join(repr(choice) for choice in choices)
            raise _Mismatch(f"expected one of {listed}, got {describe(value)}")
        return value

    return structure


def _mapping(value: Any, _: Any) -> dict[str, Any]:
    if type(value) is not dict:
        raise _expect("a mapping", value)
    return value


def _list(value: Any, _: Any) -> list[Any]:
    if type(value) is not list:
        raise _expect("a list", value)
    return value


def _converter(detailed: bool) -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=detailed)
    attrs.resolve_types(NodeSpec)
    attrs.resolve_types(FileOptions)
    attrs.resolve_types(_Top)
    number_or_null = _optional(_float, "a number")
    string_or_null = _optional(_str, "a string")
    node_fields: dict[str, Callable[[Any, Any], Any]] = {
        "action": _str,
        "id": string_or_null,
        "deps": _deps,
        "inputs": _inputs,
        "timeout": number_or_null,
        "try_count": _int,
        "retry_delay": _float,
        "branch": string_or_null,
        "cache": _optional(_bool, "true or false"),
        "executor": string_or_null,
        "max_retry_delay": number_or_null,
        "retry_jitter": _float,
        "defer": _bool,
        "estimate": number_or_null,
        "priority": _int,
        "uses": _uses,
    }
    missing = set(_NODE_FIELDS) - set(node_fields)
    assert not missing, f"NodeSpec fields without a strict hook: {missing}"
    conv.register_structure_hook(
        NodeSpec,
        make_dict_structure_fn(
            NodeSpec,
            conv,
            _cattrs_forbid_extra_keys=True,
            **{name: override(struct_hook=hook) for name, hook in node_fields.items()},  # type: ignore[arg-type]
        ),
    )
    conv.register_structure_hook(
        FileOptions,
        make_dict_structure_fn(
            FileOptions,
            conv,
            _cattrs_forbid_extra_keys=True,
            max_parallel=override(struct_hook=_int),
            event_capacity=override(struct_hook=_int),
            command_capacity=override(struct_hook=_int),
            on_failure=override(struct_hook=_literal("skip", "fail_fast", "hold")),
            hook_errors=override(struct_hook=_literal("fail", "isolate")),
            order=override(struct_hook=_literal("fifo", "critical_path")),
            limits=override(struct_hook=_limits),
        ),
    )
    conv.register_structure_hook(
        _Top,
        make_dict_structure_fn(
            _Top,
            conv,
            _cattrs_forbid_extra_keys=True,
            actions=override(struct_hook=_str),
            nodes=override(struct_hook=_list),
            dag=override(struct_hook=_str),
            hooks=override(struct_hook=_string_list),
            defaults=override(struct_hook=_mapping),
        ),
    )
    return conv


_fast = _converter(detailed=False)
_detailed = _converter(detailed=True)


# --- hints for other tools' spellings ------------------------------------------------------

_RETRIES = (
    "dagtrio counts attempts, not retries: try_count is every attempt, the first"
    " included, so {key}: {value} is try_count: {attempts}"
)
_NODE_HINTS = {
    **dict.fromkeys(
        (
            "needs",
            "dependencies",
            "depends_on",
            "dependsOn",
            "depends",
            "runAfter",
            "run_after",
            "after",
            "upstream",
            "requires",
            "parents",
        ),
        "deps",
    ),
    **dict.fromkeys(
        (
            "retries",
            "retry",
            "max_retries",
            "maxRetries",
            "retry_count",
            "retryCount",
            "retryStrategy",
        ),
        _RETRIES,
    ),
    **dict.fromkeys(("name", "key", "task_id", "taskId"), "id"),
    **dict.fromkeys(
        (
            "task",
            "uses",
            "template",
            "templateRef",
            "taskRef",
            "run",
            "operator",
            "type",
            "handler",
            "function",
            "command",
        ),
        "action",
    ),
    **dict.fromkeys(
        (
            "with",
            "params",
            "parameters",
            "args",
            "arguments",
            "input",
            "env",
            "config",
            "op_kwargs",
        ),
        "inputs",
    ),
    **dict.fromkeys(
        ("timeout_seconds", "timeoutSeconds", "activeDeadlineSeconds", "execution_timeout"),
        "timeout (in seconds)",
    ),
    **dict.fromkeys(
        ("timeout-minutes", "timeout_minutes", "timeoutMinutes"),
        "timeout (in seconds, not minutes: 60 times the minutes)",
    ),
    **dict.fromkeys(
        ("retry_delay_seconds", "retryDelay", "retry_interval", "backoff", "retry_wait"),
        "retry_delay (seconds before the second attempt; it doubles for each later one)",
    ),
    **dict.fromkeys(("group", "stage", "lane", "task_group"), "branch"),
}
_TOP_HINTS = {
    **dict.fromkeys(("name", "dag_id", "workflow", "pipeline"), "dag"),
    **dict.fromkeys(("tasks", "jobs", "steps", "templates", "spec", "node"), "nodes"),
    **dict.fromkeys(("registry", "module", "action"), "actions"),
    **dict.fromkeys(("default", "default_args", "node_defaults"), "defaults"),
    **dict.fromkeys(("settings", "config", "coordinator"), "options"),
    "hook": "hooks",
}
_OPTION_HINTS: dict[str, str] = dict.fromkeys(
    ("parallelism", "concurrency", "max_workers", "workers", "max_active_tasks", "parallel"),
    "max_parallel",
)


def _unknown(key: Any, value: Any, known: Sequence[str], hints: Mapping[str, str]) -> str:
    message = f"unknown field {key!r}"
    hint = hints.get(key) if isinstance(key, str) else None
    if hint == _RETRIES:
        attempts = value + 1 if type(value) is int and value >= 0 else "N + 1"
        return f"{message}: {hint.format(key=key, value=value, attempts=attempts)}"
    if hint is not None:
        return f"{message}: did you mean {hint}?"
    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.7)
    if close:
        return f"{message}: did you mean {close[0]}?"
    return f"{message} (the fields are {', '.join(known)})"


# --- cattrs' errors as problems with paths --------------------------------------------------


def _problems(
    exc: BaseException, path: Path_, data: Any, known: Sequence[str], hints: Mapping[str, str]
) -> Iterator[Problem]:
    """Every leaf error under a cattrs validation error, with its path in the file."""
    if isinstance(exc, ForbiddenExtraKeysError):
        for key in sorted(exc.extra_fields, key=str):
            value = data.get(key) if isinstance(data, dict) else None
            yield Problem((*path, key), _unknown(key, value, known, hints))
        return
    if isinstance(exc, cattrs.ClassValidationError | cattrs.IterableValidationError):
        for inner in exc.exceptions:
            where, item = path, data
            sub_known, sub_hints = known, hints
            for note in getattr(inner, "__notes__", ()):
                if isinstance(note, IterableValidationNote):
                    where = (*path, note.index)
                    item = data[int(note.index)] if isinstance(data, list) else None
                elif isinstance(note, AttributeValidationNote):
                    where = (*path, note.name)
                    item = data.get(note.name) if isinstance(data, dict) else None
                    if note.name == "options" and known is _TOP_FIELDS:
                        sub_known, sub_hints = _OPTIONS_FIELDS, _OPTION_HINTS
            yield from _problems(inner, where, item, sub_known, sub_hints)
        return
    if isinstance(exc, KeyError) and not isinstance(exc, _Mismatch):
        field = path[-1] if path else None
        yield Problem(path, _MISSING.get(field, "missing: this field is required"))  # type: ignore[arg-type]
        return
    if isinstance(exc, InvalidSpecError):
        yield _spec_problem(exc, path)
        return
    yield Problem(path, str(exc) if isinstance(exc, _Mismatch) else _plain_error(exc))


_MISSING = {
    "action": "missing: every node names the action it runs",
    "actions": (
        "missing: name the module that registers the actions (actions: mypkg.actions, or"
        " mypkg.actions:registry)"
    ),
    "nodes": "missing: a DAG file lists its nodes under nodes:",
}


_OPTIONS_FIELDS = tuple(field.name for field in attrs.fields(FileOptions))
_TOP_FIELDS = ("dag", "actions", "hooks", "options", "defaults", "nodes")


def _plain_error(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "the value is nested too deeply"
    return f"{type(exc).__name__}: {exc}"


def _spec_problem(exc: InvalidSpecError, path: Path_) -> Problem:
    # NodeSpec's own checks (try_count >= 1, a bad branch path) name the field first
    # in their reason: point at that field.
    reason = exc.reason
    first = reason.split(" ", 1)[0]
    for field in (first, first + "s"):
        if field in _NODE_FIELDS:
            rest = reason[len(first) :].lstrip()
            return Problem((*path, field), rest if rest.startswith("must") else reason)
    return Problem(path, reason)


def _quick(data: dict[Any, Any]) -> NodeSpec | None:
    """The spec of a valid node, built without cattrs (a third of the time of a large
    file); None for anything else, which the converters then structure and explain.

    For the values JSON and YAML give (dicts, lists, strings, numbers, booleans,
    null), NodeSpec's own checks refuse what the strict hooks refuse: a string or a
    boolean for a number, a string for deps, a key that is no field. The one value it
    would take and they do not is a mapping for ``deps`` (its keys would become the
    ids). A property test holds the two paths to the same answers.
    """
    if type(data.get("deps")) is dict:
        return None
    try:
        return NodeSpec(**data)
    except (TypeError, InvalidSpecError, RecursionError):
        return None


def _structure_node(data: Any, path: Path_) -> tuple[NodeSpec | None, list[Problem]]:
    if type(data) is not dict:
        hint = ""
        if isinstance(data, str):
            hint = f" (write the node as '- id: {data}' with its action on the next line)"
        return None, [
            Problem(path, f"expected a mapping of node fields, got {describe(data)}{hint}")
        ]
    spec = _quick(data)
    if spec is not None:
        return spec, []
    try:
        return _fast.structure(data, NodeSpec), []
    except InvalidSpecError:
        problems: list[Problem] = []
    except Exception:
        try:
            _detailed.structure(data, NodeSpec)
        except Exception as exc:
            problems = list(_problems(exc, path, data, _NODE_FIELDS, _NODE_HINTS))
        else:  # pragma: no cover - the fast path failed, so this cannot pass
            problems = []
    return None, problems + _value_problems(data, path, problems)


def _value_problems(data: dict[Any, Any], path: Path_, found: list[Problem]) -> list[Problem]:
    """NodeSpec's own checks (``try_count >= 1``, a branch path) on the fields whose
    types are right: NodeSpec stops at the first, so each is dropped once reported."""
    bad = {problem.path[len(path)] for problem in found if len(problem.path) > len(path)}
    fields = {key: value for key, value in data.items() if key in _NODE_FIELDS and key not in bad}
    fields.setdefault("action", "-")
    problems: list[Problem] = []
    for _ in range(len(_NODE_FIELDS)):
        try:
            _fast.structure(fields, NodeSpec)
        except InvalidSpecError as exc:
            problem = _spec_problem(exc, path)
            problems.append(problem)
            if len(problem.path) == len(path) or problem.path[-1] not in fields:
                break
            del fields[problem.path[-1]]
        except Exception:
            break
        else:
            break
    return problems


# --- the whole file -------------------------------------------------------------------------


def load_file(path: Path) -> DagFile:
    """Read, parse and check the DAG file at ``path``.

    Returns a `DagFile` whose specs passed every check a graph can be given without
    its actions: types, unknown fields, duplicate ids, unknown deps, cycles. Raises
    `DagFileError` listing every problem found, each with its line.
    """
    with gc_paused():  # see there: a third of the time of a 100 000-node file
        return _load_file(path)


def _load_file(path: Path) -> DagFile:
    try:
        document = load.parse(path, load.read(path))
    except FileProblem as exc:
        raise DagFileError(path, [(exc.line, "", exc.message)]) from None
    problems: list[Problem] = []
    data = document.data
    if type(data) is not dict:
        raise _error(
            document,
            [
                Problem(
                    (),
                    "a DAG file is a mapping with at least `actions` and `nodes`;"
                    f" this one holds {describe(data)}",
                )
            ],
        )
    top = _structure_top(data, problems)
    if top is None:
        raise _error(document, problems)
    defaults = _structure_defaults(top.defaults, problems)
    specs: list[NodeSpec | None] = []
    for i, node in enumerate(top.nodes):
        if defaults and type(node) is dict:
            node = {**defaults, **node}
        spec, found = _structure_node(node, ("nodes", i))
        specs.append(spec)
        problems.extend(found)
    named, index = _name(specs, top.nodes, problems)
    edges, order = _check_graph(named, index, top.nodes, problems)
    if problems:
        raise _error(document, problems)
    return DagFile(
        document=document,
        dag=top.dag,
        actions=top.actions,
        hooks=tuple(top.hooks),
        options=top.options,
        specs=tuple(named),  # type: ignore[arg-type]  # no problems: none is None
        index=index,
        edges=edges,
        order=order,
    )


def _structure_top(data: dict[Any, Any], problems: list[Problem]) -> _Top | None:
    try:
        top = _fast.structure(data, _Top)
    except Exception:
        # Report what is wrong at the top, then check the rest of the file without it:
        # an unknown top-level field must not hide the mistakes in the nodes.
        try:
            _detailed.structure(data, _Top)
        except Exception as exc:
            found = list(_problems(exc, (), data, _TOP_FIELDS, _TOP_HINTS))
        else:  # pragma: no cover - the fast path failed, so this cannot pass
            found = []
        problems.extend(found)
        cleaned: dict[Any, Any] = {key: value for key, value in data.items() if key in _TOP_FIELDS}
        for problem in found:
            if problem.path[:1] == ("options",) and len(problem.path) > 1:
                # Only the bad option goes: the others are still checked.
                options = cleaned.get("options")
                if type(options) is dict:
                    cleaned["options"] = {k: v for k, v in options.items() if k != problem.path[1]}
                    continue
            if problem.path:
                cleaned.pop(problem.path[0], None)
        cleaned.setdefault("actions", "")
        cleaned.setdefault("nodes", [])
        try:
            top = _fast.structure(cleaned, _Top)
        except Exception:  # pragma: no cover - every bad field was dropped
            return None
    if not top.dag:
        problems.append(Problem(("dag",), "the name must not be empty"))
    for field in ("max_parallel",):
        if getattr(top.options, field) < 1:
            problems.append(
                Problem(
                    ("options", field), f"must be at least 1, got {getattr(top.options, field)}"
                )
            )
    for field in ("event_capacity", "command_capacity"):
        if getattr(top.options, field) < 0:
            problems.append(
                Problem(
                    ("options", field), f"must be at least 0, got {getattr(top.options, field)}"
                )
            )
    for name, amount in top.options.limits.items():
        if amount < 1:
            problems.append(
                Problem(
                    ("options", "limits"), f"the limit of {name!r} must be at least 1, got {amount}"
                )
            )
    if not top.nodes and "nodes" in data and type(data["nodes"]) is list:
        problems.append(
            Problem(("nodes",), "the list is empty; a DAG file needs at least one node")
        )
    return top


def _structure_defaults(defaults: dict[str, Any], problems: list[Problem]) -> dict[str, Any]:
    """The defaults that are valid spec fields; a problem for each that is not."""
    if not defaults:
        return {}
    good = dict(defaults)
    for key in ("id",):
        if key in good:
            del good[key]
            problems.append(
                Problem(("defaults", key), "each node needs its own id; it cannot be a default")
            )
    probe = {"action": "-", **good}
    try:
        _detailed.structure(probe, NodeSpec)
    except Exception as exc:
        found = []
        if not isinstance(exc, InvalidSpecError):
            found = list(_problems(exc, ("defaults",), probe, _NODE_FIELDS, _NODE_HINTS))
        found += _value_problems(probe, ("defaults",), found)
        problems.extend(found)
        for problem in found:
            if len(problem.path) > 1:
                good.pop(str(problem.path[1]), None)
    return good


def _name(
    specs: list[NodeSpec | None], nodes: list[Any], problems: list[Problem]
) -> tuple[list[NodeSpec | None], dict[str, int]]:
    """Give every spec without an id the one a run would give it; find duplicates.

    The specs stay where their nodes are in the file (None for a node that failed
    its checks); the index maps each id to the first node that has it.
    """
    index: dict[str, int] = {}
    for i, (spec, node) in enumerate(zip(specs, nodes, strict=True)):
        # In file order, so that the later of two nodes is the duplicate. A node that
        # failed its checks still has its id, if that much is right: deps on it are
        # not unknown, and a second node with that id is still a duplicate.
        if spec is not None:
            node_id = spec.id
        elif type(node) is dict and type(node.get("id")) is str:
            node_id = node["id"]
        else:
            continue
        if node_id is None:
            continue
        if node_id in index:
            problems.append(
                Problem(
                    ("nodes", i, "id"),
                    f"the id {node_id!r} is already the id of nodes[{index[node_id]}]",
                )
            )
        else:
            index[node_id] = i
    named: list[NodeSpec | None] = []
    auto = 0
    for i, spec in enumerate(specs):
        if spec is not None and spec.id is None:
            while True:
                auto += 1
                node_id = f"{spec.action}-{auto}"
                if node_id not in index:
                    break
            spec = attrs.evolve(spec, id=node_id)
            index[node_id] = i
        named.append(spec)
    return named, index


def _check_graph(
    specs: list[NodeSpec | None], index: dict[str, int], nodes: list[Any], problems: list[Problem]
) -> tuple[list[tuple[int, int]], list[int]]:
    """Unknown deps and cycles; the edges (by position in ``nodes``) and an order."""
    for i, (spec, node) in enumerate(zip(specs, nodes, strict=True)):
        raw = node.get("deps") if type(node) is dict else None
        written = raw if type(raw) is list else None
        if spec is not None:
            deps: Sequence[Any] = spec.deps
        elif written is not None:
            deps = written
        else:
            continue
        for dep in deps:
            if type(dep) is str and dep and dep not in index:
                close = difflib.get_close_matches(dep, index, n=1, cutoff=0.8)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                # Pointed at where it is written: the node's own list (where a spec
                # keeps a repeated dep once), or the defaults it came from.
                if written is not None and dep in written:
                    where: Path_ = ("nodes", i, "deps", written.index(dep))
                elif raw is None:
                    where = ("defaults", "deps")
                else:
                    where = ("nodes", i, "deps")
                problems.append(Problem(where, f"no node has the id {dep!r}{hint}"))
    if problems:
        return [], []  # a cycle through a node with a mistake would be shown wrong
    # No problems: every node has its spec, at its own position, and every id its node.
    valid: list[NodeSpec] = specs  # type: ignore[assignment]
    edges = [(index[dep], i) for i, spec in enumerate(valid) for dep in spec.deps]
    order, cycles = dag_order(len(valid), edges)
    for cycle in cycles or ():
        ids = [str(valid[v].id) for v in cycle]
        problems.append(
            Problem(
                ("nodes", index[ids[0]], "deps"),
                f"the deps form a cycle: {' → '.join(ids)}",
            )
        )
    return edges, order


def _error(document: Document, problems: Sequence[Problem]) -> DagFileError:
    # dict.fromkeys: a problem of the defaults is found once per node that takes them
    located = [
        (document.line(problem.path), render_path(problem.path), problem.message)
        for problem in dict.fromkeys(problems)
    ]
    located.sort(key=lambda item: item[0] or 0)
    return DagFileError(document.path, located)
