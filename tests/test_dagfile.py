"""DAG files (DESIGN.md §6): every mistake named with its line and path, nothing coerced,
YAML 1.2 read by our own event builder, ids given as a run would give them."""

from __future__ import annotations

import copy
import io
import json
import math
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import hypothesis
import pytest
from helpers import same
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

import dagtrio
from dagtrio import ActionRegistry, NodeCtx, NodeSpec
from dagtrio._specfile import load
from dagtrio._specfile.load import FileProblem
from dagtrio._specfile.schema import DagFile, DagFileError, load_file

EXAMPLES = sorted((Path(__file__).parent.parent / "examples" / "dags").glob("*.yaml"))


# --- helpers ------------------------------------------------------------------------------


def write(tmp_path: Path, text: str | bytes, name: str = "dag.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str | bytes, name: str = "dag.yaml") -> list[Any]:
    """The problems `load_file` reports for ``text`` (it must refuse it)."""
    path = write(tmp_path, text, name)
    with pytest.raises(DagFileError) as info:
        load_file(path)
    assert info.value.file == path
    return info.value.problems


def only_problem(tmp_path: Path, text: str | bytes, name: str = "dag.yaml") -> tuple[Any, ...]:
    problems = problems_of(tmp_path, text, name)
    assert len(problems) == 1, problems
    return problems[0]


def loads(tmp_path: Path, text: str, name: str = "dag.yaml") -> DagFile:
    return load_file(write(tmp_path, text, name))


def parse(text: str) -> Any:
    return load._parse_yaml(text, positions=False)[0]


def ruamel_load(text: str) -> Any:
    return YAML(typ="safe", pure=True).load(text)


def ruamel_dump(value: Any) -> str:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    out = io.StringIO()
    yaml.dump(value, out)
    return out.getvalue()


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into ``value``, in document order, the root's included."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from paths(item, (*prefix, i))


# A node whose first line (line 6 of the file) sets one field; the rest of the node
# fills in what that field leaves out.
def one_field(field: str, value: str) -> str:
    rest = "".join(
        f"    {name}: {text}\n"
        for name, text in (("id", "second"), ("action", "run"))
        if name != field
    )
    return (
        "dag: typed\n"  # 1
        "actions: mypkg.actions\n"  # 2
        "nodes:\n"  # 3
        "  - id: first\n"  # 4
        "    action: run\n"  # 5
        f"  - {field}: {value}\n"  # 6
        f"{rest}"
    )


# --- 1. bad input: each mistake with its line, its path and what is wrong ------------------

WRONG_TYPES = [
    ("action", "[fetch]", "expected a string, got a list"),
    ("action", "3", "expected a string, got the integer 3"),
    ("action", "null", "expected a string, got null"),
    ("id", "3", "expected a string or null, got the integer 3"),
    ("id", "[a]", "expected a string or null, got a list"),
    ("deps", "fetch", "expected a list of node ids, got the string 'fetch' (for one dep"),
    ("deps", "[first, 3]", "expected a list of node ids, one of them is the integer 3"),
    ("deps", "{first: 1}", "expected a list of node ids, got a mapping"),
    ("inputs", "[1, 2]", "expected a mapping of input names to values, got a list"),
    ("inputs", "query", "expected a mapping of input names to values, got the string 'query'"),
    ("inputs", "{1: one}", "input names must be strings, one of them is the integer 1"),
    ("timeout", '"5"', "expected a number or null, got the string '5' (write 5 without quotes)"),
    ("timeout", "five", "expected a number or null, got the string 'five'"),
    ("timeout", "true", "expected a number or null, got true"),
    ("try_count", '"3"', "expected an integer, got the string '3' (write 3 without quotes)"),
    ("try_count", "3.0", "expected an integer, got the number 3.0"),
    ("try_count", "true", "expected an integer, got true"),
    ("try_count", "null", "expected an integer, got null"),
    ("retry_delay", "'0.5'", "expected a number, got the string '0.5' (write 0.5 without"),
    ("retry_delay", "[]", "expected a number, got a list"),
    ("branch", "3", "expected a string or null, got the integer 3"),
    ("branch", "{a: b}", "expected a string or null, got a mapping"),
    ("cache", "yes", "expected true or false or null, got the string 'yes' (YAML 1.2: only"),
    ("cache", "1", "expected true or false or null, got the integer 1"),
    ("executor", "4", "expected a string or null, got the integer 4"),
    ("executor", "[thread]", "expected a string or null, got a list"),
    ("max_retry_delay", '"10"', "expected a number or null, got the string '10' (write 10"),
    ("retry_jitter", "true", "expected a number, got true"),
    ("retry_jitter", "half", "expected a number, got the string 'half'"),
    ("defer", "yes", "expected true or false, got the string 'yes' (YAML 1.2: only true and"),
    ("defer", "no", "expected true or false, got the string 'no' (YAML 1.2"),
    ("defer", "on", "expected true or false, got the string 'on' (YAML 1.2"),
    ("defer", "off", "expected true or false, got the string 'off' (YAML 1.2"),
    ("defer", "1", "expected true or false, got the integer 1"),
    ("defer", "null", "expected true or false, got null"),
    ("estimate", "[]", "expected a number or null, got a list"),
    ("estimate", "soon", "expected a number or null, got the string 'soon'"),
    ("priority", "1.5", "expected an integer, got the number 1.5"),
    ("priority", "high", "expected an integer, got the string 'high'"),
    ("uses", "[llm]", "expected a mapping of resource names to amounts or null, got a list"),
    ("uses", "{llm: one}", "the amount of 'llm' must be an integer, got the string 'one'"),
]


def test_every_nodespec_field_has_a_wrong_type_case() -> None:
    assert {field for field, _, _ in WRONG_TYPES} == {f.name for f in attrs.fields(NodeSpec)}


@pytest.mark.parametrize(("field", "value", "message"), WRONG_TYPES)
def test_a_field_of_the_wrong_type_is_named_with_its_line(
    tmp_path: Path, field: str, value: str, message: str
) -> None:
    line, where, what = only_problem(tmp_path, one_field(field, value))
    assert (line, where) == (6, f"nodes[1].{field}")
    assert message in what


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("try_count", "0", "must be >= 1 (it counts attempts), got 0"),
        ("try_count", "-2", "must be >= 1"),
        ("timeout", "0", "must be > 0"),
        ("timeout", "-1", "must be > 0"),
        ("timeout", ".nan", "must be > 0, got nan"),
        ("retry_delay", "-0.5", "must be >= 0"),
        ("retry_delay", ".inf", "must be finite"),
        ("retry_jitter", "2", "must be a fraction from 0 to 1"),
        ("max_retry_delay", "-1", "must be >= 0"),
        ("estimate", ".inf", "must be finite (seconds)"),
        ("branch", "main//x", "'main//x' is not a path"),
        ("branch", "''", "'' is not a path"),
        ("id", "''", "must be a non-empty string"),
        ("action", "''", "must be a non-empty string"),
        ("deps", "['']", "must be non-empty strings, got ''"),
        ("executor", "''", "must be a non-empty string or None"),
    ],
)
def test_a_value_of_the_right_type_but_out_of_range_is_named_with_its_line(
    tmp_path: Path, field: str, value: str, message: str
) -> None:
    line, where, what = only_problem(tmp_path, one_field(field, value))
    assert (line, where) == (6, f"nodes[1].{field}")
    assert message in what


