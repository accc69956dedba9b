"""Tasks inferred from the requests: runs whose instruction is the same request in other words.

Production traffic rarely carries task ids, and hashing the exact first message makes nearly
every run its own task (a single-run task has no variance, so incoherence goes to 0). Here:

1. **Mask** what varies between instances of one request: e-mail addresses, URLs, uuids and
   long hex ids, dates and times, and every token that holds a digit (order numbers, amounts,
   booking codes) become placeholders, so "where is order 123" and "Where's my order #456?"
   differ only in their wording.
2. **Vectorise** each distinct masked request, without English stop words, politeness fillers
   ("please", "hi", "need") and placeholders, which carry wording rather than intent, with
   TF-IDF over word 1–2-grams and character 3–5-grams inside word boundaries (both sublinear,
   each block L2-normalised, weighted equally and renormalised); or with a user embedding
   function ``embed(list_of_texts) -> (m, d) array`` on the masked requests.
3. **Cluster** with complete-linkage agglomerative clustering on cosine distance and a distance
   threshold (scikit-learn): two groups merge only while *every* pair of their requests is
   closer than ``threshold``, so a chain of near neighbours cannot join two intents (average
   linkage did, on the paraphrase set). Up to ``DENSE_LIMIT`` distinct requests the full
   distance matrix is used; above it, merges follow each request's ``NEIGHBOURS`` nearest
   neighbours (a sparse connectivity graph), so memory grows with n, not n².

Choosing the threshold: lower splits (a rephrased request becomes its own task), higher merges
(different intents share a task, and their different answers read as variance). Lexical
similarity between short requests is low even within an intent (two phrasings often share one
content word), hence a high default: 0.875 groups the paraphrase set in
``tests/data/paraphrases.json`` (7 intents × 6–7 phrasings with different ids) back to its
intents with an adjusted Rand index of 0.92 from 0.85 to 0.9 (1.0 at 0.95; 0.84 at 0.8), and
never puts two intents in one group at the default. What a request cannot say stays unsaid: on
tau-bench airline the opening user messages name the intent ("I'd like to change my flight
reservation"), not the task (which user, which booking), so its 50 tasks become 36 inferred
ones (ARI 0.40 against the true tasks; no threshold does better than 0.43). Read ``hotmess tasks``
(tightness, the example request) before trusting a grouping; lower the threshold when one group
holds two intents, and use an embedding function when phrasings share no words.

The inferred task id is ``req:`` and 10 hex digits of the SHA-256 of the group's most frequent
masked request, so the same traffic gets the same ids when it is inferred again.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hotmess.errors import AnalysisError
from hotmess.results import Result

from .common import factorize, json_safe
from .outcomes import agglomerate, cosine_distances

__all__ = ["DEFAULT_THRESHOLD", "METHODS", "InferredTask", "TaskInference", "infer_tasks", "mask_request"]

DEFAULT_THRESHOLD = 0.875
METHODS = ("text", "embedding")
#: Above this many distinct requests, merges follow a nearest-neighbour graph (memory O(n)).
DENSE_LIMIT = 4000
NEIGHBOURS = 30
#: Character budget of a request for comparison: the intent is in its first lines.
MAX_CHARS = 2000

_MASKS = (
    (re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"), " _email_ "),
    (re.compile(r"\bhttps?://\S+", re.IGNORECASE), " _url_ "),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE), " _id_ "),
    (re.compile(r"\b\d{4}-\d{1,2}-\d{1,2}(?:[t ]\d{1,2}:\d{2}(?::\d{2})?)?\b", re.IGNORECASE), " _date_ "),
    (re.compile(r"\b\d{1,2}[/.]\d{1,2}[/.]\d{2,4}\b"), " _date_ "),
    (re.compile(r"\b\d{1,2}:\d{2}(?::\d{2})?\s*(?:am|pm)?\b", re.IGNORECASE), " _time_ "),
    # Any token holding a digit: order numbers, amounts, booking codes (ZFA04Y), #12, 3rd.
    (re.compile(r"[#$€£]?\b\w*\d[\w.,-]*"), " _num_ "),
)


_FILLERS = frozenset({
    "please", "pls", "hi", "hello", "hey", "thanks", "thank", "want", "need", "like", "know",
    "tell", "help", "right", "just", "ok", "okay", "d", "ll", "m", "re", "s", "ve", "t",
})


def _content_words(masked: str) -> str:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    words = [w for w in re.findall(r"\w+", masked)
             if w not in ENGLISH_STOP_WORDS and w not in _FILLERS and not w.startswith("_")]
    return " ".join(words) or masked


def mask_request(text: str) -> str:
    """The request with its instance-specific parts replaced by placeholders, lower-cased and
    with whitespace collapsed (cut to ``MAX_CHARS``)."""
    masked = str(text)[:MAX_CHARS]
    for pattern, placeholder in _MASKS:
        masked = pattern.sub(placeholder, masked)
    return " ".join(masked.lower().split())


@dataclass(frozen=True)
class InferredTask(Result):
    """One inferred task: its id, how many runs it holds, a request from it, how tight it is."""

    task_id: str
    n_runs: int
    n_distinct: int  # distinct masked requests in the group
    example: str  # the group's most frequent request, as sent (unmasked)
    tightness: float  # mean cosine similarity of the group's requests to their centroid (1 = one wording)

    def to_dict(self) -> dict[str, Any]:
        return json_safe(self.__dict__)


@dataclass(frozen=True)
class TaskInference(Result):
    """Inferred task ids, one per request (``None`` where the request was missing)."""

    labels: np.ndarray
    tasks: list[InferredTask]
    method: str
    threshold: float
    n_requests: int
    n_missing: int
    warnings: list[str] = field(default_factory=list)

    @property
    def n_tasks(self) -> int:
        return len(self.tasks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method, "threshold": self.threshold, "n_requests": self.n_requests,
            "n_missing": self.n_missing, "n_tasks": self.n_tasks,
            "tasks": [t.to_dict() for t in self.tasks], "warnings": list(self.warnings),
        }


def _tfidf_vectors(texts: list[str]) -> Any:
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    words = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True,
                            token_pattern=r"(?u)\b\w+\b")
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)
    blocks = []
    for vectorizer in (words, chars):
        try:
            blocks.append(vectorizer.fit_transform(texts))
        except ValueError:  # an empty vocabulary: every request masked to nothing
            continue
    if not blocks:
        from scipy.sparse import csr_matrix

        return csr_matrix(np.ones((len(texts), 1)))
    return normalize(hstack(blocks).tocsr())


def _embedding_vectors(texts: list[str], embed: Callable[[list[str]], Any]) -> np.ndarray:
    vectors = np.asarray(embed(list(texts)), dtype=np.float64)
    if vectors.ndim != 2 or len(vectors) != len(texts):
        raise AnalysisError(f"embed must return an array of shape ({len(texts)}, d), got {np.shape(vectors)}")
    if not np.isfinite(vectors).all():
        raise AnalysisError("embed returned nan or inf")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


def _cluster(vectors: Any, threshold: float, dense_limit: int) -> np.ndarray:
    m = vectors.shape[0]
    if m == 1:
        return np.zeros(1, dtype=np.int64)
    if m <= dense_limit:
        return agglomerate(cosine_distances(vectors), threshold, linkage="complete")
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.decomposition import TruncatedSVD
    from sklearn.neighbors import kneighbors_graph
    from sklearn.preprocessing import normalize

    # Average linkage needs dense rows: a 256-dimensional projection keeps the cosine geometry
    # of TF-IDF well enough for merging decisions at this threshold.
    dense = vectors if isinstance(vectors, np.ndarray) else TruncatedSVD(
        n_components=min(256, vectors.shape[1] - 1), random_state=0).fit_transform(vectors)
    dense = normalize(dense)
    graph = kneighbors_graph(dense, n_neighbors=min(NEIGHBOURS, m - 1), metric="cosine", include_self=False)
    model = AgglomerativeClustering(n_clusters=None, distance_threshold=threshold, metric="cosine",
                                    linkage="complete", connectivity=graph.maximum(graph.T))
    codes, _ = factorize(model.fit_predict(dense).tolist())
    return codes


def _tightness(vectors: Any, weights: np.ndarray) -> float:
    rows = vectors.toarray() if hasattr(vectors, "toarray") else np.asarray(vectors)
    centroid = (rows * weights[:, None]).sum(axis=0)
    norm = np.linalg.norm(centroid)
    if norm == 0:
        return float("nan")
    similarity = rows @ (centroid / norm)
    return float(np.average(similarity, weights=weights))


def infer_tasks(
    requests: Sequence[str | None],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    method: str = "text",
    embed: Callable[[list[str]], Any] | None = None,
    mask: bool = True,
    dense_limit: int = DENSE_LIMIT,
) -> TaskInference:
    """Group requests that are the same task in other words (see the module docstring).

    Parameters
    ----------
    requests : one request per run (its instruction: the first user message); ``None`` where a
        run has none (its label is ``None``).
    threshold : cosine distance in [0, 2) below which groups merge (average linkage).
    method : ``"text"`` (TF-IDF over word and character n-grams of the masked request) or
        ``"embedding"`` (``embed`` applied to the masked requests).
    mask : replace numbers, ids, dates, e-mails and URLs before comparing (default). Without
        it, "refund order 12" and "refund order 34" are compared with their numbers, for
        traffic where the id is what makes the task (the numbers still differ only slightly).
    """
    if method not in METHODS:
        raise AnalysisError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "embedding" and embed is None:
        raise AnalysisError("method='embedding' needs embed=fn (fn(list_of_texts) -> (m, d) array)")
    threshold = float(threshold)
    if not np.isfinite(threshold) or not 0 <= threshold < 2:
        raise AnalysisError(f"threshold must be a cosine distance in [0, 2), got {threshold}")
    requests = list(requests)
    present = [i for i, r in enumerate(requests) if r is not None and str(r).strip()]
    labels = np.full(len(requests), None, dtype=object)
    warnings: list[str] = []
    if not present:
        return TaskInference(labels, [], method, threshold, len(requests), len(requests),
                             ["no run has a request (an instruction or first user message) to group"])
    masked = [mask_request(requests[i]) if mask else " ".join(str(requests[i])[:MAX_CHARS].lower().split())
              for i in present]
    # Sorted distinct requests: the grouping and the ids do not depend on the order runs came in.
    uniques = sorted(set(masked))
    index = {u: j for j, u in enumerate(uniques)}
    codes = np.fromiter((index[m] for m in masked), dtype=np.int64, count=len(masked))
    vectors = (_tfidf_vectors([_content_words(u) for u in uniques]) if method == "text"
               else _embedding_vectors(uniques, embed))
    groups = _cluster(vectors, threshold, dense_limit)
    counts = np.bincount(codes, minlength=len(uniques)).astype(np.float64)

    tasks: list[InferredTask] = []
    group_ids: dict[int, str] = {}
    for g in range(int(groups.max()) + 1):
        members = np.flatnonzero(groups == g)
        top = members[np.argmax(counts[members])]  # the most frequent; the first in sorted order on ties
        task_id = "req:" + hashlib.sha256(uniques[top].encode("utf-8", "backslashreplace")).hexdigest()[:10]
        group_ids[g] = task_id
        first_run = present[int(np.flatnonzero(codes == top)[0])]
        tasks.append(InferredTask(
            task_id=task_id, n_runs=int(counts[members].sum()), n_distinct=len(members),
            example=str(requests[first_run]),
            tightness=1.0 if len(members) == 1 else _tightness(vectors[members], counts[members]),
        ))
    for position, i in enumerate(present):
        labels[i] = group_ids[int(groups[codes[position]])]
    tasks.sort(key=lambda t: (-t.n_runs, t.task_id))
    singles = sum(t.n_runs == 1 for t in tasks)
    if singles and singles >= len(tasks) / 2:
        warnings.append(
            f"{singles} of {len(tasks)} inferred tasks have a single run (no variance to measure): "
            "raise --threshold to group more loosely, or record task ids (--task-attr)"
        )
    return TaskInference(labels, tasks, method, threshold, len(requests), len(requests) - len(present), warnings)

