"""A quick reader for the plain block style that most DAG files are written in.

libyaml's events, read through ruamel's C binding, cost about as much per node as a
no-op run of that node: loading a 20 000-node YAML file took twice as long as running
it. Most DAG files, and all generated ones, use a small part of YAML: block mappings
and sequences, one entry per line, plain or simply quoted scalars, one-line flow
collections (``deps: [a, b]``, ``inputs: {k: 1}``) and comments. This module reads
that part line by line, about three times as fast, and gives up (returns ``GIVE_UP``)
on anything else, or on anything it is not sure of: then `load` parses the file with
libyaml, which has the last word on what the file means and on what is wrong with it.

Giving up is always safe; a value different from libyaml's is not. A property test
holds the two readers to the same values on generated block YAML full of the
characters that make YAML hard (``tests/test_quick_yaml.py``). The rules kept here
are the strict side of YAML's: a plain scalar in a flow collection may not hold
``:``, ``#``, ``?`` or quotes, a key is a name (letters, digits, ``_``, ``-``, ``.``), the
text is printable ASCII without tabs or carriage returns; a file outside them takes
the full parser, and loses only time.
"""

from __future__ import annotations

import re
from typing import Any, Final

__all__ = ["GIVE_UP", "read_block_yaml"]


class _GiveUp:
    __slots__ = ()

    def __repr__(self) -> str:
        return "GIVE_UP"


#: What `read_block_yaml` returns for a text it leaves to the full parser.
GIVE_UP: Final = _GiveUp()

# Anything but printable ASCII and newlines: tabs, carriage returns, control and
# non-ASCII characters (some of which libyaml takes as line breaks) go to libyaml.
_AWKWARD = re.compile(r"[^\n\x20-\x7e]")
# A block key: a name. It has no "<", so YAML's merge key "<<" never passes as one
# (flow keys are tested for it by name).
_NAME = r"[A-Za-z_][A-Za-z0-9_.-]*"
_KEY = re.compile(_NAME)
# Characters that start something other than a plain scalar (an anchor, a tag, a
# block scalar, a flow collection, a quoted scalar...). A plain scalar may start
# with "-" before a character that is not a space ("-1"); "?" and ":" are left to
# libyaml.
_INDICATORS = frozenset("-?:,[]{}#&*!|>'\"%@`")
# A plain scalar inside a flow collection, on the strict side: none of , [ ] { } : #
# ? or quotes, and not starting with an indicator (a "-" only before a non-space).
# ("?" because libyaml, 0.1.7 in ruamel.yaml.clib, ends a flow scalar there and reads
# a key indicator, where ruamel's pure parser reads on.)
_PLAIN_IN_FLOW = r"(?:[A-Za-z0-9_./+~=$^()<;\\]|-(?=[^\s,\[\]{}:#'\"?]))[^,\[\]{}:#'\"?]*"
_FLOW_PLAIN = re.compile(_PLAIN_IN_FLOW)
# A flow collection without these inside is flat: [a, b] or {k: v, j: w} of plain
# scalars, the flow collections of most files, split apart without a parser.
_NOT_FLAT = re.compile(r"[\[\]{}#'\"?]")
# Every line of a file in one call, as (indent, "- ", key, the rest): the pattern
# takes any line, with the optional parts empty; what the rest holds is judged after.
_LINE = re.compile(rf"^( *)(- +|-$)?(?:({_NAME}):(?: +|$))?(.*)$", re.MULTILINE)
# libyaml refuses a simple key whose ":" comes more than 1024 characters after its
# start; longer keys (and flow collections that may hold one) are left to it.
_LONGEST_KEY = 1000
#: The line is the document's start marker ("---").
_START: Final = object()
_NULLS = frozenset(("~", "null", "Null", "NULL"))
_BOOLS = frozenset(("true", "True", "TRUE", "false", "False", "FALSE"))
# A plain scalar that starts with none of these and is not one of _NULLS or _BOOLS
# is a string under the core schema, without asking `plain`.
_NUMERIC = frozenset("0123456789-+.")
_WORDS: dict[str, Any] = {
    **dict.fromkeys(_NULLS),
    **{word: word.lower() == "true" for word in _BOOLS},
}


