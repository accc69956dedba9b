"""Goal drift inside a run: does a run move away from its first goal, or from its instruction?

``dist_k`` = distance of goal ``k`` from the run's first goal: ``exact``: 0 if the key is
equal, else 1; ``text``: ``1 − cos`` of TF-IDF vectors (fitted on every distinct goal text
of every task analyzed, :class:`TermFrequencies`); ``embedding``: cosine distance of the
``embed`` vectors. A run's drift is the least-squares slope of ``dist_k`` over
``k = 0..L−1`` (per goal step)::

    slope = Σ_k (k − k̄)(dist_k − d̄) / Σ_k (k − k̄)²

for runs with ``L ≥ 3``. ``mean_slope`` is its mean over those runs (``runs`` of them), and runs
whose slope exceeds ``drift_threshold`` are listed, largest first. With exact tool-call keys any
change of tool counts as distance 1, so short runs that change tool reach large slopes.

With ``drift_from="instruction"`` the distance is measured from the run's instruction ``I``
(the task as the agent was given it: ``instructions[run_id]``, see
:func:`hotmess.store.readers.read_instructions`) instead of its first goal, and goal 0 counts
too (its distance need not be 0)::

    dist_k = 1 − cos(v(goal_k), v(I))     text: TF-IDF vectors fitted on every distinct goal
                                          text plus every distinct instruction of a run with a
                                          goal (texts normalised: stripped, casefolded)
    dist_k = 1 − cos(e(goal_k), e(I))     embedding: the ``embed`` vectors

and the slope is fitted as above. A run moving away from its instruction has a positive slope;
one that stays as close to it as it started, a slope near 0. ``exact`` keys are refused (a goal
key never equals an instruction: every distance would be 1). Runs without an instruction
(``None`` or blank) are left out of ``mean_slope`` and ``runs``; ``runs_without_instruction``
counts those with ``L ≥ 3``.

:func:`~hotmess.analyzers.goals.goal_coherence` reports it (``drift_threshold``,
``drift_from``, ``instructions``) beside the goal coherence per position.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hotmess.errors import AnalysisError
from hotmess.results import Result
from hotmess.tables import Table

from .columns import column
from .common import factorize, json_float
from .goal_keys import goal_text
from .outcomes import cosine_distances, normalize_text

__all__ = [
    "DRIFT_FROM",
    "DRIFT_LIST_LIMIT",
    "DriftingRun",
    "GoalDrift",
    "TermFrequencies",
    "drift_slopes",
    "drift_summary",
    "drift_texts",
    "embed_texts",
    "instruction_codes",
    "term_frequencies",
]

#: What a run's goal drift is measured from: its first goal, or its instruction.
DRIFT_FROM = ("first", "instruction")
#: Drifting runs listed by ``to_dict()`` (largest slope first); the object keeps them all.
DRIFT_LIST_LIMIT = 10  # the most drifting runs a result lists (hotmess goals --limit)


@dataclass(frozen=True)
class DriftingRun(Result):
    run_id: str
    task_id: str
    slope: float
    n_goals: int


@dataclass(frozen=True, eq=False)
class GoalDrift(Result):
    """Per-run drift from the first goal (``drift_from="first"``) or from the run's instruction
    (``"instruction"``). ``slopes`` is nan for runs with fewer than 3 goals and, from the
    instruction, for runs without one (``runs_without_instruction`` of those with 3 goals or
    more; None when measured from the first goal)."""

    mean_slope: float
    runs: int
    threshold: float
    drifting: tuple[DriftingRun, ...]
    run_ids: np.ndarray = field(repr=False)
    slopes: np.ndarray = field(repr=False)
    drift_from: str = "first"
    runs_without_instruction: int | None = None

    def to_dict(self, limit: int | None = DRIFT_LIST_LIMIT) -> dict[str, Any]:
        listed = self.drifting if limit is None else self.drifting[:limit]
        return {
            "mean_slope": json_float(self.mean_slope),
            "runs": int(self.runs),
            "from": self.drift_from,
            "runs_without_instruction": self.runs_without_instruction,
            "threshold": float(self.threshold),
            "n_drifting": len(self.drifting),
            "drifting": [d.to_dict() for d in listed],
        }


def embed_texts(embed: Callable[[list[str]], Any], texts: list[str]) -> np.ndarray:
    """``embed(texts)`` as a float64 ``(len(texts), d)`` array of finite vectors, else ValueError."""
    vectors = np.asarray(embed(texts), dtype=np.float64) if texts else np.zeros((0, 1))
    if vectors.ndim != 2 or len(vectors) != len(texts):
        raise AnalysisError(
            f"embed must return an array of shape ({len(texts)}, d), got {np.shape(vectors)}"
        )
    if not np.isfinite(vectors).all():
        raise AnalysisError("embed returned nan or inf")
    return vectors


@dataclass(frozen=True)
class TermFrequencies:
    """The TF-IDF fit of the text drift: ``n_texts`` distinct (normalised) texts and, per
    token, the number of them holding it. Fitted on the texts of every task at once
    (:func:`term_frequencies`), so that the distances of one task's goals computed apart (on
    an engine's worker) are those of the analysis of all of them."""

    n_texts: int
    df: Mapping[str, int]


