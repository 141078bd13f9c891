"""The quick block-YAML reader against libyaml: the same value, or it gives up.

`dagtrio._specfile.quick` reads the plain block style of most DAG files without
libyaml, and must never read a text differently from it. These properties generate
texts in and around that style, full of the characters and layouts that make YAML
hard, most of them not what they seem or not YAML at all, and hold the quick reader
to libyaml's value wherever it does not give up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import same
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dagtrio._specfile import load
from dagtrio._specfile.load import FileProblem
from dagtrio._specfile.quick import GIVE_UP, read_block_yaml

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "dags"


def quick(text: str) -> Any:
    return read_block_yaml(text, load._plain)


def full(text: str) -> Any:
    return load._parse_yaml(text, positions=False)[0]


def agree(text: str) -> bool:
    """The property: quick gives up, or gives what libyaml gives (and libyaml takes
    the text). Returns whether quick took it."""
    taken = quick(text)
    if taken is GIVE_UP:
        return False
    try:
        expected = full(text)
    except FileProblem as exc:
        raise AssertionError(f"quick read {taken!r}; libyaml refuses: {exc}\n{text}") from None
    assert same(taken, expected), f"quick {taken!r} != libyaml {expected!r}\n{text}"
    return True


# Pieces of scalars: ordinary ones, the core schema's special words and numbers, and
# every character that means something somewhere in YAML.
WORDS = [
    "a", "b", "id", "n1", "x y", "null", "Null", "~", "true", "False", "no", "on", "yes",
    "1", "0", "-1", "+2", "0755", "0o17", "0x1F", "1.5", "-.5", "1e3", "1_000", ".inf",
    "-.Inf", ".nan", "2001-12-14", "<<", "-", "--", "---", "...", "?", ":", "a:b", "a: b",
    "http://x/y", "a#b", "a #b", "'q'", '"q"', "it's", "[a]", "{a: 1}", "a,b", "a]", "b}",
]  # fmt: skip
CHARS = "ab1 -.:#',\"[]{}&*!|>%@`?~\\_+/(=0x"
pieces = st.sampled_from(WORDS) | st.text(alphabet=CHARS, min_size=1, max_size=6)
scalars = st.lists(pieces, min_size=1, max_size=3).map("".join)
names = st.sampled_from(["id", "action", "deps", "inputs", "k", "a-b", "x.y", "_z", "k2"])
keys = names | scalars
# The style of most real files, so that a good share of the texts is taken.
clean_scalars = st.sampled_from(["a", "n1", "x y", "1", "-2", "1.5", "null", "true", "no", "a-b"])
MODE: dict[str, Any] = {}


def scalar(draw: st.DrawFn) -> str:
    return draw(clean_scalars if MODE["clean"] else scalars)


def key_text(draw: st.DrawFn) -> str:
    return draw(names if MODE["clean"] else keys)


def spaces(draw: st.DrawFn, low: int = 1) -> str:
    return " " * draw(st.integers(low, low + 2))


def comment(draw: st.DrawFn) -> str:
    if MODE["clean"]:
        return draw(st.sampled_from(["", "", " # note"]))
    return draw(st.sampled_from(["", "", "", " # note", "  #x", " #: a, [b]", "#x"]))


def quoted(draw: st.DrawFn) -> str:
    text = draw(st.text(alphabet="ab 1:#," if MODE["clean"] else CHARS, max_size=6))
    if draw(st.booleans()):
        return "'" + text.replace("'", draw(st.sampled_from(["''", "'"]))) + "'"
    return '"' + text.replace('"', "") + '"'


def flow(draw: st.DrawFn, depth: int = 0) -> str:
    items = []
    is_map = draw(st.booleans())
    for _ in range(draw(st.integers(0, 3))):
        item = draw(st.sampled_from(["scalar", "scalar", "quoted", "nested"]))
        if item == "nested" and depth < 2:
            text = flow(draw, depth + 1)
        elif item == "quoted":
            text = quoted(draw)
        else:
            text = scalar(draw)
        if is_map:
            colon = ": " if MODE["clean"] else draw(st.sampled_from([": ", ":  ", ":", " : "]))
            text = key_text(draw) + colon + text
        items.append(text)
    if MODE["clean"]:
        gap, end = ", ", ""
    else:
        gap = draw(st.sampled_from([", ", ",", " , ", ",  "]))
        end = draw(st.sampled_from(["", "", ",", " "]))
    inside = gap.join(items) + end
    return (
        ("{" if is_map else "[")
        + draw(st.sampled_from(["", " "]))
        + inside
        + ("}" if is_map else "]")
    )


def value_text(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["scalar", "scalar", "quoted", "flow"]))
    if kind == "flow":
        return flow(draw)
    if kind == "quoted":
        return quoted(draw)
    return scalar(draw)


def block(draw: st.DrawFn, indent: int, depth: int, lines: list[str]) -> None:
    """Lines of a block mapping or sequence at ``indent``."""
    pad = " " * indent
    is_list = draw(st.booleans())
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.integers(0, 9)) == 0:
            lines.append(draw(st.sampled_from(["", "   ", "# c", pad + "# c"])))
        nested = depth < 3 and draw(st.integers(0, 3)) == 0
        if is_list:
            head = pad + "-" + spaces(draw)
            if draw(st.booleans()):  # "- key: value" and more keys under it
                column = len(head)
                first = True
                for _ in range(draw(st.integers(1, 3))):
                    lead = head if first else " " * column
                    first = False
                    lines.append(lead + key_text(draw) + ":" + spaces(draw) + value_text(draw))
                continue
            if nested:
                lines.append(pad + "-" + comment(draw))
                block(draw, indent + draw(st.integers(1, 3)), depth + 1, lines)
            else:
                lines.append(head + value_text(draw) + comment(draw))
        else:
            key = key_text(draw)
            if nested:
                lines.append(pad + key + ":" + comment(draw))
                step = draw(st.sampled_from([0, 1, 2, 2, 4]))  # 0: a compact list, or not
                block(draw, indent + step, depth + 1, lines)
            else:
                lines.append(pad + key + ":" + spaces(draw) + value_text(draw) + comment(draw))


@st.composite
def block_texts(draw: st.DrawFn) -> str:
    MODE["clean"] = draw(st.booleans())
    lines: list[str] = []
    if draw(st.integers(0, 5)) == 0:
        lines.append(draw(st.sampled_from(["---", "--- # doc", "%YAML 1.2\n---", "---\n---"])))
    block(draw, 0, 0, lines)
    # Now and then a layout mistake: a line moved in or out, or trailing spaces.
    for _ in range(draw(st.integers(0, 0 if MODE["clean"] else 2))):
        at = draw(st.integers(0, len(lines) - 1))
        change = draw(st.sampled_from(["in", "out", "trail"]))
        if change == "in":
            lines[at] = " " + lines[at]
        elif change == "out" and lines[at].startswith(" "):
            lines[at] = lines[at][1:]
        else:
            lines[at] += "  "
    if not MODE["clean"] and draw(st.integers(0, 5)) == 0:
        lines.append(draw(st.sampled_from(["...", "---", "- x", "tail"])))
    return "\n".join(lines) + draw(st.sampled_from(["\n", "", "\n\n"]))


@settings(max_examples=1500, deadline=None)
@given(block_texts())
@example("a: ''\nb: \"\"\n")
@example("a: # c\n")
@example("nodes:\n- id: a\n  deps:\n  - b\n- id: c\n")
@example("a:\n  - x\nb: 1\n")
@example("- a:\n  - x\n")
@example("a: b]\nc: d}\n")
@example("a: {x: 1, y: [2, 3]}\n")
@example("a: [a, b,]\n")
@example("a: {a: 1, a: 2}\n")
@example("a: 1\na: 2\n")
@example("k: 0755\nl: 0x1F\nm: 1_000\n")
# A fresh-eyes review's reproducers: each was read by the quick reader and refused, or
# read otherwise, by libyaml.
@example("---\n---\na: 1\n")
@example("# c\n---\n---\na: 1\n")
@example("a: {<<: {b: 1}, c: 2}\n")
@example("a: {b: 1, <<: {b: 2}}\n")
@example("a: {<<: b}\n")
@example("a: [a?b]\n")
@example("a: [b ?c]\n")
@example("a: {b?: 1}\n")
@example("a: {b: c?d}\n")
@example("k" * 1025 + ": 1\n")
@example("- " + "k" * 1025 + ": 1\n")
@example("a: {" + "k" * 1025 + ": 1}\n")
@example("a: {b" + " " * 1024 + ": 1}\n")
def test_quick_gives_up_or_agrees_with_libyaml(text: str) -> None:
    agree(text)


@given(st.text(alphabet=CHARS + "ABeinfatrulNTRUEFALS", min_size=1, max_size=8))
@example("0755")
@example("-0")
@example("1.")
def test_the_quick_readers_shortcuts_resolve_as_the_core_schema_does(text: str) -> None:
    # quick resolves some plain scalars without asking load._plain: the words of
    # _WORDS, ASCII digits as an int, and anything else not starting like a number
    # as itself. Here they are held to _plain, so that a change there shows.
    from dagtrio._specfile.quick import _NUMERIC, _WORDS

    if text in _WORDS:
        assert same(_WORDS[text], load._plain(text))
    elif text.isdigit():
        assert same(int(text), load._plain(text))
    elif text[0] not in _NUMERIC:
        assert same(text, load._plain(text))


def test_the_quick_readers_words_are_every_core_schema_word() -> None:
    from dagtrio._specfile.quick import _WORDS

    assert set(_WORDS) == (load._NULL - {""}) | set(load._BOOL)


def test_the_generated_texts_are_often_taken_so_the_property_says_something() -> None:
    taken = 0
    seen = 0

    @settings(max_examples=400, deadline=None, database=None, derandomize=True)
    @given(block_texts())
    def count(text: str) -> None:
        nonlocal taken, seen
        seen += 1
        taken += agree(text)

    count()
    # A share, not a count of luck: derandomized, so the same texts each time.
    assert taken >= seen // 8, (taken, seen)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_the_examples_are_read_the_quick_way(path: Path) -> None:
    assert agree(path.read_text())


def test_a_generated_pipeline_is_read_the_quick_way() -> None:
    lines = ["dag: big", "actions: acts", "defaults:", "  try_count: 2", "nodes:"]
    for i in range(50):
        lines += [f"  - id: n{i}", "    action: work"]
        if i:
            lines.append(f"    deps: [n{(i - 1) // 2}]")
        lines += [f"    inputs: {{k: {i}, name: 'node {i}'}}", f"    estimate: {i / 10}"]
    text = "\n".join(lines) + "\n"
    assert agree(text)
    assert quick(text)["nodes"][3] == {
        "id": "n3",
        "action": "work",
        "deps": ["n1"],
        "inputs": {"k": 3, "name": "node 3"},
        "estimate": 0.3,
    }


@pytest.mark.parametrize(
    "text",
    [
        "a: &x 1\nb: *x\n",  # anchors and aliases
        "a: !!str 1\n",  # tags
        "a: |\n  text\n",  # block scalars
        "a: long\n  text\n",  # a plain scalar over two lines
        'a: "x\\ty"\n',  # escapes
        "a: [1,\n  2]\n",  # a flow collection over two lines
        "a:\tb\n",  # a tab
        "a: b\r\nc: d\r\n",  # carriage returns
        "a: é\n",  # not ASCII
        "? a\n: b\n",  # an explicit key
        "<<: {a: 1}\n",  # a merge key
        "a: 1\n---\nb: 2\n",  # two documents
        "a: 1\na: 2\n",  # a duplicate, named by libyaml's pass
        "'a': 1\n",  # a quoted key
        "1: a\n",  # a key that is not a string
        "# only a comment\n",
        "a: " + "9" * 5000 + "\n",  # more digits than Python reads
        "a: " + "[" * 2000 + "]" * 2000 + "\n",  # nested deeper than the stack
    ],
)
def test_what_quick_leaves_to_libyaml(text: str) -> None:
    assert quick(text) is GIVE_UP