def read_block_yaml(text: str, plain: Any) -> Any:
    """The value of ``text`` if it is in the block style this module reads, with plain
    scalars resolved by ``plain(value)``; `GIVE_UP` otherwise."""
    if _AWKWARD.search(text) is not None:
        return GIVE_UP
    try:
        return _read(text, plain)
    except (_Out, ValueError, RecursionError):
        # ValueError: an integer of more digits than Python reads; RecursionError:
        # flow collections nested deeper than the stack. libyaml's pass says so.
        return GIVE_UP


def _read(text: str, plain: Any) -> Any:
    # Plain scalars resolved once (numbers repeat), seeded with the words that are
    # not strings; any other plain scalar that is not numeric-looking is itself.
    resolved: dict[str, Any] = dict(_WORDS)
    keys: set[str] = set()  # keys already checked not to be null or a boolean
    root: Any = GIVE_UP
    # Open collections, innermost last: [indent, container, is_list, compact]. A
    # compact list is a mapping's value written at the mapping's own indent
    # ("nodes:\n- id: a"), which ends at the first line of that indent without "-".
    stack: list[list[Any]] = []
    # A key or a "-" with nothing after it: [indent of its collection, collection,
    # key or None for a list item]; the next line says whether a block follows.
    pending: list[Any] | None = None
    started = False
    # The collection the last line went into, for the common next line: another
    # "key: value" of the same mapping.
    cur_indent = -1
    cur: Any = None
    cur_is_list = True

    for spaces, dash_text, key, item in _LINE.findall(text):
        if not (key or dash_text):
            # A blank line, a comment, or a line that is not "- ..." nor "key: ..."
            # (which _split reads again, for the start marker and the errors).
            if not item or item[0] == "#" or item.isspace():
                continue
            line = _split(spaces + item, started)
            if line is None:
                continue
            if not isinstance(line, tuple):  # _START
                started = True  # a second "---" now gives up
                continue
            indent, dash, column, key, item = line
            item = _value(item, resolved, plain) if item else _NOTHING
        else:
            indent = len(spaces)
            dash = bool(dash_text)
            column = indent + len(dash_text)
            if item:
                if item[-1] == " ":
                    item = item.rstrip(" ")
                first = item[0]
                if first in _INDICATORS or " #" in item or ": " in item or item[-1] == ":":
                    item = _value(_uncommented(item), resolved, plain)
                elif item.isdigit():
                    item = int(item)  # ASCII digits, as _AWKWARD let through
                elif first in _NUMERIC or item in resolved:
                    found = resolved.get(item, GIVE_UP)
                    if found is GIVE_UP:
                        found = resolved[item] = plain(item)
                    item = found
                # else: a plain scalar that is a string, as it is
            else:
                item = _NOTHING
            if item is GIVE_UP:
                raise _Out
            if indent == cur_indent and key and not dash and not cur_is_list and pending is None:
                if key in cur:
                    raise _Out  # a duplicate: libyaml's pass names it with its line
                if key not in keys:
                    if key in _NULLS or key in _BOOLS or len(key) > _LONGEST_KEY:
                        raise _Out  # a key that is not a string, or too long
                    keys.add(key)
                if item is _NOTHING:
                    pending = [indent, cur, key]
                else:
                    cur[key] = item
                continue
        started = True
        if item is GIVE_UP:
            raise _Out
        if key and key not in keys:
            if key in _NULLS or key in _BOOLS or len(key) > _LONGEST_KEY:
                raise _Out  # a key that is not a string, or too long
            keys.add(key)

        if pending is not None:
            owner, container, slot = pending
            pending = None
            if indent > owner or (indent == owner and dash and slot is not None):
                child: Any = [] if dash else {}
                if slot is None:
                    container.append(child)
                else:
                    container[slot] = child
                stack.append([indent, child, dash, indent == owner])
            elif slot is None:
                container.append(None)
            else:
                container[slot] = None
        elif root is GIVE_UP:
            if indent != 0:
                raise _Out
            root = [] if dash else {}
            stack.append([0, root, dash, False])

        while stack and stack[-1][0] > indent:
            stack.pop()
        if not stack:
            raise _Out  # a second top-level value
        top = stack[-1]
        if top[0] != indent:
            raise _Out  # a continuation line, or indentation libyaml must judge
        if top[2] and not dash and top[3]:
            stack.pop()
            top = stack[-1]
        container = top[1]

        if top[2]:  # a list: this line is one of its items
            if not dash:
                raise _Out
            if not key:
                if item is _NOTHING:
                    pending = [indent, container, None]
                else:
                    container.append(item)
                cur_indent, cur, cur_is_list = indent, container, True
                continue
            # "- key: value" starts a mapping at the column of its key.
            mapping: dict[str, Any] = {}
            container.append(mapping)
            stack.append([column, mapping, False, False])
            indent, container = column, mapping
        elif dash or not key:
            raise _Out
        if key in container:
            raise _Out  # a duplicate: libyaml's pass names it with its line
        if item is _NOTHING:
            pending = [indent, container, key]
        else:
            container[key] = item
        cur_indent, cur, cur_is_list = indent, container, False
    if root is GIVE_UP:
        raise _Out  # nothing but comments: libyaml's pass says the file is empty
    if pending is not None:
        _, container, slot = pending
        if slot is None:
            container.append(None)
        else:
            container[slot] = None
    return root