def test_the_design_examples_message_for_a_string_of_deps(tmp_path: Path) -> None:
    text = "actions: m\nnodes:\n  - id: fetch\n    action: get\n  - action: parse\n"
    text += "    deps: fetch\n"
    path = write(tmp_path, text)
    with pytest.raises(DagFileError) as info:
        load_file(path)
    assert str(info.value) == (
        f"{path}:6: nodes[1].deps: expected a list of node ids, got the string 'fetch'"
        " (for one dep, write [fetch])"
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("needs", "[first]", "unknown field 'needs': did you mean deps?"),
        ("dependencies", "[first]", "unknown field 'dependencies': did you mean deps?"),
        ("runAfter", "[first]", "unknown field 'runAfter': did you mean deps?"),
        ("depends_on", "[first]", "unknown field 'depends_on': did you mean deps?"),
        (
            "retries",
            "2",
            "unknown field 'retries': dagtrio counts attempts, not retries: try_count is"
            " every attempt, the first included, so retries: 2 is try_count: 3",
        ),
        ("max_retries", "0", "so max_retries: 0 is try_count: 1"),
        ("retries", "yes", "so retries: yes is try_count: N + 1"),
        ("name", "x", "unknown field 'name': did you mean id?"),
        ("with", "{a: 1}", "unknown field 'with': did you mean inputs?"),
        ("timeout_seconds", "5", "did you mean timeout (in seconds)?"),
        ("try_cont", "2", "unknown field 'try_cont': did you mean try_count?"),
        ("colour", "red", "unknown field 'colour' (the fields are action, id, deps, inputs,"),
    ],
)
def test_an_unknown_node_field_is_named_with_a_hint(
    tmp_path: Path, field: str, value: str, message: str
) -> None:
    line, where, what = only_problem(tmp_path, one_field(field, value))
    assert (line, where) == (6, f"nodes[1].{field}")
    assert message in what


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("tasks", "unknown field 'tasks': did you mean nodes?"),
        ("registry", "unknown field 'registry': did you mean actions?"),
        ("option", "unknown field 'option': did you mean options?"),
        ("colour", "unknown field 'colour' (the fields are dag, actions, hooks, options,"),
    ],
)
def test_an_unknown_top_level_field_is_named_and_the_nodes_still_checked(
    tmp_path: Path, field: str, message: str
) -> None:
    text = f"actions: m\n{field}: 1\nnodes:\n  - action: x\n    try_count: '2'\n"
    first, second = problems_of(tmp_path, text)
    assert first[:2] == (2, field) and message in first[2]
    assert second == (
        5,
        "nodes[0].try_count",
        "expected an integer, got the string '2' (write 2 without quotes)",
    )


@pytest.mark.parametrize(
    ("options", "line", "where", "message"),
    [
        ("  parallelism: 4\n", 3, "options.parallelism", "did you mean max_parallel?"),
        ("  max_parallel: '4'\n", 3, "options.max_parallel", "expected an integer, got the"),
        ("  max_parallel: 0\n", 3, "options.max_parallel", "must be at least 1, got 0"),
        ("  event_capacity: -1\n", 3, "options.event_capacity", "must be at least 0, got -1"),
        ("  on_failure: stop\n", 3, "options.on_failure", "expected one of 'skip', 'fail_fast',"),
        ("  hook_errors: no\n", 3, "options.hook_errors", "expected one of 'fail', 'isolate',"),
        ("  order: lifo\n", 3, "options.order", "expected one of 'fifo', 'critical_path'"),
        ("  limits: [gpu]\n", 3, "options.limits", "expected a mapping of resource names"),
        ("  limits: {gpu: two}\n", 3, "options.limits", "the limit of 'gpu' must be an integer"),
        ("  limits: {gpu: 0}\n", 3, "options.limits", "must be"),
    ],
)
def test_bad_options_are_named_with_their_line(
    tmp_path: Path, options: str, line: int, where: str, message: str
) -> None:
    text = f"actions: m\noptions:\n{options}nodes: [{{action: x}}]\n"
    got = only_problem(tmp_path, text)
    assert got[:2] == (line, where) and message in got[2]


@pytest.mark.parametrize(
    ("text", "line", "where", "message"),
    [
        ("nodes: [{action: x}]\n", 1, "actions", "missing: name the module that registers"),
        ("actions: m\n", 1, "nodes", "missing: a DAG file lists its nodes under nodes:"),
        ("actions: m\nnodes: []\n", 2, "nodes", "the list is empty"),
        ("actions: [m]\nnodes: [{action: x}]\n", 1, "actions", "expected a string, got a list"),
        ("dag: ''\nactions: m\nnodes: [{action: x}]\n", 1, "dag", "must not be empty"),
        ("actions: m\nhooks: a:b\nnodes: [{action: x}]\n", 2, "hooks", "got the string 'a:b'"),
        ("actions: m\nnodes:\n  - {id: a}\n", 3, "nodes[0].action", "every node names the"),
        ("actions: m\nnodes:\n  - fetch\n", 3, "nodes[0]", "write the node as '- id: fetch'"),
    ],
)
def test_bad_top_level_values_are_named_with_their_line(
    tmp_path: Path, text: str, line: int, where: str, message: str
) -> None:
    got = only_problem(tmp_path, text)
    assert got[:2] == (line, where) and message in got[2]


def test_a_duplicate_id_names_both_nodes(tmp_path: Path) -> None:
    text = "actions: m\nnodes:\n  - id: a\n    action: x\n  - id: b\n    action: x\n"
    text += "  - id: a\n    action: y\n"
    assert only_problem(tmp_path, text) == (
        7,
        "nodes[2].id",
        "the id 'a' is already the id of nodes[0]",
    )


