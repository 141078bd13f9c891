"""Read a DAG file and parse it into plain data: dicts, lists, strings, numbers.

JSON goes through the standard library. YAML in the plain block style most DAG files
are written in is read line by line (`dagtrio._specfile.quick`, three times as fast as
libyaml's events); any other YAML, and any file with a problem to point at, goes
through ruamel.yaml's event parser (libyaml's C parser when ``ruamel.yaml.clib`` is
installed) and a builder of our own
that resolves plain scalars by the YAML 1.2 core schema: ``no``, ``on`` and ``yes`` are
strings, ``0755`` is the integer 755, as in JSON. (ruamel's own 1.2 loaders go further
than the core schema: ``1_000`` is 1000 and ``2001-12-14`` a date there, strings here.)
They also build the values at about a tenth of the speed: a 20 000-node file took 20 s
through them here, and about 1 s through this builder.

Positions: the builder can record the line of every value, keyed by its path in the
document (``("nodes", 1, "deps")``). Recording costs time, and a valid file never
needs a line, so `parse` is called without positions first and again with them only
when there is a problem to point at (`Document.lines`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from dagtrio._specfile.quick import GIVE_UP, read_block_yaml

__all__ = ["MAX_BYTES", "Document", "FileProblem", "Path_", "parse", "read"]

#: The largest DAG file read. A 100 000-node file is about 10 MB; a file far larger
#: is a mistake (a data file named by accident) that would take minutes to parse, so
#: it is refused at once, before it is read.
MAX_BYTES = 32 * 1024 * 1024

#: A place in a document: mapping keys and list indexes from the root.
Path_ = tuple[str | int, ...]


class FileProblem(Exception):
    """The file cannot be read or parsed at all: ``line`` (1-based, or None) and why."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@attrs.define
class Document:
    """A parsed DAG file: its ``data`` and, on demand, the line of every value."""

    path: Path
    text: str
    kind: str  # "yaml" or "json"
    data: Any
    _lines: dict[Path_, int] | None = None

    def lines(self) -> dict[Path_, int]:
        """The 1-based line of every value by its path (parsed again the first time)."""
        if self._lines is None:
            _, lines = _parse_yaml(self.text, positions=True)
            assert lines is not None
            self._lines = lines
        return self._lines

    def line(self, path: Path_) -> int | None:
        """The line of the value at ``path``, or of its nearest enclosing value (None
        for JSON that the YAML parser, which finds the lines, does not take)."""
        try:
            lines = self.lines()
        except FileProblem:
            return None
        while True:
            if path in lines:
                return lines[path]
            if not path:
                return None
            path = path[:-1]


def read(path: Path) -> str:
    """The text of the DAG file at ``path``; `FileProblem` saying why not."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise FileProblem(
                f"the file is {size:,} bytes; DAG files are read whole, up to"
                f" {MAX_BYTES:,} bytes ({MAX_BYTES // 2**20} MiB; is this the DAG file you"
                " meant?)"
            )
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileProblem("no such file") from None
    except IsADirectoryError:
        raise FileProblem("is a directory, not a DAG file") from None
    except OSError as exc:
        raise FileProblem(f"cannot be read: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:  # grew since stat (a pipe, a file being written)
        raise FileProblem(f"the file is larger than {MAX_BYTES // 2**20} MiB")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise FileProblem(
            "is not a text file (not UTF-8); a DAG file is YAML or JSON", line
        ) from None
    if "\x00" in text:
        raise FileProblem("is not a text file (it holds NUL bytes); a DAG file is YAML or JSON")
    if not text.strip():
        raise FileProblem(
            "the file is empty; a DAG file is a mapping with at least `actions` and `nodes`"
        )
    return text


def parse(path: Path, text: str) -> Document:
    """Parse ``text`` (read from ``path``) as JSON or YAML; `FileProblem` if neither.

    ``.json`` files are JSON; anything else is YAML, of which JSON is a subset, so a
    JSON file by another name parses too.
    """
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text, parse_constant=_no_constant, object_pairs_hook=_no_twice)
        except json.JSONDecodeError as exc:
            raise FileProblem(
                f"is not valid JSON: {exc.msg} (column {exc.colno})", exc.lineno
            ) from None
        except _Twice as exc:
            line = None
            try:
                _parse_yaml(text, positions=False)
            except FileProblem as found:
                line = found.line
            raise FileProblem(exc.args[0], line) from None
        except ValueError as exc:
            raise FileProblem(f"is not valid JSON: {exc}") from None
        except RecursionError:
            raise FileProblem("is not a DAG file: its values are nested too deeply") from None
        return Document(path, text, "json", data)

    data = read_block_yaml(text, _plain)
    if data is GIVE_UP:
        data, _ = _parse_yaml(text, positions=False)
    return Document(path, text, "yaml", data)


class _Twice(ValueError):
    pass


def _no_twice(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json keeps the last of two equal keys; a DAG file's second "action" is a mistake.
    result = dict(pairs)
    if len(result) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Twice(f"the key {key!r} appears twice in one mapping")
            seen.add(key)
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


# The YAML 1.2 core schema's plain scalars (https://yaml.org/spec/1.2.2/#1032-tag-resolution).
_NULL = frozenset(("", "~", "null", "Null", "NULL"))
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT = re.compile(
    r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)
_STR_TAG = "tag:yaml.org,2002:str"
_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
}


def _plain(value: str, line: int | None = None) -> Any:
    """A plain (unquoted, untagged) scalar's value under the YAML 1.2 core schema."""
    first = value[:1]
    if first and (first.isdigit() or first in "-+."):
        if _INT.fullmatch(value):
            if value.startswith("0o"):
                return int(value[2:], 8)
            if value.startswith("0x"):
                return int(value[2:], 16)
            return int(value)
        if _FLOAT.fullmatch(value):
            lowered = value.lower()
            if lowered.endswith("nan"):
                return math.nan
            if lowered.endswith("inf"):
                return -math.inf if value[0] == "-" else math.inf
            return float(value)
        return value
    if value in _NULL:
        return None
    return _BOOL.get(value, value)