def _split(line: str, started: bool) -> tuple[int, bool, int, str, str] | object | None:
    """A line the one-call pattern did not take apart, as (indent, starts with "- ",
    column after the "- ", key or "", value text or ""); None for nothing to read (a
    comment), `_START` for the document's start marker."""
    s = line.lstrip(" ")
    indent = len(line) - len(s)
    hash_at = s.find(" #")
    if hash_at >= 0:
        if "'" in s[:hash_at] or '"' in s[:hash_at]:
            raise _Out  # a "#" that may be inside quotes
        s = s[:hash_at]
    s = s.rstrip(" ")
    if not s:
        return None
    if indent == 0 and (s[:3] == "---" or s[:3] == "..." or s[0] == "%"):
        if s == "---" and not started:
            return _START  # the one document's start marker
        raise _Out
    dash = s[0] == "-" and (len(s) == 1 or s[1] == " ")
    rest = s[1:].lstrip(" ") if dash else s
    column = indent + len(s) - len(rest)
    if rest[:1] == "-" and (len(rest) == 1 or rest[1] == " "):
        raise _Out  # "- - a"
    if not rest or rest[0] in "[{'\"":
        return indent, dash, column, "", rest
    if rest[-1] == ":":
        key, item = rest[:-1], ""
    else:
        colon = rest.find(": ")
        if colon < 0:
            return indent, dash, column, "", rest
        key, item = rest[:colon], rest[colon + 2 :].lstrip(" ")
    if _KEY.fullmatch(key) is None:
        raise _Out
    return indent, dash, column, key, item


def _uncommented(s: str) -> str:
    """``s`` without a comment at its end (empty if it is one)."""
    if s[0] == "#":
        return ""
    hash_at = s.find(" #")
    if hash_at < 0:
        return s
    if "'" in s[:hash_at] or '"' in s[:hash_at]:
        raise _Out  # a "#" that may be inside quotes
    return s[:hash_at].rstrip(" ")


def _value(s: str, resolved: dict[str, Any], plain: Any) -> Any:
    """The value of a scalar or flow collection written out as ``s`` (`_NOTHING` for
    none), or GIVE_UP."""
    if not s:
        return _NOTHING
    first = s[0]
    if first in _INDICATORS:
        if first == "[" or first == "{":
            return _flow(s, resolved, plain)
        if first == '"':
            inner = s[1:-1]
            if len(s) < 2 or s[-1] != '"' or '"' in inner or "\\" in inner:
                return GIVE_UP
            return inner
        if first == "'":
            inner = s[1:-1]
            if len(s) < 2 or s[-1] != "'" or "'" in inner.replace("''", ""):
                return GIVE_UP
            return inner.replace("''", "'")
        if first != "-" or len(s) < 2 or s[1] == " ":
            return GIVE_UP
    if ": " in s or s[-1] == ":":
        return GIVE_UP  # "a: b: c" is an error for libyaml to name
    found = resolved.get(s, GIVE_UP)
    if found is GIVE_UP:
        found = resolved[s] = plain(s)
    return found


class _Out(Exception):
    pass


#: "no value on this line" (a "key:" or a "-" that a block may follow).
_NOTHING: Final = object()