def test_a_duplicate_of_a_node_that_failed_its_checks_is_still_a_duplicate(
    tmp_path: Path,
) -> None:
    text = "actions: m\nnodes:\n  - {id: a, action: x}\n  - {id: a, action: x, try_count: '2'}\n"
    assert problems_of(tmp_path, text) == [
        (
            4,
            "nodes[1].try_count",
            "expected an integer, got the string '2' (write 2 without quotes)",
        ),
        (4, "nodes[1].id", "the id 'a' is already the id of nodes[0]"),
    ]


def test_the_later_of_two_nodes_with_one_id_is_the_duplicate(tmp_path: Path) -> None:
    text = "actions: m\nnodes:\n  - {id: a, action: x, try_count: '2'}\n  - {id: a, action: x}\n"
    assert [p[:2] for p in problems_of(tmp_path, text)] == [
        (3, "nodes[0].try_count"),
        (4, "nodes[1].id"),
    ]


def test_a_dep_on_an_unknown_node_points_at_the_dep(tmp_path: Path) -> None:
    text = (
        "actions: m\n"
        "nodes:\n"
        "  - id: fetch\n"
        "    action: x\n"
        "  - id: parse\n"
        "    action: x\n"
        "    deps:\n"
        "      - fetch\n"
        "      - fetc\n"  # 9
        "      - ghost\n"  # 10
    )
    assert problems_of(tmp_path, text) == [
        (9, "nodes[1].deps[1]", "no node has the id 'fetc'; did you mean 'fetch'?"),
        (10, "nodes[1].deps[2]", "no node has the id 'ghost'"),
    ]


def test_a_dep_on_a_node_that_failed_its_checks_is_not_unknown(tmp_path: Path) -> None:
    text = "actions: m\nnodes:\n  - {id: a, action: 3}\n  - {id: b, action: x, deps: [a]}\n"
    assert only_problem(tmp_path, text)[:2] == (3, "nodes[0].action")


def test_a_cycle_is_shown_as_its_path(tmp_path: Path) -> None:
    text = (
        "actions: m\n"
        "nodes:\n"
        "  - {id: a, action: x, deps: [c]}\n"
        "  - {id: b, action: x, deps: [a]}\n"
        "  - {id: c, action: x, deps: [b]}\n"
        "  - {id: d, action: x}\n"
    )
    line, where, message = only_problem(tmp_path, text)
    assert (line, where) == (3, "nodes[0].deps")
    assert message == "the deps form a cycle: a → b → c → a"


def test_a_node_on_itself_is_a_cycle_of_one(tmp_path: Path) -> None:
    text = "actions: m\nnodes:\n  - {id: a, action: x}\n  - {id: b, action: x, deps: [b]}\n"
    assert only_problem(tmp_path, text) == (4, "nodes[1].deps", "the deps form a cycle: b → b")


def test_a_file_that_is_not_yaml(tmp_path: Path) -> None:
    text = "actions: m\nnodes:\n  - action: x\n    inputs: {a: [1, 2}\n"
    line, where, message = only_problem(tmp_path, text)
    assert (line, where) == (4, "")
    assert message.startswith("is not valid YAML: ")


def test_a_colon_inside_brackets_gets_a_hint(tmp_path: Path) -> None:
    text = "actions: m\nhooks: [mod:hook]\nnodes: [{action: x}]\n"
    line, _, message = only_problem(tmp_path, text)
    assert line == 2 and "quote a value that holds a colon" in message


def test_a_json_file_that_is_not_json(tmp_path: Path) -> None:
    text = '{\n  "actions": "m",\n  "nodes": [\n    {"action": "x",}\n  ]\n}\n'
    line, where, message = only_problem(tmp_path, text, "dag.json")
    assert (line, where) == (4, "")
    assert message.startswith("is not valid JSON: ") and "(column " in message


def test_json_constants_that_are_not_json_are_refused(tmp_path: Path) -> None:
    text = '{"actions": "m", "nodes": [{"action": "x", "timeout": Infinity}]}'
    _, _, message = only_problem(tmp_path, text, "dag.json")
    assert message == "is not valid JSON: Infinity is not a JSON value"


@pytest.mark.parametrize(
    ("raw", "line", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 1, "is not a text file (not UTF-8)"),
        (b"actions: m\nnodes:\n  - action: \xff\xfe\n", 3, "is not a text file (not UTF-8)"),
        (b"actions: m\x00\x00\nnodes: []\n", None, "is not a text file (it holds NUL bytes)"),
        ("actions: m\n".encode("utf-16"), 1, "is not a text file (not UTF-8)"),
    ],
)
def test_a_binary_file_is_refused(
    tmp_path: Path, raw: bytes, line: int | None, message: str
) -> None:
    got = only_problem(tmp_path, raw)
    assert got[:2] == (line, "") and got[2].startswith(message)


@pytest.mark.parametrize("text", ["", " ", "\n\n", " \t\n  \r\n", "# only a comment\n"])
def test_an_empty_file_is_refused(tmp_path: Path, text: str) -> None:
    assert only_problem(tmp_path, text) == (
        None,
        "",
        "the file is empty; a DAG file is a mapping with at least `actions` and `nodes`",
    )


def test_a_file_larger_than_max_bytes_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(load, "MAX_BYTES", 1000)
    text = "actions: m\nnodes:\n" + "  - action: x\n" * 200
    path = write(tmp_path, text, "dag.yaml")

    def no_reading(self: Path) -> bytes:
        raise AssertionError("a file over the limit was read")

    monkeypatch.setattr(Path, "read_bytes", no_reading)  # a fact, not a duration
    with pytest.raises(DagFileError) as info:
        load_file(path)
    [(line, where, message)] = info.value.problems
    assert (line, where) == (None, "")
    assert "MiB" in message and "DAG files are read whole" in message


def test_a_huge_file_is_refused_at_the_real_limit_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "dag.yaml"
    with path.open("wb") as file:  # sparse: nothing of it is written, or read
        file.truncate(load.MAX_BYTES + 1)
    with pytest.raises(DagFileError) as info:
        load_file(path)
    [(line, where, message)] = info.value.problems
    assert (line, where) == (None, "")
    assert f"up to {load.MAX_BYTES:,} bytes ({load.MAX_BYTES // 2**20} MiB" in message


def test_the_size_of_a_refused_file_is_shown_larger_than_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "dag.yaml"
    with path.open("wb") as file:
        file.truncate(load.MAX_BYTES + 1)
    with pytest.raises(DagFileError) as info:
        load_file(path)
    [(_, _, message)] = info.value.problems
    shown = re.search(r"the file is ([0-9,]+) bytes", message)
    limit = re.search(r"up to ([0-9,]+) bytes", message)
    assert shown and limit, message
    assert int(shown[1].replace(",", "")) > int(limit[1].replace(",", ""))