def _tagged(value: str, tag: str, line: int | None) -> Any:
    """A scalar with an explicit ``!!`` tag."""
    if tag == _STR_TAG:
        return value
    resolved = _plain(value, line)
    kind = tag.rsplit(":", 1)[-1]
    wanted = {
        "int": int,
        "float": float,
        "bool": bool,
        "null": type(None),
    }.get(kind)
    if wanted is float and type(resolved) is int:
        return float(resolved)
    if wanted is None or type(resolved) is not wanted:
        raise FileProblem(f"{value!r} is not a valid !!{kind}", line)
    return resolved


def _events(text: str) -> Iterator[Any]:
    """The events of ``text``, straight from libyaml's C parser when it is there."""
    try:
        from _ruamel_yaml import CParser  # libyaml, through ruamel.yaml.clib
    except ImportError:
        from ruamel.yaml import YAML  # the one module that imports ruamel.yaml

        return YAML(typ="safe", pure=True).parse(text)  # type: ignore[no-any-return]
    # get_event returns None after the last event: iter() then walks the parser in C,
    # where ruamel's YAML.parse wraps it in a generator that costs a third as much
    # again as the events themselves.
    return iter(CParser(text).get_event, None)


def _parse_yaml(text: str, *, positions: bool) -> tuple[Any, dict[Path_, int] | None]:
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        try:
            return _build(_events(text), positions)
        except FileProblem as exc:
            if exc.line is not None or positions:
                raise
            # The fast pass keeps no lines; the second one finds the same problem and
            # says where.
            return _build(_events(text), True)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(str(exc.problem or exc.context or "").split())
        if "unexpected ':'" in what:
            what += " (inside [ ] or { }, quote a value that holds a colon: 'module:name')"
        raise FileProblem(
            f"is not valid YAML: {what}", mark.line + 1 if mark is not None else None
        ) from None
    except YAMLError as exc:  # the reader's: a character YAML does not allow
        position = getattr(exc, "position", None)
        line = text.count("\n", 0, position) + 1 if isinstance(position, int) else None
        what = getattr(exc, "reason", None) or " ".join(str(exc).split())
        raise FileProblem(f"is not valid YAML: {what}", line) from None
    except RecursionError:
        raise FileProblem("is not a DAG file: its values are nested too deeply") from None
    except ValueError as exc:  # an integer of thousands of digits
        raise FileProblem(f"holds a value Python cannot read: {exc}") from None


