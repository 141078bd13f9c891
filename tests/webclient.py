"""A script's view of `dagtrio.web`: server-sent events read and applied as a page would."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import trio

from dagtrio import ActionRegistry, NodeCtx, NodeStatus

#: statuses an event sets on its node
SETS = {
    "NodeAdded": "pending",
    "NodeStarted": "running",
    "NodeCompleted": "succeeded",
    "NodeFailed": "failed",
    "NodeCancelled": "cancelled",
    "NodeSkipped": "skipped",
    "NodeRetrying": "ready",
}


def gated_registry(gates: dict[str, trio.Event]) -> ActionRegistry:
    """``work``: waits for its node's gate if it has one; fails if ``inputs['fail']``."""
    registry = ActionRegistry()

    @registry.action()
    async def work(ctx: NodeCtx) -> Any:
        gate = gates.get(ctx.node_id)
        if gate is not None:
            await gate.wait()
        else:
            await trio.lowlevel.checkpoint()
        if ctx.inputs.get("fail"):
            raise RuntimeError(f"{ctx.node_id} was told to fail")
        return {"node": ctx.node_id}

    return registry


def split(url: str) -> tuple[str, str]:
    """The view's base URL and its token, from the printed URL."""
    base, _, token = url.partition("/?token=")
    return base, token


async def messages(response: httpx.Response) -> AsyncIterator[tuple[str, int | None, Any]]:
    """``(kind, id, data)`` for each server-sent event; kind ``message`` if unnamed."""
    kind, ident, data = "message", None, []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield kind, ident, json.loads("\n".join(data))
            kind, ident, data = "message", None, []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                kind = value
            elif field == "id":
                ident = int(value)
            elif field == "data":
                data.append(value)


#: a snapshot row's fields that an update's short row (``changed``) carries, in order
#: (the node by its place in the graph's order, the status by its place in STATUSES)
SHORT = ("id", "status", "attempts", "started_at", "finished_at")
STATUSES = [status.value for status in NodeStatus]


class Mirror:
    """What a page knows of a run: a snapshot, with every later event (``/api/events``)
    or update (``/api/updates``) applied."""

    def __init__(self) -> None:
        self.status: dict[str, str] = {}
        #: every node's row, as the latest snapshot or update says
        self.rows: dict[str, dict[str, Any]] = {}
        #: node ids in the graph's order: an update's short rows name nodes by place
        self.order: list[str] = []
        self.run: dict[str, Any] = {}
        self.position = 0
        self.snapshots = 0
        self.updates = 0
        self.events: list[dict[str, Any]] = []
        self.ids: list[int] = []
        self.end: dict[str, Any] | None = None

    def apply(self, kind: str, ident: int | None, data: Any) -> None:
        if kind == "snapshot":
            self.snapshots += 1
            self.position = data["position"]
            self.rows = {node["id"]: node for node in data["nodes"]}
            self.order = [node["id"] for node in data["nodes"]]
            self.status = {node["id"]: node["status"] for node in data["nodes"]}
            self.run = data["run"]
        elif kind == "end":
            self.end = data
        elif kind == "update":
            assert ident == data["seq"] and data["seq"] > self.position, (ident, self.position)
            self.position = data["seq"]
            self.updates += 1
            for row in data["added"]:
                if row["id"] not in self.rows:
                    self.order.append(row["id"])
                self.rows[row["id"]] = row
            short = data["changed"]
            t0 = data["t0"]
            for i in range(0, len(short), len(SHORT)):
                node_id = self.order[short[i]]
                row = self.rows[node_id]
                row.update(zip(SHORT, short[i : i + len(SHORT)], strict=True))
                row["id"] = node_id
                row["status"] = STATUSES[row["status"]]
                for name in ("started_at", "finished_at"):
                    if row[name] is not None:
                        row[name] = t0 + row[name] / 1000
                row.update({"error": None, "ended": None, "supplied": False, "cached": False})
                row.update(data["extra"].get(row["id"], {}))
            self.status = {node_id: row["status"] for node_id, row in self.rows.items()}
            self.run.update(data["run"])
            self.events.extend(data["events"])
        else:
            assert ident is not None and ident >= self.position, (ident, self.position)
            self.ids.append(ident)
            self.events.append(data)
            node = data.get("node")
            if node is not None and data["type"] in SETS:
                self.status[node["node"]] = SETS[data["type"]]

    async def follow(self, response: httpx.Response) -> Mirror:
        async for kind, ident, data in messages(response):
            self.apply(kind, ident, data)
            if kind == "end":
                break
        return self