def test_several_documents_are_refused_at_the_second(tmp_path: Path) -> None:
    text = "actions: m\nnodes: [{action: x}]\n---\nactions: n\nnodes: [{action: y}]\n"
    assert only_problem(tmp_path, text) == (
        3,
        "",
        "holds several YAML documents (---); a DAG file is one document",
    )


@pytest.mark.parametrize(
    ("text", "line", "holds"),
    [
        ("- action: x\n- action: y\n", 1, "a list"),
        ("just a string\n", 1, "the string 'just a string'"),
        ("\n\n42\n", 3, "the integer 42"),
        ("null\n", 1, "null"),
    ],
)
def test_a_top_level_that_is_not_a_mapping_is_refused(
    tmp_path: Path, text: str, line: int, holds: str
) -> None:
    assert only_problem(tmp_path, text) == (
        line,
        "",
        f"a DAG file is a mapping with at least `actions` and `nodes`; this one holds {holds}",
    )


def test_nodes_as_a_mapping_instead_of_a_list(tmp_path: Path) -> None:
    text = "actions: m\nnodes:\n  fetch:\n    action: x\n"
    assert only_problem(tmp_path, text) == (2, "nodes", "expected a list, got a mapping")


def test_a_bad_default_is_reported_once_at_defaults(tmp_path: Path) -> None:
    text = (
        "actions: m\n"
        "defaults:\n"
        "  try_count: '3'\n"  # 3
        "  needs: [a]\n"  # 4
        "nodes:\n" + "".join(f"  - {{id: n{i}, action: x}}\n" for i in range(5))
    )
    assert problems_of(tmp_path, text) == [
        (
            3,
            "defaults.try_count",
            "expected an integer, got the string '3' (write 3 without quotes)",
        ),
        (4, "defaults.needs", "unknown field 'needs': did you mean deps?"),
    ]


def test_a_default_out_of_range_is_reported_once_at_defaults(tmp_path: Path) -> None:
    text = "actions: m\ndefaults:\n  timeout: -1\nnodes:\n  - {id: a, action: x}\n"
    text += "  - {id: b, action: x}\n"
    assert problems_of(tmp_path, text) == [(3, "defaults.timeout", "must be > 0, got -1.0")]


def test_two_defaults_out_of_range_are_each_reported_once_at_defaults(tmp_path: Path) -> None:
    text = "actions: m\ndefaults:\n  try_count: 0\n  timeout: -1\nnodes:\n"
    text += "  - {id: a, action: x}\n  - {id: b, action: x}\n"
    assert [p[:2] for p in problems_of(tmp_path, text)] == [
        (3, "defaults.try_count"),
        (4, "defaults.timeout"),
    ]


def test_defaults_with_an_id(tmp_path: Path) -> None:
    text = "actions: m\ndefaults:\n  retry_delay: 1\n  id: same\nnodes:\n  - action: x\n"
    text += "  - action: x\n"
    assert only_problem(tmp_path, text) == (
        4,
        "defaults.id",
        "each node needs its own id; it cannot be a default",
    )


def test_good_defaults_apply_to_every_node_and_a_node_overrides_them(tmp_path: Path) -> None:
    text = (
        "actions: m\ndefaults:\n  try_count: 3\n  timeout: 10\n  action: x\n"
        "nodes:\n  - {id: a}\n  - {id: b, try_count: 1, action: y}\n"
    )
    a, b = loads(tmp_path, text).specs
    assert (a.action, a.try_count, a.timeout) == ("x", 3, 10.0)
    assert (b.action, b.try_count, b.timeout) == ("y", 1, 10.0)


# --- 2. every problem of a file at once ----------------------------------------------------

FIVE_MISTAKES = """\
dag: five
actions: mypkg.actions
nodes:
  - id: fetch
    action: get
    deps: [ghost]
  - id: parse
    action: parse
    try_count: "3"
  - id: store
    action: put
    needs: [parse]
  - id: index
    action: put
    deps: parse
  - id: fetch
    action: get
    defer: yes
"""


def test_every_problem_of_a_file_is_reported_at_once_in_line_order(tmp_path: Path) -> None:
    path = write(tmp_path, FIVE_MISTAKES)
    with pytest.raises(DagFileError) as info:
        load_file(path)
    problems = info.value.problems
    assert [p[:2] for p in problems] == [
        (6, "nodes[0].deps[0]"),
        (9, "nodes[1].try_count"),
        (12, "nodes[2].needs"),
        (15, "nodes[3].deps"),
        (16, "nodes[4].id"),
        (18, "nodes[4].defer"),
    ]
    assert [line for line, _, _ in problems] == sorted(line for line, _, _ in problems)
    assert str(info.value).splitlines() == [f"{path}:{a}: {b}: {c}" for a, b, c in problems]


def test_five_mistakes_in_five_nodes_are_five_problems(tmp_path: Path) -> None:
    text = "actions: m\nnodes:\n" + "".join(
        f"  - {{id: n{i}, action: x, {field}: {value}}}\n"
        for i, (field, value) in enumerate(
            [
                ("timeout", "'5'"),
                ("deps", "n0"),
                ("cache", "on"),
                ("runAfter", "[n0]"),
                ("inputs", "[1]"),
            ]
        )
    )
    problems = problems_of(tmp_path, text)
    assert [(line, where) for line, where, _ in problems] == [
        (3, "nodes[0].timeout"),
        (4, "nodes[1].deps"),
        (5, "nodes[2].cache"),
        (6, "nodes[3].runAfter"),
        (7, "nodes[4].inputs"),
    ]


def test_several_mistakes_in_one_node_are_each_reported(tmp_path: Path) -> None:
    text = (
        "actions: m\nnodes:\n  - action: x\n    try_count: 0\n    timeout: '5'\n"
        "    branch: a//b\n    retry_jitter: 3\n    needs: []\n"
    )
    assert [p[:2] for p in problems_of(tmp_path, text)] == [
        (4, "nodes[0].try_count"),
        (5, "nodes[0].timeout"),
        (6, "nodes[0].branch"),
        (7, "nodes[0].retry_jitter"),
        (8, "nodes[0].needs"),
    ]


def test_every_problem_in_options_is_reported(tmp_path: Path) -> None:
    text = "actions: m\noptions:\n  parallelism: 3\n  max_parallel: 0\nnodes: [{action: x}]\n"
    assert [p[:2] for p in problems_of(tmp_path, text)] == [
        (3, "options.parallelism"),
        (4, "options.max_parallel"),
    ]


