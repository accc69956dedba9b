"""Results as JSON: one function for every result hotmess returns.

Every analysis, import and report call returns a typed result (a frozen dataclass). Its JSON is
:func:`to_json`: the result's fields, plus the derived figures it declares in
``json_properties`` (``incoherence`` of a decomposition is a property of bias and variance, not
a field), turned into plain JSON values: NaN and infinities become ``null``, numpy scalars and
arrays Python numbers and lists, nested results their own JSON, and a ``schema_version`` at
the top. ``hotmess COMMAND --json`` prints exactly ``to_json(result)`` of the Python call
behind it (``hotmess.open(db).analyze(...)`` for ``hotmess analyze``).

A result whose shape for JSON is not its fields (a drift report keeps its windows as columns,
goal coherence lists only the most drifting runs) defines ``to_dict()``; :func:`to_json` uses
that instead, and cleans it the same way.

``schema_version`` counts changes to the JSON a script could depend on: a key renamed or
removed, a value's meaning or type changed. Keys are only ever added within one version.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["SCHEMA_VERSION", "Result", "fields_of", "jsonable", "to_json"]

#: The version of every ``--json`` shape (see the module docstring for what changes it).
SCHEMA_VERSION = 1


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: dicts with string keys, lists, str, int, float, bool, None.

    NaN and ±inf are ``None`` (JSON has no such numbers); numpy scalars and arrays become Python
    numbers and lists; a result with ``to_dict()`` is that, a dataclass its fields and declared
    ``json_properties``; sets are sorted lists; anything else is ``str(value)``.
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, set | frozenset):
        return [jsonable(v) for v in sorted(value, key=str)]
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return jsonable(to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(fields_of(value))
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy arrays and scalars
        return jsonable(value.tolist())
    return str(value)


def fields_of(result: Any) -> dict[str, Any]:
    """A dataclass result's fields (those not marked ``metadata={"json": False}``), then the
    properties it names in ``json_properties``, in declaration order; values not yet cleaned."""
    out = {f.name: getattr(result, f.name) for f in dataclasses.fields(result) if f.metadata.get("json", True)}
    for name in getattr(result, "json_properties", ()):
        out[name] = getattr(result, name)
    return out


def to_json(result: Any) -> dict[str, Any]:
    """The JSON of a result: ``{"schema_version": N, ...}`` with the result's data (see the
    module docstring). A result that is a list (per-task rows) is under ``"items"``."""
    data = jsonable(result)
    if not isinstance(data, dict):
        data = {"items": data}
    return {"schema_version": SCHEMA_VERSION, **data}


class Result:
    """Mixin for typed results: ``to_json()`` is :func:`to_json` of the result."""

    #: Derived figures (properties) included in the JSON after the fields.
    json_properties: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The result as plain data (what :func:`to_json` holds, without the version)."""
        return jsonable(fields_of(self))

    def to_json(self) -> dict[str, Any]:
        return to_json(self)
