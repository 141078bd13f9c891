"""Faults a fresh-eyes review of ``dagtrio run`` / ``dagtrio graph`` found, each pinned."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dagtrio import NodeSpec
from dagtrio._specfile import schema
from dagtrio.cli import main
from tests.test_run_cli import ACTIONS, CHAIN, dag_file

_count = iter(range(10**6))


@pytest.fixture
def flow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"review14_actions_{os.getpid()}_{next(_count)}"
    (tmp_path / f"{name}.py").write_text(
        ACTIONS + "\n\nasync def raiser(ctx, event):\n    raise ValueError('hook exploded')\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BROKEN", raising=False)
    return name


def test_a_hook_that_fails_the_run_is_one_line_not_a_traceback(
    tmp_path: Path, flow: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = dag_file(tmp_path, flow, f"hooks: ['{flow}:raiser']\n" + CHAIN)
    assert main(["run", str(path)]) == 1
    err = capsys.readouterr().err
    assert "error: the run failed: ValueError: hook exploded" in err
    assert "Traceback" not in err


def test_the_printed_commands_survive_spaces_in_paths(
    tmp_path: Path, flow: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = dag_file(tmp_path, flow, CHAIN, name="my flow.yaml")
    journal = tmp_path / "my runs.db"
    monkeypatch.setenv("BROKEN", "b")
    assert main(["run", str(path), "--journal", str(journal), "--run-id", "s 1"]) == 1
    line = next(line for line in capsys.readouterr().err.splitlines() if "--failed" in line)
    command = shlex.split(line.split(": ", 2)[-1].split("again: ", 1)[-1])
    monkeypatch.delenv("BROKEN")
    assert command[:2] == ["dagtrio", "run"]
    assert main(command[1:]) == 0


def test_json_duplicate_keys_are_a_mistake_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "f.json"
    path.write_text('{"actions": "a",\n "nodes": [{"id": "a", "action": "x",\n "action": "y"}]}')
    assert main(["graph", str(path)]) == 2
    assert "f.json:3: the key 'action' appears twice" in capsys.readouterr().err


def test_json_that_yaml_cannot_read_still_reports_its_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "f.json"
    path.write_text(
        '{"actions": "a", "nodes": [{"id": "a", "action": "x", "needs": "\\ud83d\\ude80"}]}'
    )
    assert main(["graph", str(path)]) == 2
    err = capsys.readouterr().err
    assert "nodes[0].needs: unknown field 'needs': did you mean deps?" in err
    assert "Traceback" not in err


def test_a_bad_default_is_reported_once_at_the_defaults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(
        "actions: a\ndefaults: {try_count: 0, retries: 2}\nnodes:\n"
        "  - {id: a, action: x}\n  - {id: b, action: x}\n"
    )
    assert main(["graph", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("try_count: must be >= 1") == 1
    assert "f.yaml:2: defaults.try_count" in err


def test_an_integer_of_thousands_of_digits_is_refused_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "f.yaml"
    path.write_text("actions: a\nnodes:\n  - {id: a, action: x, try_count: " + "9" * 5000 + "}\n")
    assert main(["graph", str(path)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_ids_are_text_not_markup_in_the_critical_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(
        'actions: a\nnodes:\n  - {id: "build[linux]", action: x}\n'
        '  - {id: "[/]", action: x, deps: ["build[linux]"]}\n'
    )
    assert main(["graph", str(path), "--critical-path"]) == 0
    out = capsys.readouterr().out
    assert "│ build[linux] " in out
    assert "│ [/] " in out


def test_output_without_a_format_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "f.yaml"
    path.write_text("actions: a\nnodes:\n  - {id: a, action: x}\n")
    assert main(["graph", str(path), "-o", str(tmp_path / "out.dot")]) == 2
    assert "give --format" in capsys.readouterr().err
    assert not (tmp_path / "out.dot").exists()


def test_a_missing_attribute_of_an_importable_module_is_an_error(
    tmp_path: Path, flow: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(f"actions: {flow}:nothere\nnodes:\n  - {{id: a, action: step}}\n")
    assert main(["graph", str(path)]) == 2
    assert "f.yaml:1: actions:" in capsys.readouterr().err


def test_the_one_item_hint_is_valid_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "f.yaml"
    path.write_text("actions: a\nhooks: mod:hook\nnodes:\n  - {id: a, action: x}\n")
    assert main(["graph", str(path)]) == 2
    assert 'write ["mod:hook"]' in capsys.readouterr().err


# ------------------------------------------------------------------ the fast path, as a property

_FIELDS = [field.name for field in attrs.fields(NodeSpec)]
_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-3, 5)
    | st.floats(-1, 5, allow_nan=False)
    | st.sampled_from(["", "a", "b", "3", "main/x", "/bad"])
)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "k"]), inner, max_size=2)
    ),
    max_leaves=5,
)


_GOOD = {
    "action": st.just("x"),
    "id": st.none() | st.sampled_from(["a", "b"]),
    "deps": st.lists(st.sampled_from(["a", "b", "c"]), max_size=3),
    "inputs": st.dictionaries(st.sampled_from(["k", "v"]), _json_values, max_size=2),
    "timeout": st.none() | st.integers(1, 3) | st.floats(0.1, 5),
    "try_count": st.integers(1, 3),
    "retry_delay": st.integers(0, 2) | st.floats(0, 2),
    "branch": st.none() | st.sampled_from(["main", "main/x"]),
    "cache": st.none() | st.booleans(),
    "executor": st.none() | st.just("thread"),
    "max_retry_delay": st.none() | st.floats(0, 3),
    "retry_jitter": st.floats(0, 1),
    "defer": st.booleans(),
    "estimate": st.none() | st.integers(0, 3) | st.floats(0, 3),
}


@st.composite
def _node_data(draw: st.DrawFn) -> dict[str, object]:
    # Mostly values of the right type, sometimes anything JSON holds: both paths must
    # agree on the nodes that pass and on those that do not.
    keys = draw(st.lists(st.sampled_from([*_FIELDS, "needs"]), unique=True, max_size=6))
    data: dict[str, object] = {"action": draw(st.sampled_from(["x", "x", "x", "", 3]))}
    for key in keys:
        good = _GOOD.get(key)
        wild = draw(st.integers(0, 9)) == 0 or good is None
        data[key] = draw(_json_values if wild else good)  # type: ignore[arg-type]
    return data


@settings(max_examples=500, deadline=None)
@given(_node_data())
def test_the_quick_path_gives_the_converters_answer(data: dict[str, object]) -> None:
    # `_quick` skips cattrs for valid nodes: it must take exactly the nodes the strict
    # hooks take, and build the same spec from them.
    try:
        expected: NodeSpec | None = schema._fast.structure(data, NodeSpec)
    except Exception:
        expected = None
    assert schema._quick(dict(data)) == expected


def test_a_png_gantt_without_matplotlib_is_refused_before_anything_is_done(
    tmp_path: Path, flow: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = tmp_path / "runs.db"
    assert (
        main(["run", str(dag_file(tmp_path, flow, CHAIN)), "--journal", str(journal), "--quiet"])
        == 0
    )
    capsys.readouterr()
    from dagtrio import _plot

    monkeypatch.setattr(_plot, "available", lambda: False)
    assert main(["graph", str(journal), "--gantt", str(tmp_path / "run.png")]) == 2
    captured = capsys.readouterr()
    assert "needs matplotlib" in captured.err and "or write .html" in captured.err
    assert captured.out == ""


def test_deps_from_the_defaults_are_checked_once_and_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(
        "actions: a\ndefaults: {deps: [setup]}\nnodes:\n"
        "  - {id: a, action: x}\n  - {id: b, action: x}\n"
    )
    assert main(["graph", str(path)]) == 2  # was a KeyError traceback
    err = capsys.readouterr().err
    assert err.count("f.yaml:2: defaults.deps: no node has the id 'setup'") == 1
    path.write_text(
        "actions: a\ndefaults: {deps: [setup]}\nnodes:\n  - {id: setup, action: x, deps: []}\n"
        "  - {id: a, action: x}\n  - {id: b, action: x}\n"
    )
    assert main(["graph", str(path), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {node["id"]: node["deps"] for node in data["nodes"]} == {
        "setup": [],
        "a": ["setup"],
        "b": ["setup"],
    }