def test_many_problems_are_all_kept_but_the_message_is_capped(tmp_path: Path) -> None:
    text = "actions: m\nnodes:\n" + "".join(
        f"  - {{action: x, try_count: '{i}'}}\n" for i in range(60)
    )
    path = write(tmp_path, text)
    with pytest.raises(DagFileError) as info:
        load_file(path)
    assert len(info.value.problems) == 60
    lines = str(info.value).splitlines()
    assert len(lines) == 51 and lines[-1] == f"{path}: ... and 10 more problems"


# --- 3. nothing is coerced; JSON and YAML are one schema -----------------------------------

DOCUMENT: dict[str, Any] = {
    "dag": "same",
    "actions": "mypkg.actions:registry",
    "hooks": ["mypkg.hooks:log"],
    "options": {"max_parallel": 4, "on_failure": "fail_fast", "hook_errors": "isolate"},
    "defaults": {"try_count": 2, "retry_delay": 0.5},
    "nodes": [
        {"id": "a", "action": "get", "inputs": {"url": "http://x", "n": [1, 2.5, None, True]}},
        {"action": "get", "timeout": 3, "branch": "main/side", "cache": False},
        {
            "id": "c",
            "action": "put",
            "deps": ["a", "get-1"],
            "executor": "thread",
            "max_retry_delay": 8,
            "retry_jitter": 0.25,
            "defer": True,
            "estimate": 1.5,
            "priority": -2,
            "uses": {},
            "try_count": 5,
        },
    ],
}


def test_json_and_yaml_give_the_same_dag_for_the_same_document(tmp_path: Path) -> None:
    from_json = loads(tmp_path, json.dumps(DOCUMENT, indent=2), "dag.json")
    from_flow = loads(tmp_path, json.dumps(DOCUMENT), "flow.yaml")
    from_block = loads(tmp_path, ruamel_dump(DOCUMENT), "block.yaml")
    for other in (from_flow, from_block):
        assert other.specs == from_json.specs
        assert (other.dag, other.actions, other.hooks, other.options) == (
            from_json.dag,
            from_json.actions,
            from_json.hooks,
            from_json.options,
        )
    assert [s.id for s in from_json.specs] == ["a", "get-1", "c"]
    assert from_json.document.kind == "json" and from_block.document.kind == "yaml"
    c = from_json.specs[2]
    assert (c.try_count, c.retry_delay, c.max_retry_delay, c.defer) == (5, 0.5, 8.0, True)
    assert from_json.options.max_parallel == 4 and from_json.options.on_failure == "fail_fast"


def test_a_quoted_number_is_not_a_number_in_json_or_yaml(tmp_path: Path) -> None:
    json_text = '{\n  "actions": "m",\n  "nodes": [\n    {\n      "action": "x",\n'
    json_text += '      "try_count": "3"\n    }\n  ]\n}\n'
    yaml_text = "actions: m\nnodes:\n  - action: x\n    try_count: '3'\n"
    expected = "expected an integer, got the string '3' (write 3 without quotes)"
    assert only_problem(tmp_path, json_text, "dag.json") == (6, "nodes[0].try_count", expected)
    assert only_problem(tmp_path, yaml_text) == (4, "nodes[0].try_count", expected)
    # ...and the integer 3 is 3, not 3.0 or "3".
    spec = loads(tmp_path, "actions: m\nnodes:\n  - action: x\n    try_count: 3\n").specs[0]
    assert spec.try_count == 3 and type(spec.try_count) is int


@st.composite
def valid_dags(draw: st.DrawFn) -> dict[str, Any]:
    """A valid DAG file's document: every field of the right type, deps on earlier ids."""
    nodes: list[dict[str, Any]] = []
    for i in range(draw(st.integers(1, 5))):
        node: dict[str, Any] = {"action": draw(st.sampled_from(["get", "put"]))}
        if draw(st.booleans()):
            node["id"] = f"n{i}"
        earlier = [n["id"] for n in nodes if "id" in n]
        optional: dict[str, st.SearchStrategy[Any]] = {
            "deps": st.lists(st.sampled_from(earlier), unique=True) if earlier else st.just([]),
            "inputs": st.dictionaries(st.text(max_size=5), json_values(SCALARS), max_size=3),
            "timeout": st.none() | st.integers(1, 100) | st.floats(0.1, 100),
            "try_count": st.integers(1, 5),
            "retry_delay": st.integers(0, 5) | st.floats(0, 5),
            "branch": st.none() | st.sampled_from(["main", "main/side", "other"]),
            "cache": st.none() | st.booleans(),
            "executor": st.none() | st.sampled_from(["thread", "inline"]),
            "max_retry_delay": st.none() | st.floats(0, 60),
            "retry_jitter": st.floats(0, 1),
            "defer": st.booleans(),
            "estimate": st.none() | st.floats(0, 10),
            "priority": st.integers(-5, 5),
        }
        for field in draw(st.lists(st.sampled_from(sorted(optional)), unique=True)):
            node[field] = draw(optional[field])
        nodes.append(node)
    return {"actions": "m", "nodes": nodes}


@settings(max_examples=60, deadline=None)
@given(valid_dags())
def test_json_and_yaml_agree_on_any_valid_dag(document: dict[str, Any]) -> None:
    # JSON escapes every character; YAML reads some of them its own way (NEL and the
    # Unicode line separators are line breaks in YAML): a known limit of reading JSON
    # by another name as YAML, which the README states. A .json file is read as JSON.
    hypothesis.assume(
        not re.search(
            "[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]",
            json.dumps(document, ensure_ascii=False),
        )
    )

    with tempfile.TemporaryDirectory() as folder:
        from_json = loads(Path(folder), json.dumps(document), "dag.json")
        from_yaml = loads(Path(folder), ruamel_dump(copy.deepcopy(document)), "dag.yaml")
    assert from_json.specs == from_yaml.specs
    for spec, node in zip(from_json.specs, document["nodes"], strict=True):
        assert spec.try_count == node.get("try_count", 1)
        assert type(spec.try_count) is int and type(spec.retry_delay) is float


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("deps", '"fetch"'),
        ("try_count", "2.0"),
        ("try_count", "true"),
        ("timeout", '"1"'),
        ("defer", '"true"'),
        ("defer", "0"),
        ("cache", '"false"'),
        ("inputs", "[]"),
        ("branch", "1"),
    ],
)
def test_nothing_is_coerced_in_json(tmp_path: Path, field: str, value: str) -> None:
    text = f'{{"actions": "m",\n "nodes": [{{"action": "x",\n  "{field}": {value}}}]}}'
    line, where, _ = only_problem(tmp_path, text, "dag.json")
    assert (line, where) == (3, f"nodes[0].{field}")