def term_frequencies(texts: list[str]) -> TermFrequencies:
    """The :class:`TermFrequencies` of distinct normalised ``texts`` (:func:`drift_texts`)."""
    counts: dict[str, int] = {}
    analyzer = _vectorizer().build_analyzer()
    for text in texts:
        for token in set(analyzer(text)):
            counts[token] = counts.get(token, 0) + 1
    return TermFrequencies(len(texts), counts)


def drift_texts(keys: list[str], instructions: Sequence[str] = ()) -> list[str]:
    """The distinct normalised texts the TF-IDF of the text drift is fitted on: those of the
    goal keys ``keys``, then those of the ``instructions`` (drift from the instruction)."""
    _, texts = factorize(
        [normalize_text(goal_text(k)) for k in keys] + [normalize_text(t) for t in instructions]
    )
    return [str(t) for t in texts]


def drift_slopes(
    method: str,
    codes: np.ndarray,
    uniques: list[str],
    goal_run: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    ordinal: np.ndarray,
    *,
    embedded: tuple[np.ndarray, np.ndarray] | None,
    anchors: tuple[np.ndarray, list[str]] | None = None,
    embed: Callable[[list[str]], Any] | None = None,
    frequencies: TermFrequencies | None = None,
) -> tuple[np.ndarray, int | None]:
    """Each run's drift slope (module docstring; nan: not fitted) and, from the instruction,
    the runs with 3 goals or more without one (None from the first goal).

    The goals are in run then step order: goal ``i`` has key ``uniques[codes[i]]``, run row
    ``goal_run[i]`` and ordinal ``ordinal[i]`` in its run; run ``r`` has ``lengths[r]`` goals
    from ``starts[r]``. ``embedded`` is ``(vectors, each goal's row)`` for
    ``method="embedding"``. ``anchors`` (each run's instruction code, -1 for none, and the
    distinct instructions; :func:`instruction_codes`) measures drift from the instruction
    instead of the first goal, with ``embed`` for its vectors. ``frequencies``: the TF-IDF fit
    of ``method="text"`` (default: fitted on these goals' texts and instructions).
    """
    without: int | None = None
    if anchors is None:
        first = starts[:-1][goal_run]  # index of each goal's run's first goal
        if method == "exact":
            dist = (codes != codes[first]).astype(np.float64)
        elif method == "text":
            dist = _tfidf_distances(codes, uniques, first, frequencies)
        else:
            assert embedded is not None
            dist = _embedding_distances(*embedded, first)
    else:
        anchor_of_run, anchor_texts = anchors
        anchor = anchor_of_run[goal_run]
        has = anchor >= 0
        dist = np.full(len(codes), np.nan)
        if has.any():
            if method == "text":
                dist[has] = _tfidf_instruction_distances(
                    codes[has], uniques, anchor[has], anchor_texts, frequencies
                )
            else:
                assert embedded is not None and embed is not None
                vectors, rows = embedded
                targets = embed_texts(embed, anchor_texts)
                if targets.shape[1] != vectors.shape[1]:
                    raise AnalysisError(
                        f"embed returned vectors of {targets.shape[1]} dimensions for the "
                        f"instructions and {vectors.shape[1]} for the goals"
                    )
                dist[has] = cosine_distances(vectors[rows[has]], targets[anchor[has]])
        without = int(np.count_nonzero((lengths >= 3) & (anchor_of_run < 0)))
    slopes = _slopes(goal_run, ordinal.astype(np.float64), dist, lengths)
    if anchors is not None:
        slopes[anchors[0] < 0] = np.nan
    return slopes, without


