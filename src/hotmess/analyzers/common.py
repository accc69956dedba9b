"""Small helpers shared by the analyzers: JSON-safe conversion, factorising, natural order, validation."""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

import numpy as np

from hotmess.errors import AnalysisError


def json_float(value: Any) -> float | None:
    """A float for JSON: numpy scalars to Python, nan/inf/None to None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def json_safe(value: Any) -> Any:
    """Recursively turn numpy scalars/arrays into Python values and non-finite floats into None."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return [json_safe(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


def factorize(values: Iterable[Hashable]) -> tuple[np.ndarray, list[Hashable]]:
    """Integer codes (int64) and the distinct values, in order of first appearance."""
    seen: dict[Hashable, int] = {}
    codes = np.fromiter((seen.setdefault(v, len(seen)) for v in values), dtype=np.int64)
    return codes, list(seen)


def natural_key(value: str) -> tuple[int, int, str]:
    """Sort key putting integer-looking ids in numeric order ("2" before "10"), then text."""
    try:
        return (0, int(value), "")
    except (TypeError, ValueError):
        return (1, 0, str(value))


def as_codes(values: Any, name: str) -> tuple[np.ndarray, int]:
    """Integer codes 0..K-1 for ``values``: non-negative integers are kept, anything else factorised."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise AnalysisError(f"{name} must be 1-D, got shape {array.shape}")
    if array.size and np.issubdtype(array.dtype, np.integer):
        if array.min() < 0:
            raise AnalysisError(f"{name} must be non-negative integer codes (or labels of any kind)")
        return array.astype(np.int64, copy=False), int(array.max()) + 1
    if array.size == 0:
        return np.zeros(0, dtype=np.int64), 0
    codes, uniques = factorize(array.tolist())
    return codes, len(uniques)


def check_confidence(confidence: float) -> float:
    confidence = float(confidence)
    if not 0.0 < confidence < 1.0:
        raise AnalysisError(f"confidence must be in (0, 1), got {confidence}")
    return confidence


def check_n_boot(n_boot: int) -> int:
    if isinstance(n_boot, bool) or int(n_boot) != n_boot or n_boot < 0:
        raise AnalysisError(f"n_boot must be a non-negative integer, got {n_boot!r}")
    return int(n_boot)


def natural_codes(values: Iterable[Hashable]) -> tuple[np.ndarray, list[str]]:
    """Integer codes (int64) numbering the distinct values in natural order of their text
    (:func:`natural_key`: "2" before "10"), and those values as text in that order."""
    codes, uniques = factorize(values)
    order = sorted(range(len(uniques)), key=lambda i: natural_key(uniques[i]))
    remap = np.empty(len(uniques), dtype=np.int64)
    remap[order] = np.arange(len(uniques))
    return remap[codes], [str(uniques[i]) for i in order]