def test_a_number_where_a_float_is_wanted_is_taken_as_a_float(tmp_path: Path) -> None:
    spec = loads(tmp_path, "actions: m\nnodes: [{action: x, timeout: 2, retry_delay: 1}]\n")
    assert spec.specs[0].timeout == 2.0 and type(spec.specs[0].timeout) is float
    assert type(spec.specs[0].retry_delay) is float


def test_a_duplicate_key_in_json_is_refused_as_in_yaml(tmp_path: Path) -> None:
    text = '{"actions": "m", "nodes": [{"action": "x", "id": "a", "id": "b"}]}'
    assert problems_of(tmp_path, text, "dag.yaml")  # refused as YAML
    assert problems_of(tmp_path, text, "dag.json")


@pytest.mark.parametrize(
    "inputs",
    [
        '{"a": 1, "a": 2}',  # a key twice
        '{"q": "\\ud83d\\ude00"}',  # an escaped emoji: a surrogate pair
        '{"q": "a\x7fb"}',  # DEL is a JSON character, not a YAML one
        '{"' + "k" * 1100 + '": 1}',  # YAML's implicit keys are at most 1024 characters
    ],
)
def test_a_problem_in_any_json_file_is_a_dag_file_error(tmp_path: Path, inputs: str) -> None:
    text = '{"actions": "m",\n "nodes": [{"action": 3,\n "inputs": ' + inputs + "}]}"
    if '"a": 1, "a": 2' in inputs:
        line, where, message = only_problem(tmp_path, text, "dag.json")
        assert (line, where) == (3, "")
        assert "appears twice" in message
        return
    # JSON that the YAML parser (which finds the lines) refuses: the problem still has
    # its path, without a line.
    line, where, _ = only_problem(tmp_path, text, "dag.json")
    assert where == "nodes[0].action"
    assert line in (2, None)


def test_deeply_nested_json_is_a_dag_file_error(tmp_path: Path) -> None:
    deep = "[" * 5000 + "]" * 5000
    text = '{"actions": "m", "nodes": [{"action": "x", "inputs": {"a": ' + deep + "}}]}"
    problems_of(tmp_path, text, "dag.json")


# --- 4. the YAML 1.2 event builder ---------------------------------------------------------

# Words other YAML loaders read as something else, and YAML's own punctuation.
TRICKY = st.sampled_from(
    [
        "yes", "no", "on", "off", "y", "n", "True", "NULL", "~", "null", "", " ", "-", "0o17",
        "0x1F", "0755", "1e3", ".inf", "-.inf", ".nan", "1_000", "0b11", "12:30", "2001-12-14",
        "<<", "=", "a: b", "- x", "# c", "&a", "*a", "!x", "%x", "@x", "`x", "'", '"', "{", "[",
        "a\nb", "\t", "é", "日本", "\u2028", "\x85",
    ]
)  # fmt: skip
# ruamel's dumper writes the key "\x85" (NEL) so that it reads back as " " (both loaders
# agree on that), which can make two keys one: no NEL in keys.
KEYS = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\x85"), max_size=12
) | TRICKY.filter(lambda s: s != "\x85")
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | TRICKY
)


def json_values(scalars: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
        max_leaves=16,
    )


# json.dumps escapes every non-ASCII character; two kinds of what it writes are not YAML
# (see the xfail tests below): DEL, which it leaves as it is, and the surrogate pairs of
# the characters beyond U+FFFF.
JSON_SAFE_CHARACTERS = st.characters(
    max_codepoint=0xFFFF, exclude_categories=("Cs",), exclude_characters="\x7f"
)
JSON_SAFE_TEXT = st.text(JSON_SAFE_CHARACTERS, max_size=30)
JSON_SAFE_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | JSON_SAFE_TEXT
    | TRICKY.filter(lambda s: s != "\x7f")
)
JSON_SAFE_KEYS = st.text(JSON_SAFE_CHARACTERS, max_size=12) | TRICKY


@settings(max_examples=150, deadline=None)
@given(
    st.recursive(
        JSON_SAFE_SCALARS,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(JSON_SAFE_KEYS, inner, max_size=4)
        ),
        max_leaves=16,
    )
)
def test_json_is_read_as_itself(value: Any) -> None:
    text = json.dumps(value)
    assert same(parse(text), value)
    assert same(parse(json.dumps(value, indent=2)), value)


@pytest.mark.xfail(
    strict=True,
    reason="JSON's escaped surrogate pairs (json.dumps of any character beyond U+FFFF) are"
    " refused by the YAML parser: JSON in a .yaml file is not always read",
    raises=FileProblem,
)
def test_json_with_a_character_beyond_the_bmp_is_read_as_itself() -> None:
    value = {"q": "😀"}
    assert parse(json.dumps(value)) == value


@pytest.mark.parametrize("char", ["\x7f", "\x1b", "\x07"])
def test_a_control_character_in_yaml_is_a_dag_file_error(tmp_path: Path, char: str) -> None:
    text = f"actions: m\nnodes:\n  - action: x{char}\n"
    line, _, message = only_problem(tmp_path, text)
    assert line == 3 and message.startswith("is not valid YAML")


def _core_number(text: str) -> bool:
    # Strings the YAML 1.2 core schema reads as numbers. ruamel's 1.2 resolver differs
    # from the core schema on some (it leaves `.5e3` a string, reads `1_000` as 1000),
    # so its dumper may write them plain where the core schema sees a number; those
    # are checked one by one in test_core_schema_scalars.
    return bool(load._INT.fullmatch(text) or load._FLOAT.fullmatch(text))


def _no_core_numbers(value: Any) -> bool:
    if isinstance(value, str):
        return not _core_number(value)
    if isinstance(value, list):
        return all(_no_core_numbers(item) for item in value)
    if isinstance(value, dict):
        return all(_no_core_numbers(k) and _no_core_numbers(v) for k, v in value.items())
    return True


BLOCK_VALUES = json_values(SCALARS).filter(_no_core_numbers)