def drift_summary(
    run_ids: np.ndarray,
    run_tasks: np.ndarray,
    slopes: np.ndarray,
    lengths: np.ndarray,
    *,
    threshold: float,
    drift_from: str = "first",
    runs_without_instruction: int | None = None,
) -> GoalDrift:
    """The :class:`GoalDrift` of runs ``run_ids`` (tasks ``run_tasks``) with drift ``slopes``
    (:func:`drift_slopes`) and ``lengths`` goals: their mean over the fitted runs, and the runs
    whose slope exceeds ``threshold``, steepest first (then more goals, then run order)."""
    fitted = np.isfinite(slopes)
    over = np.flatnonzero(fitted & (slopes > threshold))
    # steepest first; of equal slopes the run with more goals first (more of a drift seen)
    over = over[np.lexsort((over, -lengths[over], -slopes[over]))]
    drifting = tuple(
        DriftingRun(str(run_ids[r]), str(run_tasks[r]), float(slopes[r]), int(lengths[r]))
        for r in over
    )
    runs = int(fitted.sum())
    return GoalDrift(
        mean_slope=float(slopes[fitted].mean()) if runs else float("nan"),
        runs=runs,
        threshold=threshold,
        drifting=drifting,
        run_ids=np.asarray(run_ids),
        slopes=slopes if len(lengths) else np.zeros(0),
        drift_from=drift_from,
        runs_without_instruction=runs_without_instruction,
    )


def instruction_codes(
    runs: Table,
    complete: np.ndarray,
    run_ids: np.ndarray,
    lengths: np.ndarray,
    instructions: Mapping[str, str | None] | None,
) -> tuple[np.ndarray, list[str]]:
    """Each run's instruction as a code into the distinct instructions of runs with a goal
    (-1: none, blank, or the run has no goal)."""
    if instructions is None:
        given = column(runs, "instruction")[complete].tolist()
    else:
        if not isinstance(instructions, Mapping):
            raise AnalysisError(
                f"instructions must map run ids to text, got {type(instructions).__name__}"
            )
        given = [instructions.get(r) for r in run_ids.tolist()]
    codes = np.full(len(given), -1, dtype=np.int64)
    seen: dict[str, int] = {}
    for r, text in enumerate(given):
        if text is None or not lengths[r]:
            continue
        if not isinstance(text, str):
            raise AnalysisError(
                f"the instruction of run {run_ids[r]!r} is {type(text).__name__}, not text"
            )
        if text.strip():
            codes[r] = seen.setdefault(text, len(seen))
    return codes, list(seen)


