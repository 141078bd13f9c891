"""``dagtrio run FILE --serve`` and ``dagtrio serve JOURNAL``, as a person uses them.

The approval example end to end: the run comes to rest at its held ``approve`` node,
the printed URL's API completes it, and the command finishes with status 0; meanwhile
``dagtrio serve`` in a second process shows the same run from its journal.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio
from webclient import Mirror, messages, split

from dagtrio.cli import main

# Streams left early (a break out of `async for`) are closed by the garbage collector.
pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

ROOT = Path(__file__).parent.parent
APPROVAL = ROOT / "examples" / "dags" / "approval.yaml"
URL = re.compile(rb"(http://\S+/\?token=\S+)")


async def _url_from(process: trio.Process, seen: bytearray) -> str:
    """The view's URL, from the command's stderr (what a person copies)."""
    assert process.stderr is not None
    with trio.fail_after(60):  # a hang guard: the command prints it at start
        while True:
            found = URL.search(seen)
            if found:
                return found.group(1).decode()
            chunk = await process.stderr.receive_some()
            assert chunk, f"the command ended without a URL: {seen.decode()}"
            seen += chunk


async def _start(*args: str) -> trio.Process:
    return await trio.lowlevel.open_process(
        [sys.executable, "-m", "dagtrio", *args], stderr=subprocess.PIPE, cwd=ROOT
    )


async def test_run_serve_approves_in_the_view_and_serve_follows_the_journal(
    tmp_path: Path,
) -> None:
    db = tmp_path / "approval.db"
    running = await _start("run", str(APPROVAL), "--serve", "--journal", str(db), "--quiet")
    following: trio.Process | None = None
    try:
        seen = bytearray()
        url = await _url_from(running, seen)
        base, token = split(url)
        async with httpx.AsyncClient(timeout=60) as client:
            async with client.stream("GET", base + "/api/events") as response:
                mirror = Mirror()
                async for kind, ident, data in messages(response):
                    mirror.apply(kind, ident, data)
                    if kind == "snapshot" and "approve" in data["run"]["held"]:
                        break  # the view connected after the run came to rest
                    if data.get("type") == "RunIdle":
                        break
            assert mirror.status["approve"] == "failed"  # held for a decision
            # A second terminal: the same run, read from its journal by another process.
            following = await _start("serve", str(db), "--poll", "0.05")
            other = await _url_from(following, bytearray())
            other_base, _ = split(other)
            snapshot = (await client.get(other_base + "/api/snapshot")).json()
            assert snapshot["run"]["source"] == "journal" and snapshot["run"]["read_only"]
            live = (await client.get(base + "/api/snapshot")).json()
            assert snapshot["run"]["run_id"] == live["run"]["run_id"]
            async with client.stream("GET", other_base + "/api/events") as followed:
                # Approve in the live view: the journal's view sees the run finish.
                approve = {
                    "type": "CompleteNode",
                    "node_id": "approve",
                    "outputs": {"approved_by": "ana"},
                }
                answer = await client.post(
                    base + "/api/commands",
                    json=approve,
                    headers={"authorization": f"Bearer {token}"},
                )
                assert answer.status_code == 200, answer.text
                end = await Mirror().follow(followed)
        assert end.end is not None and end.end["run"]["success"] is True
        assert end.status["publish"] == "succeeded"
        with trio.fail_after(60):
            assert await running.wait() == 0
    finally:
        for process in (running, following):
            if process is not None:
                process.kill()
                await process.wait()


def test_serve_refuses_what_is_not_a_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", str(tmp_path / "missing.db")]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "empty.db").write_bytes(b"")
    assert main(["serve", str(tmp_path / "empty.db")]) == 2
    assert "not a dagtrio journal" in capsys.readouterr().err
    db = tmp_path / "runs.db"
    assert main(["run", str(ROOT / "examples/dags/etl.yaml"), "--journal", str(db), "--quiet"]) == 0
    assert main(["serve", str(db), "nope"]) == 2
    assert "has no run 'nope'" in capsys.readouterr().err
    assert main(["serve", str(db), "--poll", "0"]) == 2
    assert "--poll" in capsys.readouterr().err
    assert main(["serve", str(db), "--address", "nope:x"]) == 2
    assert "HOST:PORT" in capsys.readouterr().err


def test_a_taken_port_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        status = main(["run", str(ROOT / "examples/dags/etl.yaml"), "--serve", str(port)])
        assert status == 2
        assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    finally:
        taken.close()


def test_help_shows_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--help"]) == 0
    assert "dagtrio serve runs.db" in capsys.readouterr().out
    assert main(["run", "--help"]) == 0
    assert "--serve" in capsys.readouterr().out