def _flow(s: str, resolved: dict[str, Any], plain: Any) -> Any:
    """A one-line flow collection that is the whole of ``s``, or GIVE_UP."""
    if len(s) > _LONGEST_KEY:
        return GIVE_UP  # a key in it may be too long for libyaml (see _LONGEST_KEY)
    inner = s[1:-1]
    if s[-1] == ("]" if s[0] == "[" else "}") and _NOT_FLAT.search(inner) is None:
        # Flat: no nesting, quotes or comments, so "," and ":" only separate.
        if s[0] == "[":
            if ":" in inner:
                return GIVE_UP  # [a: b] is a list of mappings
            if "," not in inner:
                text = inner.strip(" ")
                if not text:
                    return []
                return [_flat_scalar(text, resolved, plain)]
            return [_flat_scalar(text.strip(" "), resolved, plain) for text in inner.split(",")]
        mapping: dict[str, Any] = {}
        if not inner.strip(" "):
            return mapping
        for pair in inner.split(","):
            key, colon, text = pair.partition(":")
            if not colon or text[:1] != " " or ":" in text:
                return GIVE_UP  # {a} or {a:b}, which libyaml reads in its own ways
            key = _flat_scalar(key.strip(" "), resolved, plain)
            if type(key) is not str or key in mapping or key == "<<":
                return GIVE_UP  # not a string, a duplicate, or the merge key
            mapping[key] = _flat_scalar(text.strip(" "), resolved, plain)
        return mapping
    try:
        found, end = _flow_at(s, 0, resolved, plain)
    except _Out:
        return GIVE_UP
    if end != len(s):
        return GIVE_UP
    return found


def _flat_scalar(text: str, resolved: dict[str, Any], plain: Any) -> Any:
    """The value of the plain scalar ``text``, an item of a flat flow collection."""
    if not text:
        raise _Out  # [a, , b] or a trailing ",": libyaml's to judge
    first = text[0]
    if first in _INDICATORS and (first != "-" or len(text) < 2 or text[1] == " "):
        raise _Out
    if first not in _NUMERIC and text not in resolved:
        return text
    if text.isdigit():
        return int(text)  # ASCII digits, as _AWKWARD let through
    found = resolved.get(text, GIVE_UP)
    if found is GIVE_UP:
        found = resolved[text] = plain(text)
    return found


def _spaces(s: str, at: int) -> int:
    while at < len(s) and s[at] == " ":
        at += 1
    return at


def _flow_at(s: str, at: int, resolved: dict[str, Any], plain: Any) -> tuple[Any, int]:
    # A flow value starting at s[at] (no spaces before it) and where it ends.
    if at >= len(s):
        raise _Out
    first = s[at]
    if first == "[" or first == "{":
        mapping = first == "{"
        close = "}" if mapping else "]"
        container: Any = {} if mapping else []
        at = _spaces(s, at + 1)
        if at < len(s) and s[at] == close:
            return container, at + 1
        while True:
            if mapping:
                key, at = _flow_at(s, at, resolved, plain)
                if type(key) is not str or key in container or key == "<<":
                    raise _Out  # not a string, a duplicate, or the merge key
                at = _spaces(s, at)
                if s[at : at + 2] != ": ":
                    raise _Out
                item, at = _flow_at(s, _spaces(s, at + 2), resolved, plain)
                container[key] = item
            else:
                item, at = _flow_at(s, at, resolved, plain)
                container.append(item)
            at = _spaces(s, at)
            if at >= len(s):
                raise _Out
            if s[at] == close:
                return container, at + 1
            if s[at] != ",":
                raise _Out
            at = _spaces(s, at + 1)
            if at >= len(s) or s[at] in ",]}":
                raise _Out  # an empty or trailing entry: libyaml's to judge
    if first == "'":
        end = s.find("'", at + 1)
        if end < 0 or s[end + 1 : end + 2] == "'":
            raise _Out  # unclosed, or a '' inside: the full parser's
        return s[at + 1 : end], end + 1
    if first == '"':
        end = s.find('"', at + 1)
        if end < 0 or "\\" in s[at + 1 : end]:
            raise _Out
        return s[at + 1 : end], end + 1
    match = _FLOW_PLAIN.match(s, at)
    if match is None:
        raise _Out
    text = match.group().rstrip(" ")
    found = resolved.get(text, GIVE_UP)
    if found is GIVE_UP:
        found = resolved[text] = plain(text)
    return found, at + len(text)
