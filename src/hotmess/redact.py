"""Redaction of secrets (API keys, bearer tokens, passwords) before anything is stored or sent.

It runs in the exporters' background threads, and on the agent's path only for a value about
to be cut to ``max_attribute_chars`` (redacted whole first, so no stub of a secret is kept;
see :func:`hotmess.vocab.serialize.truncate`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

REDACTED = "[REDACTED]"

#: Patterns whose whole match is a secret.
SECRET_PATTERNS: tuple[str, ...] = (
    r"\bsk-(?:ant-|proj-|live-|test-)?[A-Za-z0-9_\-]{16,}",  # OpenAI, Anthropic, Stripe style
    r"\bAKIA[0-9A-Z]{16}\b",  # AWS access key id
    r"\bgh[pousr]_[A-Za-z0-9]{30,}\b",  # GitHub tokens
    r"\bgithub_pat_[A-Za-z0-9_]{30,}\b",
    r"\bxox[abposr]-[A-Za-z0-9\-]{10,}",  # Slack
    r"\bAIza[0-9A-Za-z_\-]{35}\b",  # Google API key
    r"\bhf_[A-Za-z0-9]{30,}\b",  # Hugging Face
    r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",  # JWT
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
)

#: ``Bearer <token>`` and ``key=value`` / ``"key": "value"`` pairs: the value is the secret.
# A token holds a digit, or is long: "Bearer of bad news" and "Basic Economy" are prose.
# "Basic" counts only after "Authorization:" (HTTP basic auth); "Bearer" anywhere.
_BEARER = (
    r"(?i)\b(?:(bearer\s+)(?:(?=[A-Za-z._~+/\-]*\d)[A-Za-z0-9._~+/\-]{8,}|[A-Za-z0-9._~+/\-]{20,})"
    r"|(authorization[\"']?\s*[:=]\s*[\"']?basic\s+)[A-Za-z0-9._~+/\-]{8,})=*"
)
# The key may carry a prefix (DB_PASSWORD=, "github_token":, aws_secret_access_key=) and its
# quotes may be escaped (JSON text inside a JSON string: \"password\": \"...\"). A quoted
# value is redacted up to its closing quote, spaces included; a bare one up to a separator.
_PAIR = (
    r"(?i)(\\*[\"']?\b(?:[a-z0-9]+[_\-.])*(?:password|passwd|pwd|secret|client_secret|api[_\-]?key|"
    r"apikey|access[_\-]?key|access[_\-]?token|auth[_\-]?token|refresh[_\-]?token|token|"
    r"private[_\-]?key)\\*[\"']?\s*[:=]\s*)"
    r"(?:(\\*[\"'])([^\"'\\\r\n]+)|([^\"'\s,;&}\\]{4,}))"
)
_JSON_LITERALS = ("null", "true", "false")
_OPENING_QUOTE = re.compile(r'\\*"')


def _redact_pair(m: re.Match) -> str:
    prefix, quote, quoted, bare = m.groups()
    if quoted is not None:
        return prefix + quote + REDACTED
    if bare.lower() in _JSON_LITERALS:
        return m.group(0)
    opening = _OPENING_QUOTE.match(prefix)
    if opening is not None and ":" in prefix:  # a JSON number or literal: keep the JSON valid
        return prefix + opening.group(0) + REDACTED + opening.group(0)
    return prefix + REDACTED

# Every match of a default pattern contains one of its markers (case-sensitive for
# SECRET_PATTERNS, in the lower-cased text for _BEARER and _PAIR). Before each of the three
# substitutions, a text without that regex's markers cannot match it, so the regex is skipped:
# the same redaction, several times faster on ordinary values.
# ASCII only: under re.IGNORECASE a few non-ASCII letters match ASCII ones (the Kelvin sign
# matches "k"), which str.lower() would not show.
_SECRET_MARKERS = re.compile(r"sk-|AKIA|gh[pousr]_|github_pat_|xox|AIza|hf_|eyJ|-----BEGIN")
_BEARER_MARKERS = re.compile(r"bearer|authorization")
_PAIR_MARKERS = re.compile(r"passw|pwd|secret|key|token")
# All of them at once, in the lower-cased text (a superset of the case-sensitive ones): most
# values hold none, and then one search replaces three (and two str.lower()). Built from the
# three, so a marker added to one is never missing here (none of them holds an escape).
_ANY_MARKERS = re.compile(
    "|".join(m.pattern.lower() for m in (_SECRET_MARKERS, _BEARER_MARKERS, _PAIR_MARKERS))
)


class Redactor:
    """Replaces secrets in text with ``[REDACTED]``.

    ``patterns`` add regular expressions (the whole match is replaced); ``function`` is
    applied last to every string and may rewrite it freely.
    """

    def __init__(
        self,
        patterns: Iterable[str] = (),
        function: Callable[[str], str] | None = None,
        *,
        defaults: bool = True,
    ):
        whole = list(SECRET_PATTERNS if defaults else ()) + list(patterns)
        self._whole = re.compile("|".join(f"(?:{p})" for p in whole)) if whole else None
        self._bearer = re.compile(_BEARER) if defaults else None
        self._pair = re.compile(_PAIR) if defaults else None
        self._function = function
        # The markers only cover the default patterns; extra ones always run their regexes.
        self._whole_markers = _SECRET_MARKERS if defaults and not whole[len(SECRET_PATTERNS):] else None
        self._prefilter = True

    def __call__(self, text: str) -> str:
        check = self._prefilter and text.isascii()  # stays ASCII: REDACTED is
        if check and self._whole_markers is not None and _ANY_MARKERS.search(text.lower()) is None:
            # no marker of any default pattern (and no extra pattern): nothing to redact
            return text if self._function is None else self._function(text)
        if self._whole is not None and not (
            check and self._whole_markers is not None and self._whole_markers.search(text) is None
        ):
            text = self._whole.sub(REDACTED, text)
        if self._bearer is not None and not (check and _BEARER_MARKERS.search(text.lower()) is None):
            text = self._bearer.sub(lambda m: (m.group(1) or m.group(2)) + REDACTED, text)
        if self._pair is not None and not (check and _PAIR_MARKERS.search(text.lower()) is None):
            text = self._pair.sub(_redact_pair, text)
        if self._function is not None:
            text = self._function(text)
        return text


def make_redactor(redact: bool | Iterable[str] | Callable[[str], str] | Redactor | None) -> Redactor | None:
    """``configure(redact=...)``: True (defaults), False/None (off), extra patterns, a function, or a Redactor."""
    if redact is None or redact is False:
        return None
    if redact is True:
        return Redactor()
    if isinstance(redact, Redactor):
        return redact
    if callable(redact):
        return Redactor(function=redact)
    return Redactor(patterns=list(redact))