def _build(events: Iterator[Any], positions: bool) -> tuple[Any, dict[Path_, int] | None]:
    """Build the one document of a YAML event stream into plain values.

    A mapping or sequence being built is a frame on a stack (see `_Frame`); a scalar
    or a finished container is added to the frame below it. Without ``positions``
    lines are not even read (a problem found then has none: `_parse_yaml` builds
    again with them), and a scalar that is a mapping's value takes a short way in.
    """
    from ruamel.yaml.events import (
        AliasEvent,
        DocumentStartEvent,
        MappingEndEvent,
        MappingStartEvent,
        ScalarEvent,
        SequenceEndEvent,
        SequenceStartEvent,
    )

    lines: dict[Path_, int] | None = {} if positions else None
    anchors: dict[str, Any] = {}
    stack: list[_Frame] = []
    root: list[Any] = []
    documents = 0
    none = _NONE
    resolved: dict[str, Any] = {}  # plain scalars seen, resolved once: keys repeat
    plain_value = _plain

    def add(value: Any, line: int | None, anchor: str | None, plain: bool) -> None:
        if anchor is not None:
            anchors[anchor] = value
        if not stack:
            root.append(value)
            if lines is not None:
                lines[()] = line  # type: ignore[assignment]
            return
        frame = stack[-1]
        container = frame.container
        if frame.is_list:
            if lines is not None:
                lines[(*frame.path, len(container))] = line  # type: ignore[assignment]
            container.append(value)
            return
        key = frame.key
        if key is none:
            if type(value) not in (str, int, float, bool) and value is not None:
                raise FileProblem("a mapping key must be a scalar (a name), not a collection", line)
            merged = frame.merged
            if value in container:
                if merged is None or value not in merged:
                    raise FileProblem(f"the key {value!r} appears twice in one mapping", line)
                merged.discard(value)  # a key written out wins over a merged one
            frame.key = value
            frame.key_line = line
            frame.merge = plain and value == "<<"
            return
        frame.key = none
        if frame.merge:
            frame.merge = False
            _merge(frame, value, line)
            return
        container[key] = value
        if lines is not None:
            lines[(*frame.path, key)] = frame.key_line  # type: ignore[assignment]

    starts = (MappingStartEvent, SequenceStartEvent)
    ends = (MappingEndEvent, SequenceEndEvent)
    for event in events:
        name = event.__class__
        line = event.start_mark.line + 1 if positions else None
        if name is ScalarEvent:
            tag = event.tag
            plain = False
            if tag is not None and tag != "!":
                if tag not in _TAGS:
                    raise FileProblem(f"the tag {tag} is not supported in a DAG file", line)
                value = _tagged(event.value, tag, line)
            elif not event.style and event.implicit[0]:
                text = event.value
                value = resolved.get(text, none)
                if value is none:
                    value = resolved[text] = plain_value(text, line)
                plain = True
            else:
                value = event.value
            if lines is None and stack and event.anchor is None:
                # The common cases, in short: an item of a list, a plain name as a
                # key, a mapping's value. Everything else (anchors, merge keys, a
                # repeated key, the document itself) goes through add().
                frame = stack[-1]
                if frame.is_list:
                    frame.container.append(value)
                    continue
                key = frame.key
                if key is none:
                    if value.__class__ is str and value != "<<" and value not in frame.container:
                        frame.key = value
                        continue
                elif not frame.merge:
                    frame.container[key] = value
                    frame.key = none
                    continue
            add(value, line, event.anchor, plain)
        elif name in starts:
            _check_collection_tag(event.tag, name is MappingStartEvent, line)
            path: Path_ = ()
            if stack:
                parent = stack[-1]
                if parent.is_list:
                    path = (*parent.path, len(parent.container))
                elif parent.key is none:
                    raise FileProblem(
                        "a mapping key must be a scalar (a name), not a collection", line
                    )
                else:
                    path = (*parent.path, parent.key)
            stack.append(_Frame(name is SequenceStartEvent, path, event.anchor, line))
        elif name in ends:
            frame = stack.pop()
            add(frame.container, frame.line, frame.anchor, False)
        elif name is AliasEvent:
            if event.anchor not in anchors:
                raise FileProblem(f"the alias *{event.anchor} names no anchor above it", line)
            add(anchors[event.anchor], line, None, False)
        elif name is DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise FileProblem(
                    "holds several YAML documents (---); a DAG file is one document", line
                )
    if not root:
        raise FileProblem(
            "the file is empty; a DAG file is a mapping with at least `actions` and `nodes`"
        )
    return root[0], lines


class _Frame:
    """A mapping or sequence being built: its values so far and, for a mapping, the
    key read whose value has not come yet (``_NONE`` when none)."""

    __slots__ = (
        "anchor",
        "container",
        "is_list",
        "key",
        "key_line",
        "line",
        "merge",
        "merged",
        "path",
    )

    def __init__(self, is_list: bool, path: Path_, anchor: str | None, line: int | None) -> None:
        self.is_list = is_list
        self.container: Any = [] if is_list else {}
        self.path = path
        self.anchor = anchor
        self.line = line
        self.key: Any = _NONE
        self.key_line = line
        self.merge = False  # the pending key is YAML's merge key `<<`
        self.merged: set[Any] | None = None  # keys that came from a merge


class _NoneType:
    __slots__ = ()


#: "no key yet" in a mapping frame (None is a valid YAML key).
_NONE = _NoneType()


def _check_collection_tag(tag: str | None, mapping: bool, line: int | None) -> None:
    if tag is None or tag == "!":
        return
    wanted = "tag:yaml.org,2002:map" if mapping else "tag:yaml.org,2002:seq"
    if tag != wanted:
        raise FileProblem(f"the tag {tag} is not supported in a DAG file", line)


def _merge(frame: _Frame, value: Any, line: int | None) -> None:
    """YAML's merge key: the entries of a mapping (or of each in a list) that the
    mapping does not have yet."""
    sources = value if type(value) is list else [value]
    container = frame.container
    for source in sources:
        if type(source) is not dict:
            raise FileProblem("a merge key (<<) takes a mapping or a list of mappings", line)
        for key, item in source.items():
            if key not in container:
                container[key] = item
                if frame.merged is None:
                    frame.merged = set()
                frame.merged.add(key)
