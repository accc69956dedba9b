"""Which tool calls change the world: the one read-only rule that importers (a run's outcome)
and analyzers (the ``actions`` outcome mapper) share, so imported outcomes and computed
action keys always agree."""

from __future__ import annotations

import re

#: First words of tool names that only read state (``get_user_details``, ``searchFlights``...).
READ_ONLY_PREFIXES: frozenset[str] = frozenset(
    {"get", "search", "list", "find", "lookup", "read", "fetch", "query"}
)
#: Whole tool names that only read state or think. ``transfer_to_human_agents`` is NOT here:
#: handing over to a human is an outcome.
READ_ONLY_NAMES: frozenset[str] = frozenset({"think", "calculate"})

_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_WORD = re.compile(r"[^0-9a-zA-Z]+")


def is_read_only(name: str) -> bool:
    """True when the tool name's first word (split on ``_``, ``-``, ``.``, spaces and camelCase,
    case-insensitive) is one of :data:`READ_ONLY_PREFIXES` (get, search, list, find, lookup,
    read, fetch, query), or the whole name is ``think`` or ``calculate``. ``getUser`` and
    ``get_user`` are read-only; ``getaway`` and ``transfer_to_human_agents`` are not.
    """
    name = str(name)
    if name.casefold() in READ_ONLY_NAMES:
        return True
    words = [w for w in _WORD.split(_CAMEL.sub(r"\1_\2", name).casefold()) if w]
    return bool(words) and words[0] in READ_ONLY_PREFIXES
