"""Outcome mappers: turn each run's outcome into a key (a ``str``) so runs can be compared.

Two runs of a task "produced the same outcome" iff their keys are equal. Mappers:

- :func:`exact_keys` — normalised text, or canonical JSON when the outcome parses as JSON.
- :func:`action_keys` — the run's state-changing tool calls, in order, with canonical arguments.
- :func:`text_clusters` — TF-IDF + agglomerative clustering (cosine, average linkage), per task.
- :func:`embedding_clusters` — the same clustering on user-supplied embeddings.
- :func:`map_outcomes` — a user function ``fn(outcome_text) -> hashable``.

All return a 1-D object array of ``str`` keys, one per input.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from hotmess.errors import AnalysisError, HotmessError
from hotmess.progress import Progress, counted
from hotmess.tools import READ_ONLY_NAMES, READ_ONLY_PREFIXES, is_read_only
from hotmess.tools import canonical_json as _canonical_json
from hotmess.tools import canonical_value as _canonical_value

from .common import factorize

__all__ = [
    "DEFAULT_READ_ONLY",
    "NONE_KEY",
    "READ_ONLY_NAMES",
    "READ_ONLY_PREFIXES",
    "MissingDependencyError",
    "action_key",
    "action_keys",
    "action_piece",
    "canonical_action",
    "canonical_json",
    "canonical_value",
    "cosine_distances",
    "embedding_clusters",
    "exact_key",
    "exact_keys",
    "is_read_only",
    "map_outcomes",
    "normalize_text",
    "parse_actions",
    "read_only_predicate",
    "sentence_transformer_embedder",
    "text_clusters",
]

#: Key of a run without an outcome (``None`` or JSON ``null``).
NONE_KEY = "<none>"



class MissingDependencyError(HotmessError, ImportError):
    """An optional dependency (an extra) or a cached model is needed and is not there."""


# ---------------------------------------------------------------------------- canonical forms


def normalize_text(text: str) -> str:
    """Strip, casefold and collapse runs of whitespace to one space."""
    return " ".join(str(text).split()).casefold()


def canonical_value(value: Any) -> Any:
    """A JSON value with numbers canonicalised (``1.0`` → ``1``), recursively.

    Dict keys become strings (``json.dumps(sort_keys=True)`` then orders them), tuples become
    lists, numpy scalars Python scalars; anything else not JSON becomes its ``str``.
    (:func:`hotmess.tools.canonical_value` with ``strict=False``.)
    """
    return _canonical_value(value, strict=False)


def canonical_json(value: Any) -> str:
    """``json.dumps`` of :func:`canonical_value` with sorted keys and no spaces; NaN is
    written as ``NaN``. (:func:`hotmess.tools.canonical_json` with ``strict=False``.)"""
    return _canonical_json(value, strict=False)


def _loads(text: Any) -> tuple[bool, Any]:
    if not isinstance(text, str):
        return True, text
    try:
        return True, json.loads(text)
    except (ValueError, RecursionError):
        return False, text


# ---------------------------------------------------------------------------- exact


def exact_key(outcome: Any) -> str:
    """The exact-match key of one outcome.

    - ``None`` (or JSON ``null``) → ``"<none>"``;
    - text that parses as a JSON string → that string, normalised (strip, casefold, collapse
      whitespace);
    - text that parses as other JSON → ``json.dumps(value, sort_keys=True, separators=(",", ":"))``
      with numbers canonicalised (``1.0`` == ``1``);
    - other text → normalised text. Non-text values are treated as already-parsed JSON.
    """
    if outcome is None:
        return NONE_KEY
    if isinstance(outcome, float) and outcome != outcome:
        return NONE_KEY
    parsed, value = _loads(outcome)
    if value is None:
        return NONE_KEY
    if isinstance(value, str):
        return normalize_text(value)
    if not parsed:  # pragma: no cover - _loads returns the text itself when parsing fails
        return normalize_text(value)
    return canonical_json(value)


def exact_keys(outcomes: Iterable[Any]) -> np.ndarray:
    """:func:`exact_key` of each outcome (object array of ``str``); equal texts are parsed once."""
    cache: dict[Any, str] = {}
    out = []
    for outcome in outcomes:
        try:
            key = cache.get(outcome)
        except TypeError:  # unhashable (already-parsed dict/list)
            out.append(exact_key(outcome))
            continue
        if key is None:
            key = cache[outcome] = exact_key(outcome)
        out.append(key)
    return _object_array(out)


# ---------------------------------------------------------------------------- actions


#: The default read-only filter (a predicate over tool names); see :func:`is_read_only`.
DEFAULT_READ_ONLY: Callable[[str], bool] = is_read_only

ReadOnly = Callable[[str], bool] | Collection[str] | None


def read_only_predicate(read_only: ReadOnly) -> Callable[[str], bool]:
    """A predicate from ``read_only``: a callable (used as is), a collection of exact tool names,
    or ``None`` (no tool is read-only: every call counts)."""
    if read_only is None:
        return _never
    if callable(read_only):
        return read_only
    if isinstance(read_only, (str, bytes)):
        raise AnalysisError(
            "read_only must be a predicate, a collection of tool names or None, "
            f"not a single string ({read_only!r}); use {{{read_only!r}}}"
        )
    if isinstance(read_only, Collection):
        names = frozenset(str(n) for n in read_only)
        return names.__contains__
    raise AnalysisError(
        f"read_only must be a predicate, a collection of tool names or None, got {type(read_only).__name__}"
    )


def _never(name: str) -> bool:
    return False


def _parse_arguments(arguments: Any) -> Any:
    if arguments is None:
        return {}
    if isinstance(arguments, str):
        ok, value = _loads(arguments)
        return value if ok else arguments
    return arguments


def canonical_action(call: Any) -> tuple[str, Any]:
    """``(name, canonical arguments)`` of one tool call.

    Accepted forms: ``(name, arguments)``; ``{"name": ..., "kwargs"|"arguments"|"args"|"input": ...}``;
    the OpenAI form ``{"function": {"name": ..., "arguments": "<json>"}}``. Arguments given as JSON
    text are parsed; missing arguments are ``{}``.
    """
    if isinstance(call, Mapping):
        if "function" in call and isinstance(call["function"], Mapping):
            call = call["function"]
        if "name" not in call:
            raise AnalysisError(f"a tool call needs a 'name', got keys {sorted(map(str, call))}")
        name = call["name"]
        arguments = None
        for field in ("kwargs", "arguments", "args", "input"):
            if field in call:
                arguments = call[field]
                break
    elif isinstance(call, (list, tuple)) and len(call) == 2:
        name, arguments = call
    else:
        raise AnalysisError(
            f"a tool call must be (name, arguments) or a dict with 'name', got {call!r:.80}"
        )
    return str(name), canonical_value(_parse_arguments(arguments))


def action_piece(name: str, arguments: Any) -> str:
    """One call ``[name, arguments]`` as canonical JSON text: the piece action keys are made of."""
    return json.dumps([name, arguments], sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def action_key(calls: Iterable[Any], read_only: ReadOnly = DEFAULT_READ_ONLY) -> str:
    """Canonical JSON list ``[[name, args], ...]`` of the state-changing calls, in order."""
    is_ro = read_only_predicate(read_only)
    pieces = []
    for call in calls:
        name, arguments = canonical_action(call)
        if not is_ro(name):
            pieces.append(action_piece(name, arguments))
    return "[" + ",".join(pieces) + "]"


def action_keys(
    tool_calls_per_run: Iterable[Iterable[Any] | None], read_only: ReadOnly = DEFAULT_READ_ONLY
) -> np.ndarray:
    """Each run's key: its state-changing tool calls, in order, as a canonical JSON list.

    ``key = json.dumps([[name, canonical(args)] for each call if not read_only(name)],
    sort_keys=True, separators=(",", ":"))``: arguments with recursively sorted keys and
    numbers canonicalised (``1.0`` == ``1``). ``read_only`` is a predicate, a collection of tool
    names, or ``None`` (keep every call); the default drops get*/search*/list*/find*/lookup*/
    read*/fetch*/query*, think and calculate (see :func:`is_read_only`). A run with no (or
    ``None``) calls gets ``"[]"``.
    """
    is_ro = read_only_predicate(read_only)
    ro_cache: dict[str, bool] = {}
    out = []
    for calls in tool_calls_per_run:
        pieces = []
        for call in calls or ():
            name, arguments = canonical_action(call)
            ro = ro_cache.get(name)
            if ro is None:
                ro = ro_cache[name] = bool(is_ro(name))
            if not ro:
                pieces.append(action_piece(name, arguments))
        out.append("[" + ",".join(pieces) + "]")
    return _object_array(out)


def parse_actions(text: Any) -> list[tuple[str, Any]] | None:
    """A JSON list of actions (``[{"name": ..., "kwargs"|"arguments": ...}, ...]`` or
    ``[[name, args], ...]``) as ``[(name, canonical args)]``; ``None`` when ``text`` is not one."""
    if text is None:
        return None
    ok, value = _loads(text)
    if not ok or not isinstance(value, list):
        return None
    try:
        return [canonical_action(call) for call in value]
    except (ValueError, TypeError):
        return None


# ---------------------------------------------------------------------------- user function


def map_outcomes(outcomes: Iterable[Any], method: str | Callable[[Any], Hashable]) -> np.ndarray:
    """Keys from ``method``: ``"exact"`` (:func:`exact_keys`) or a callable ``fn(outcome_text)``.

    A callable's result must be hashable; a ``str`` is the key itself, anything else becomes
    ``"<type name>:<repr>"`` (so ``1`` and ``"1"`` stay distinct).
    """
    if isinstance(method, str):
        if method == "exact":
            return exact_keys(outcomes)
        raise AnalysisError(f"method must be 'exact' or a callable, got {method!r}")
    if not callable(method):
        raise AnalysisError(f"method must be 'exact' or a callable, got {type(method).__name__}")
    out = []
    for outcome in outcomes:
        value = method(outcome)
        try:
            hash(value)
        except TypeError:
            raise AnalysisError(
                f"the outcome function returned an unhashable {type(value).__name__} "
                f"for outcome {outcome!r:.80}"
            ) from None
        out.append(value if isinstance(value, str) else f"{type(value).__name__}:{value!r}")
    return _object_array(out)


# ---------------------------------------------------------------------------- clustering


def _check_threshold(distance_threshold: float) -> float:
    threshold = float(distance_threshold)
    if not np.isfinite(threshold) or threshold < 0:
        raise AnalysisError(
            f"distance_threshold must be a finite number >= 0, got {distance_threshold}"
        )
    return threshold


def agglomerate(distances: np.ndarray, threshold: float, linkage: str = "average") -> np.ndarray:
    """Agglomerative clusters (average linkage unless told) of a precomputed distance matrix,
    labelled by first appearance."""
    m = distances.shape[0]
    if m == 1:
        return np.zeros(1, dtype=np.int64)
    from sklearn.cluster import AgglomerativeClustering

    model = AgglomerativeClustering(
        n_clusters=None, distance_threshold=threshold, metric="precomputed", linkage=linkage
    )
    labels = model.fit_predict(distances)
    codes, _ = factorize(labels.tolist())
    return codes


def cosine_distances(x: Any, y: np.ndarray | None = None) -> np.ndarray:
    """Cosine distances ``1 − cos`` in [0, 2]; a zero vector is at distance 1 from any vector.

    Without ``y``: the symmetric ``(n, n)`` matrix between the rows of ``x`` (dense or sparse,
    as scikit-learn's ``cosine_distances``), with a zero diagonal, for clustering. With ``y``
    (same shape as ``x``): the ``n`` distances of ``x[i]`` from ``y[i]``, row by row.
    """
    if y is None:
        from sklearn.metrics.pairwise import cosine_distances as pairwise

        distances = np.clip(pairwise(x), 0.0, 2.0)
        distances = (distances + distances.T) / 2.0
        np.fill_diagonal(distances, 0.0)
        return distances
    nx, ny = np.linalg.norm(x, axis=1), np.linalg.norm(y, axis=1)
    cosine = np.einsum("ij,ij->i", x, y) / (np.where(nx > 0, nx, 1.0) * np.where(ny > 0, ny, 1.0))
    return np.clip(1.0 - cosine, 0.0, 2.0)


def _group_codes(groups: Any, n: int) -> tuple[np.ndarray, list[Hashable]]:
    if groups is None:
        return np.zeros(n, dtype=np.int64), ["0"]
    groups = list(groups)
    if len(groups) != n:
        raise AnalysisError(f"groups has {len(groups)} values, expected {n} (one per outcome)")
    return factorize(groups)


def text_clusters(
    texts: Sequence[str | None],
    groups: Sequence[Hashable] | None = None,
    distance_threshold: float = 0.5,
    progress: Progress | None = None,
) -> np.ndarray:
    """Cluster outcome texts per group (task): TF-IDF, then agglomerative clustering.

    Within each group, texts are normalised (strip, casefold, collapse whitespace) and equal
    texts collapsed (each distinct text counted once); the distinct texts are embedded with
    ``TfidfVectorizer`` (fitted on that group, single-character tokens kept) and clustered with
    ``AgglomerativeClustering(n_clusters=None, distance_threshold, metric="cosine",
    linkage="average")`` (computed as a precomputed cosine-distance matrix, which is the same).
    Texts without any token are at cosine distance 1 from everything. ``None`` texts get the key
    ``"<none>"``. Keys are ``"text:<group>:<j>"``, ``j`` numbering the group's clusters in order of
    first appearance, so keys never collide across groups. ``progress``
    (:mod:`hotmess.progress`) is told the groups clustered, as ``"tasks clustered"``.
    """
    threshold = _check_threshold(distance_threshold)
    texts = list(texts)
    codes, names = _group_codes(groups, len(texts))
    out = np.empty(len(texts), dtype=object)
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    parts = np.split(order, bounds) if len(order) else []
    for members in counted(parts, progress, "tasks clustered", len(parts), every=16):
        group = names[codes[members[0]]]
        normal: list[str | None] = [
            None if texts[i] is None else normalize_text(texts[i]) for i in members
        ]
        present = [j for j, t in enumerate(normal) if t is not None]
        for j, t in enumerate(normal):
            if t is None:
                out[members[j]] = NONE_KEY
        if not present:
            continue
        unique_codes, uniques = factorize(normal[j] for j in present)
        labels = _cluster_texts(uniques, threshold)
        for j, code in zip(present, unique_codes, strict=True):
            out[members[j]] = f"text:{group}:{labels[code]}"
    return out


def _cluster_texts(uniques: list[Any], threshold: float) -> np.ndarray:
    if len(uniques) == 1:
        return np.zeros(1, dtype=np.int64)
    from sklearn.feature_extraction.text import TfidfVectorizer

    try:
        matrix = TfidfVectorizer(token_pattern=r"(?u)\b\w+\b").fit_transform(uniques)
    except ValueError:  # empty vocabulary: no text has a token; each distinct text its own cluster
        return np.arange(len(uniques), dtype=np.int64)
    return agglomerate(cosine_distances(matrix), threshold)


def embedding_clusters(
    data: Any,
    groups: Sequence[Hashable] | None = None,
    *,
    embed: Callable[[list[str]], Any] | None = None,
    distance_threshold: float = 0.5,
) -> np.ndarray:
    """Cluster embeddings per group (task), as :func:`text_clusters` does with TF-IDF vectors.

    ``data`` is an ``(n, d)`` array of vectors, or ``n`` texts when ``embed`` is given
    (``embed(list_of_texts) -> (m, d) array``; each distinct text is embedded once, ``None`` texts
    get ``"<none>"``). Per group, equal vectors are collapsed, then
    ``AgglomerativeClustering(n_clusters=None, distance_threshold, metric="cosine",
    linkage="average")``. Keys are ``"embedding:<group>:<j>"``.
    """
    threshold = _check_threshold(distance_threshold)
    none_mask: np.ndarray
    if embed is not None:
        texts = list(data)
        none_mask = np.array([t is None for t in texts], dtype=bool)
        codes_t, uniques = factorize(str(t) for t in texts if t is not None)
        vectors_u = np.asarray(embed(list(uniques)), dtype=np.float64) if uniques else None
        if vectors_u is not None and (vectors_u.ndim != 2 or len(vectors_u) != len(uniques)):
            raise AnalysisError(
                f"embed must return an array of shape ({len(uniques)}, d), got {np.shape(vectors_u)}"
            )
        dim = vectors_u.shape[1] if vectors_u is not None else 1
        vectors = np.zeros((len(texts), dim))
        if vectors_u is not None:
            vectors[~none_mask] = vectors_u[codes_t]
    else:
        vectors = np.asarray(data, dtype=np.float64)
        if vectors.ndim != 2:
            raise AnalysisError(
                f"vectors must be a 2-D array (n, d), got shape {vectors.shape}; "
                "pass texts with embed=... to embed them"
            )
        if not np.isfinite(vectors).all():
            raise AnalysisError("vectors contain nan or inf")
        none_mask = np.zeros(len(vectors), dtype=bool)
    codes, names = _group_codes(groups, len(vectors))
    out = np.empty(len(vectors), dtype=object)
    out[none_mask] = NONE_KEY
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    for members in np.split(order, bounds) if len(order) else []:
        group = names[codes[members[0]]]
        members = members[~none_mask[members]]
        if not len(members):
            continue
        rows = vectors[members]
        inverse, uniques = factorize(row.tobytes() for row in rows)
        first = np.unique(inverse, return_index=True)[1]  # first row of each distinct vector
        if len(uniques) == 1:
            labels = np.zeros(1, dtype=np.int64)
        else:
            labels = agglomerate(cosine_distances(rows[first]), threshold)
        for i, u in zip(members, inverse, strict=True):
            out[i] = f"embedding:{group}:{labels[u]}"
    return out


def sentence_transformer_embedder(
    model_name: str, *, device: str | None = None, batch_size: int = 64
) -> Callable[[list[str]], np.ndarray]:
    """An ``embed`` callable from a sentence-transformers model **already on disk**.

    Never downloads: the model is loaded with ``local_files_only=True`` and ``HF_HUB_OFFLINE=1``
    (set for the load only). Raises :class:`MissingDependencyError` when sentence-transformers is
    not installed (``pip install 'hotmess[embeddings]'``) or the model is not in the local cache
    (download it yourself first, e.g. ``huggingface-cli download <model>``), or is a local path
    that does not exist.
    """
    saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise MissingDependencyError(
                "embedding outcomes need sentence-transformers: pip install 'hotmess[embeddings]' "
                f"({exc})"
            ) from exc
        try:
            model = SentenceTransformer(model_name, device=device, local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - any load failure means "not available offline"
            raise MissingDependencyError(
                f"sentence-transformers model {model_name!r} is not available on disk and hotmess "
                f"never downloads models; fetch it first (e.g. huggingface-cli download {model_name}) "
                f"or pass a local path ({type(exc).__name__}: {exc})"
            ) from exc
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def embed(texts: list[str]) -> np.ndarray:
        return np.asarray(
            model.encode(list(texts), batch_size=batch_size, show_progress_bar=False),
            dtype=np.float64,
        )

    return embed


def _object_array(values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out