def _slopes(run: np.ndarray, t: np.ndarray, d: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Least-squares slope of d over t per run (nan for runs with fewer than 3 points)."""
    n_runs = len(lengths)
    m = lengths.astype(np.float64)
    s_t = np.bincount(run, weights=t, minlength=n_runs)
    s_d = np.bincount(run, weights=d, minlength=n_runs)
    s_tt = np.bincount(run, weights=t * t, minlength=n_runs)
    s_td = np.bincount(run, weights=t * d, minlength=n_runs)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (m * s_td - s_t * s_d) / (m * s_tt - s_t**2)
    slope[lengths < 3] = np.nan
    return slope


def _tfidf_distances(
    key_codes: np.ndarray, keys: list[str], first: np.ndarray, frequencies: TermFrequencies | None
) -> np.ndarray:
    """1 − cosine of TF-IDF vectors (fitted on the distinct goal texts, or ``frequencies``) of
    each goal (key ``keys[key_codes[i]]``) and the first goal of its run; texts without a token
    are at distance 1 from any other text."""
    if not len(key_codes):
        return np.zeros(0)
    text_of_key, texts = factorize(normalize_text(goal_text(k)) for k in keys)
    codes = text_of_key[key_codes]
    return _tfidf_pair_distances(texts, codes, codes[first], frequencies)


def _tfidf_instruction_distances(
    key_codes: np.ndarray,
    keys: list[str],
    anchor: np.ndarray,
    instructions: list[str],
    frequencies: TermFrequencies | None,
) -> np.ndarray:
    """1 − cosine of TF-IDF vectors (fitted on the distinct goal texts and instructions, or
    ``frequencies``) of each goal (key ``keys[key_codes[i]]``) and its run's instruction
    (``instructions[anchor[i]]``)."""
    text_of, texts = factorize(
        [normalize_text(goal_text(k)) for k in keys] + [normalize_text(t) for t in instructions]
    )
    return _tfidf_pair_distances(
        texts, text_of[key_codes], text_of[len(keys) + anchor], frequencies
    )


def _vectorizer(tfidf: bool = False) -> Any:
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

    return (TfidfVectorizer if tfidf else CountVectorizer)(token_pattern=r"(?u)\b\w+\b")


def _tfidf_pair_distances(
    texts: list[str], a: np.ndarray, b: np.ndarray, frequencies: TermFrequencies | None = None
) -> np.ndarray:
    """1 − cosine of the TF-IDF vectors of ``texts[a[i]]`` and ``texts[b[i]]``; 0 for the same
    text, 1 for a text without a token and another. The fit is scikit-learn's
    ``TfidfVectorizer``'s on the distinct ``texts`` (smooth idf ``ln((1 + n) / (1 + df)) + 1``),
    with ``n`` and ``df`` taken from ``frequencies`` when given."""
    if not len(a):
        return np.zeros(0)
    pair = a * len(texts) + b
    distinct, inverse = np.unique(pair, return_inverse=True)
    a, b = distinct // len(texts), distinct % len(texts)
    vectorizer = _vectorizer(tfidf=True)
    try:
        if frequencies is None:
            matrix = vectorizer.fit_transform(texts)
        else:
            vectorizer.fit(texts)
            df = np.array([frequencies.df[t] for t in vectorizer.get_feature_names_out()], dtype=np.float64)
            vectorizer.idf_ = np.log((1.0 + frequencies.n_texts) / (1.0 + df)) + 1.0
            matrix = vectorizer.transform(texts)
        cosine = np.asarray(matrix[a].multiply(matrix[b]).sum(axis=1)).ravel()
    except ValueError:  # no text has a token
        cosine = np.zeros(len(distinct))
    dist = np.clip(1.0 - cosine, 0.0, 1.0)
    dist[a == b] = 0.0
    return dist[inverse]


def _embedding_distances(vectors: np.ndarray, codes: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Cosine distance of each goal's embedding (row ``codes[i]`` of ``vectors``) from its run's
    first goal's."""
    if not len(codes):
        return np.zeros(0)
    dist = cosine_distances(vectors[codes], vectors[codes[first]])
    dist[codes == codes[first]] = 0.0
    return dist
