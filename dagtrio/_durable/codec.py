"""The journal's wire format: how specs, batches and outputs are stored as JSON text.

An ``add`` record holds a batch with its final ids and the automatic id counter after
it; outputs and inputs go through `_model.jsonvalue`, which refuses what JSON would not
give back as it was.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from .._errors import InvalidGraphError
from .._model import jsonvalue
from .._model.spec import NodeSpec
from .._validate import check_int

__all__ = ["decode_batch", "encode_batch", "encode_outputs", "encode_spec"]


def _finite(spec: NodeSpec, field: str, value: float) -> float:
    if not math.isfinite(value):
        raise InvalidGraphError(
            spec.id,
            f"{field}={value!r} cannot be stored in the journal (JSON has no"
            " infinity): leave it None for no limit",
        )
    return value


def encode_spec(spec: NodeSpec) -> dict[str, Any]:
    data: dict[str, Any] = {"action": spec.action, "id": spec.id}
    if spec.deps:
        data["deps"] = list(spec.deps)
    if spec.inputs:
        inputs = data["inputs"] = dict(spec.inputs)
        try:
            jsonvalue.check(inputs)
        except (TypeError, ValueError) as exc:
            raise InvalidGraphError(
                spec.id, f"inputs cannot be stored in the journal: {exc}"
            ) from None
    if spec.timeout is not None:
        data["timeout"] = _finite(spec, "timeout", spec.timeout)
    if spec.try_count != 1:
        data["try_count"] = spec.try_count
    if spec.retry_delay:
        data["retry_delay"] = _finite(spec, "retry_delay", spec.retry_delay)
    if spec.branch is not None:
        data["branch"] = spec.branch
    if spec.cache is not None:
        data["cache"] = spec.cache
    if spec.executor is not None:
        data["executor"] = spec.executor
    if spec.max_retry_delay is not None:
        data["max_retry_delay"] = _finite(spec, "max_retry_delay", spec.max_retry_delay)
    if spec.retry_jitter:
        data["retry_jitter"] = spec.retry_jitter
    if spec.defer:
        data["defer"] = True
    if spec.estimate is not None:
        data["estimate"] = spec.estimate
    if spec.priority:
        data["priority"] = spec.priority
    if spec.uses is not None:
        data["uses"] = dict(spec.uses)
    return data


def encode_batch(specs: Sequence[NodeSpec], next_auto_id: int) -> str:
    """An ``add`` record's data: the specs (with their final ids) and the automatic id
    counter after them, so that a resumed run numbers later nodes as an uninterrupted
    one would. `InvalidGraphError` names a node whose inputs are not JSON values (a
    journal could not bring them back as they were)."""
    encoded = [encode_spec(spec) for spec in specs]
    return json.dumps({"specs": encoded, "next_auto_id": next_auto_id}, allow_nan=False)


def decode_batch(text: str) -> tuple[list[NodeSpec], int | None]:
    """The specs of an ``add`` record and the id counter after them (``None`` in the
    records of dagtrio before 0.2, which stored the list of specs alone)."""
    data = json.loads(text)
    if isinstance(data, list):
        return [NodeSpec(**spec) for spec in data], None
    counter = check_int("the automatic id counter", data["next_auto_id"], 0)
    return [NodeSpec(**spec) for spec in data["specs"]], counter


def encode_outputs(outputs: Any) -> str | None:
    """Outputs as JSON text (None for None); `TypeError`/`ValueError` if they are not
    a JSON value that would come back as it is (see `_model.jsonvalue`)."""
    if outputs is None:
        return None
    return jsonvalue.dumps(outputs)