@settings(max_examples=150, deadline=None)
@given(BLOCK_VALUES)
def test_the_builder_agrees_with_ruamels_yaml_1_2_loader(value: Any) -> None:
    text = ruamel_dump(copy.deepcopy(value))
    assert same(parse(text), ruamel_load(text)), text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no", "no"),
        ("yes", "yes"),
        ("on", "on"),
        ("off", "off"),
        ("y", "y"),
        ("True", True),
        ("FALSE", False),
        ("~", None),
        ("null", None),
        ("Null", None),
        ("0o17", 15),
        ("0x1F", 31),
        ("0755", 755),
        ("-12", -12),
        ("+12", 12),
        ("1e3", 1000.0),
        ("1.", 1.0),
        (".5", 0.5),
        ("-.5", -0.5),
        (".5e3", 500.0),  # the core schema: a float (ruamel's own resolver: a string)
        (".inf", math.inf),
        ("-.Inf", -math.inf),
        ("+.INF", math.inf),
        (".NaN", math.nan),
        ("+.nan", "+.nan"),  # no sign on nan in the core schema
        ("-0x1F", "-0x1F"),
        ("0o8", "0o8"),
        ("0b11", "0b11"),  # YAML 1.1 binary: a string in 1.2
        ("1_000", "1_000"),  # YAML 1.1 underscores: a string in 1.2
        ("12:30:00", "12:30:00"),  # YAML 1.1 sexagesimal: a string in 1.2
        ("2001-12-14", "2001-12-14"),  # no timestamps in the core schema
        ("٣", "٣"),  # not an ASCII digit
        ("'3'", "3"),
        ('"true"', "true"),
        ("!!str 3", "3"),
        ("!!int '3'", 3),
        ("!!float 1", 1.0),
        ("!!bool 'true'", True),
        ("|\n  3\n", "3\n"),
    ],
)
def test_core_schema_scalars(text: str, expected: Any) -> None:
    assert same(parse(f"v: {text}")["v"], expected)


@pytest.mark.parametrize("text", ["v:\n", "v: !!null\n", "v: !!null ''\n", "- v\n-\n"])
def test_an_empty_value_is_null(text: str) -> None:
    value = parse(text)
    assert value in ({"v": None}, ["v", None]) and ruamel_load(text) == value


def test_a_field_left_empty_is_null(tmp_path: Path) -> None:
    spec = loads(tmp_path, "actions: m\nnodes:\n  - action: x\n    timeout:\n    branch:\n")
    assert spec.specs[0].timeout is None and spec.specs[0].branch is None


def test_a_huge_integer_is_a_dag_file_error(tmp_path: Path) -> None:
    text = "actions: m\nnodes:\n  - action: x\n    try_count: " + "9" * 5000 + "\n"
    problems_of(tmp_path, text)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("a: !!int 3.5\n", 1, "'3.5' is not a valid !!int"),
        ("a: 1\nb: !!bool yes\n", 2, "'yes' is not a valid !!bool"),
        ("a: !custom 3\n", 1, "the tag !custom is not supported in a DAG file"),
        ("a:\n  b: !!binary aGk=\n", 2, "the tag tag:yaml.org,2002:binary is not supported"),
        ("a: !!set {x}\n", 1, "the tag tag:yaml.org,2002:set is not supported"),
        ("a: 1\n? [x]\n: 1\n", 2, "a mapping key must be a scalar (a name), not a collection"),
        ("a: &x [1]\n*x : 2\n", 2, "a mapping key must be a scalar"),
        ("a: 1\nb: *nope\n", 2, "the alias *nope names no anchor above it"),
        ("a: &a [*a]\n", 1, "the alias *a names no anchor above it"),
        ("a: 1\nb: {<<: 3}\n", 2, "a merge key (<<) takes a mapping or a list of mappings"),
        ("a: 1\nb: 2\na: 3\n", 3, "the key 'a' appears twice in one mapping"),
        ("n:\n  - x: 1\n    y: 2\n    x: 1\n", 4, "the key 'x' appears twice in one mapping"),
        ("b: &b {x: 1}\nm:\n  <<: *b\n  x: 2\n  x: 3\n", 5, "the key 'x' appears twice"),
        ("a: 1\n---\nb: 2\n", 2, "holds several YAML documents"),
        ("a: [1, 2\nb: 3\n", 2, "is not valid YAML: "),
    ],
)
def test_yaml_problems_have_their_line(text: str, line: int, message: str) -> None:
    with pytest.raises(FileProblem) as info:
        parse(text)
    assert info.value.line == line
    assert message in info.value.message


def test_anchors_and_aliases() -> None:
    text = "base: &base {a: 1}\nlist: &l [1, *base]\nuse: *l\nagain: *base\n"
    assert parse(text) == {
        "base": {"a": 1},
        "list": [1, {"a": 1}],
        "use": [1, {"a": 1}],
        "again": {"a": 1},
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("b: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\n", {"x": 1, "y": 3}),
        ("b: &b {x: 1, y: 2}\nm:\n  y: 3\n  <<: *b\n", {"y": 3, "x": 1}),
        ("a: &a {x: 1}\nb: &b {x: 2, z: 3}\nm:\n  <<: [*a, *b]\n", {"x": 1, "z": 3}),
        ("a: &a {x: 1}\nb: &b {x: 2, z: 3}\nm:\n  <<: [*a, *b]\n  z: 4\n", {"x": 1, "z": 4}),
        ("m:\n  '<<': {x: 1}\n", {"<<": {"x": 1}}),  # quoted: a plain key
    ],
)
def test_merge_keys_with_explicit_keys_winning(text: str, expected: dict[str, Any]) -> None:
    assert parse(text)["m"] == expected
    assert parse(text)["m"] == ruamel_load(text)["m"]


def test_merge_keys_in_a_dag_file(tmp_path: Path) -> None:
    text = (
        "actions: m\n"
        "nodes:\n"
        "  - &fetch {id: a, action: get, try_count: 3, inputs: {url: x}}\n"
        "  - <<: *fetch\n"
        "    id: b\n"
        "    inputs: {url: y}\n"
    )
    a, b = loads(tmp_path, text).specs
    assert (b.id, b.action, b.try_count, dict(b.inputs)) == ("b", "get", 3, {"url": "y"})
    assert a.inputs == {"url": "x"}


@pytest.mark.parametrize(
    "text", ["a: 1\n...\n", "---\na: 1\n", "%YAML 1.2\n---\na: 1\n", "\ufeffa: 1\n"]
)
def test_one_document_with_markers(text: str) -> None:
    assert parse(text) == {"a": 1}


# --- 5. positions ----------------------------------------------------------------------------

POSITIONS = """\
dag: here
actions: m
nodes:
  - id: a
    action: x

    deps: [b,
      c]
  - {id: b, action: x}
  - id: c
    action: x
    inputs:
      q:
        - 1
        - two: 2
"""


