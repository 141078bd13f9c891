"""One cattrs converter for every event, command, spec and report.

Events and commands are tagged unions: their unstructured form carries a ``type`` field
holding the class name, so a stream of mixed events can be stored as JSON and read back
into the right classes. Node outputs and inputs pass through as they are; they
round-trip exactly when they are JSON values.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import override
from cattrs.strategies import configure_tagged_union, include_subclasses

from . import commands as _commands
from . import events as _events
from . import jsonvalue
from . import report as _report
from . import spec as _spec

__all__ = ["converter", "dumps", "loads"]

T = TypeVar("T")

TAG = "type"

#: Turns dagtrio's data (events, commands, specs, reports) into JSON-ready data and back.
#: ``converter.unstructure(event, unstructure_as=ExecutionEvent)`` adds the ``type``
#: tag; ``converter.structure(data, ExecutionEvent)`` picks the class from it.
converter = cattrs.Converter(omit_if_default=False)


def _resolve() -> None:
    # Annotations are strings (``from __future__ import annotations``) and some name
    # classes imported only for type checking; give cattrs one namespace holding them all.
    namespace: dict[str, Any] = {}
    for module in (_spec, _events, _commands, _report):
        namespace.update(vars(module))
    for module in (_spec, _events, _commands, _report):
        for name in module.__all__:
            obj = getattr(module, name)
            if attrs.has(obj):
                attrs.resolve_types(obj, globalns=namespace)


def _configure(conv: cattrs.Converter) -> None:
    _resolve()
    union = partial(configure_tagged_union, tag_name=TAG)
    # Events hold commands (CommandRejected.command) and commands hold events
    # (EmitEvent.event), but include_subclasses builds hooks eagerly, so whichever union
    # is configured first would see the other as a plain base class. Those two fields
    # therefore look their union's hook up when they are converted, not when built.
    events, commands = _events.ExecutionEvent, _commands.ExecutorCommand
    for base, field, other in ((commands, "event", events), (events, "command", commands)):
        lazy = override(
            unstruct_hook=partial(_unstructure_as, conv, other),
            struct_hook=partial(_structure_as, conv, other),
        )
        include_subclasses(base, conv, union_strategy=union, overrides={field: lazy})


def _unstructure_as(conv: cattrs.Converter, base: type, value: Any) -> Any:
    return conv.unstructure(value, unstructure_as=base)


def _structure_as(conv: cattrs.Converter, base: type, value: Any, _type: Any) -> Any:
    return conv.structure(value, base)


_configure(converter)


def to_data(obj: Any) -> Any:
    """``obj`` as JSON-ready data; events and commands get their ``type`` tag."""
    if isinstance(obj, _events.ExecutionEvent):
        return converter.unstructure(obj, unstructure_as=_events.ExecutionEvent)
    if isinstance(obj, _commands.ExecutorCommand):
        return converter.unstructure(obj, unstructure_as=_commands.ExecutorCommand)
    return converter.unstructure(obj)


def dumps(obj: Any, **kwargs: Any) -> str:
    """Serialise an event, command, spec or report to JSON text.

    Raises `TypeError` saying where when something in it (an output, say) is not a
    JSON value, or is a mapping with keys that are not strings (JSON would turn them
    into strings: ``{1: "a", "1": "b"}`` would come back as ``{"1": "b"}``), instead of
    writing a lossy document. ``kwargs`` go to `json.dumps`; with ``default=``,
    ``cls=`` or ``skipkeys=`` the document is yours to vouch for, and is not checked.
    """
    data = to_data(obj)
    if not {"default", "cls", "skipkeys"} & kwargs.keys():
        jsonvalue.check(data)
    return json.dumps(data, **kwargs)


def loads(text: str | bytes, cls: type[T]) -> T:
    """Read JSON written by `dumps` back as ``cls`` (use the base class for any event).

    Raises `cattrs.BaseValidationError` (with every problem listed) for data of the
    wrong shape.
    """
    return converter.structure(json.loads(text), cls)
