"""The verdict: an analysis's incoherence read in words, for every renderer.

The terminal (``hotmess analyze``, ``hotmess demo``) and the HTML report say the same sentence;
each styles it its own way from the ``level``. The thresholds are conventions, the numbers are
the result. Incoherence sets the reading, except that an agent whose failures repeat is not
called a hot mess however large its variance share: under the Brier decomposition an agent that
always fails a task the same way has incoherence equal to its success rate on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

#: Incoherence below this: most error is bias.
COHERENT_BELOW = 0.4
#: Incoherence above this: most error is variance.
HOT_MESS_ABOVE = 0.6
#: Failure consistency from which a variance-heavy agent is not called a hot mess: two of its
#: failures on a task are more likely than not the same miss.
FAILURES_REPEAT_FROM = 0.5


class Verdict(NamedTuple):
    level: str  # "coherent", "mixed", "hotmess", or "" when incoherence is undefined
    word: str  # the reading ("coherent", "mixed", "a hot mess"); "" when undefined
    rest: str  # what follows the word (the whole sentence when undefined)

    @property
    def text(self) -> str:
        return f"{self.word}{self.rest}"


def verdict(result: Mapping[str, Any]) -> Verdict:
    """The reading of an analysis's ``to_dict()`` (its ``incoherence`` and ``failure_consistency``)."""
    value = result["incoherence"].get("value")
    if value is None:
        return Verdict("", "", "incoherence undefined (no errors, or no reference to measure error against)")
    consistency = result.get("failure_consistency")
    same = f"; two failures of a task fail the same way {consistency:.0%} of the time" if consistency is not None else ""
    if value < COHERENT_BELOW:
        return Verdict("coherent", "coherent", f": most error is bias, a systematic miss{same}")
    if value <= HOT_MESS_ABOVE:
        return Verdict("mixed", "mixed", f": error splits between systematic misses and scatter{same}")
    if consistency is not None and consistency >= FAILURES_REPEAT_FROM:
        # Brier variance also counts runs switching between success and failure: an agent that
        # always fails the same way has incoherence equal to its success rate. Said, not hidden.
        return Verdict(
            "mixed", "mixed",
            f": most error is variance, yet failures repeat{same}; the variance is mostly runs "
            "switching between success and the same miss",
        )
    return Verdict("hotmess", "a hot mess", f": most error is variance, a different miss each time{same}")