def test_document_lines_maps_every_path_to_its_line(tmp_path: Path) -> None:
    document = load.parse(tmp_path / "dag.yaml", POSITIONS)
    assert document.lines() == {
        (): 1,
        ("dag",): 1,
        ("actions",): 2,
        ("nodes",): 3,
        ("nodes", 0): 4,
        ("nodes", 0, "id"): 4,
        ("nodes", 0, "action"): 5,
        ("nodes", 0, "deps"): 7,
        ("nodes", 0, "deps", 0): 7,
        ("nodes", 0, "deps", 1): 8,
        ("nodes", 1): 9,
        ("nodes", 1, "id"): 9,
        ("nodes", 1, "action"): 9,
        ("nodes", 2): 10,
        ("nodes", 2, "id"): 10,
        ("nodes", 2, "action"): 11,
        ("nodes", 2, "inputs"): 12,
        ("nodes", 2, "inputs", "q"): 13,
        ("nodes", 2, "inputs", "q", 0): 14,
        ("nodes", 2, "inputs", "q", 1): 15,
        ("nodes", 2, "inputs", "q", 1, "two"): 15,
    }
    # a path the file does not hold: the line of the nearest value that holds it
    assert document.line(("nodes", 1, "deps", 0)) == 9
    assert document.line(("nodes", 0, "deps", 5)) == 7
    assert document.line(("missing",)) == 1


def test_json_problems_have_the_lines_of_the_json_text(tmp_path: Path) -> None:
    text = json.dumps({"actions": "m", "nodes": [{"id": "a", "action": "x"}, {"deps": "a"}]})
    text = text.replace(", ", ",\n")
    assert [p[:2] for p in problems_of(tmp_path, text, "dag.json")] == [
        (4, "nodes[1].action"),
        (4, "nodes[1].deps"),
    ]


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(KEYS, json_values(SCALARS), min_size=1, max_size=5))
def test_positions_change_nothing_and_cover_every_value_in_order(value: Any) -> None:
    text = ruamel_dump(copy.deepcopy(value))
    plain, none = load._parse_yaml(text, positions=False)
    built, lines = load._parse_yaml(text, positions=True)
    assert none is None and lines is not None
    assert same(built, plain)
    every = list(paths(built))
    assert set(lines) == set(every)
    # block style: each value starts on a line of the text, never before the one above
    numbers = [lines[path] for path in every]
    assert numbers == sorted(numbers)
    assert numbers[0] >= 1 and numbers[-1] <= len(text.splitlines())


# --- 6. ids: as a run gives them -------------------------------------------------------------


def noop_registry() -> ActionRegistry:
    registry = ActionRegistry()

    async def index(ctx: NodeCtx) -> Any:
        return ctx.inputs["i"]

    registry.action(name="x")(index)
    registry.action(name="y")(index)
    return registry


def ids_of_a_run(dag: DagFile) -> dict[str, int]:
    """What a run of the file's nodes, as written (ids left out), calls them: id -> index."""
    nodes = [dict(node, inputs={"i": i}) for i, node in enumerate(dag.document.data["nodes"])]
    report = dagtrio.run_dag_sync([NodeSpec(**node) for node in nodes], noop_registry())
    assert report.success
    return {node_id: record.outputs for node_id, record in report.nodes.items()}


def test_nodes_without_an_id_are_named_as_a_run_names_them(tmp_path: Path) -> None:
    text = (
        "actions: m\n"
        "nodes:\n"
        "  - action: x\n"  # x-1
        "  - action: y\n"  # y-2 is taken below: y-3
        "  - {id: x-3, action: x}\n"
        "  - {action: x, deps: [x-1]}\n"  # x-3 is taken: x-4
        "  - {id: y-2, action: y}\n"
        "  - action: y\n"  # y-5
    )
    dag = loads(tmp_path, text)
    ids = [spec.id for spec in dag.specs]
    assert ids == ["x-1", "y-3", "x-3", "x-4", "y-2", "y-5"]
    assert ids_of_a_run(dag) == {node_id: i for i, node_id in enumerate(ids)}
    assert dict(dag.index) == {node_id: i for i, node_id in enumerate(ids)}


@st.composite
def id_plans(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Nodes with actions x and y, some with explicit ids that look like automatic ones."""
    count = draw(st.integers(1, 8))
    nodes: list[dict[str, Any]] = []
    taken: set[str] = set()
    for _ in range(count):
        node: dict[str, Any] = {"action": draw(st.sampled_from(["x", "y"]))}
        if draw(st.booleans()):
            name = draw(
                st.sampled_from(["x", "y", "z"]).flatmap(
                    lambda a: st.integers(1, 10).map(lambda n: f"{a}-{n}")
                )
            )
            if name not in taken:
                taken.add(name)
                node["id"] = name
        nodes.append(node)
    return nodes


@settings(max_examples=40, deadline=None)
@given(id_plans())
def test_automatic_ids_match_a_run_and_never_clash(nodes: list[dict[str, Any]]) -> None:

    with tempfile.TemporaryDirectory() as folder:
        dag = loads(Path(folder), json.dumps({"actions": "m", "nodes": nodes}), "dag.json")
    ids = [spec.id for spec in dag.specs]
    assert len(set(ids)) == len(ids)
    for spec, node in zip(dag.specs, nodes, strict=True):
        if "id" in node:
            assert spec.id == node["id"]
        else:
            assert spec.id is not None and re.fullmatch(rf"{spec.action}-[0-9]+", spec.id)
    assert ids_of_a_run(dag) == {node_id: i for i, node_id in enumerate(ids)}


def test_an_unknown_dep_after_a_repeated_one_points_at_itself(tmp_path: Path) -> None:
    text = (
        "actions: m\nnodes:\n  - id: a\n    action: x\n  - id: b\n    action: x\n"
        "    deps:\n      - a\n      - a\n      - ghost\n"  # ghost: line 10, deps[2]
    )
    assert only_problem(tmp_path, text) == (10, "nodes[1].deps[2]", "no node has the id 'ghost'")


def test_an_unknown_dep_of_a_duplicate_points_at_the_duplicate(tmp_path: Path) -> None:
    text = (
        "actions: m\nnodes:\n  - id: a\n    action: x\n"
        "  - id: a\n    action: x\n    deps: [ghost]\n"
    )
    assert [p[:2] for p in problems_of(tmp_path, text)] == [
        (5, "nodes[1].id"),
        (7, "nodes[1].deps[0]"),
    ]


# --- 7. the example files --------------------------------------------------------------------


def test_there_are_example_files() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_every_example_file_loads(path: Path) -> None:
    dag = load_file(path)
    assert dag.specs and dag.actions and dag.dag
    assert len({spec.id for spec in dag.specs}) == len(dag.specs)
    assert dag.path == path
