"""Redaction of secrets (API keys, bearer tokens, passwords) before anything is stored or sent.

It runs in the exporters' background threads, and on the agent's path only for a value about
to be cut to ``max_attribute_chars`` (redacted whole first, so no stub of a secret is kept;
see :func:`hotmess.vocab.serialize.truncate`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

REDACTED = "[REDACTED]"

#: A key starts where no ASCII letter, digit or underscore is right before it: after CJK text
#: too, which ``\b`` would not allow (CJK letters are word characters).
_START = r"(?<![A-Za-z0-9_])"
#: Patterns whose whole match is a secret, prefixes as their issuers publish them. None has a
#: nested quantifier: each runs in time linear in the text (tests/test_secrets.py times them
#: against adversarial inputs).
SECRET_PATTERNS: tuple[str, ...] = (
    _START + r"sk-(?:ant-|proj-|live-|test-|svcacct-|admin-)?[A-Za-z0-9_\-]{16,}",  # OpenAI, Anthropic
    _START + r"[sr]k_(?:live|test)_[A-Za-z0-9]{16,}",  # Stripe secret and restricted keys
    _START + r"(?:AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Z])",  # AWS access key ids (ASIA: session keys)
    _START + r"gh[pousr]_[A-Za-z0-9]{30,}",  # GitHub tokens
    _START + r"github_pat_[A-Za-z0-9_]{30,}",
    _START + r"xox[abposr]-[A-Za-z0-9\-]{10,}",  # Slack bot, user, ... tokens
    _START + r"xapp-[A-Za-z0-9\-]{10,}",  # Slack app-level tokens
    _START + r"AIza[0-9A-Za-z_\-]{35}(?![0-9A-Za-z_])",  # Google API key (may end in "-")
    _START + r"hf_[A-Za-z0-9]{30,}",  # Hugging Face
    _START + r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",  # JWT
    # a PEM private key, to its END line, or to the end of the value when that was cut off
    r"-----BEGIN [A-Z ]{0,40}PRIVATE KEY-----(?:[^-]|-(?!----END ))*(?:-----END [A-Z ]{0,40}PRIVATE KEY-----)?",
)

#: ``Bearer <token>``, ``Authorization: Basic|Token <credentials>``: the token is the secret.
# A token holds a digit, or is long: "Bearer of bad news" and "Basic Economy" are prose.
# "Basic" and "Token" count only after "Authorization:"; "Bearer" anywhere.
_BEARER = (
    r"(?i)\b(?:(bearer[ \t]+)(?:(?=[A-Za-z._~+/\-]{0,200}\d)[A-Za-z0-9._~+/\-]{8,}|[A-Za-z0-9._~+/\-]{20,})"
    r"|(authorization[\"']?[ \t]*[:=][ \t]*[\"']?(?:basic|token)[ \t]+)[A-Za-z0-9._~+/\-]{8,})=*"
)
#: A URL's password: ``postgres://user:PASSWORD@host``.
_URL_PASSWORD = r"(?i)(\b[a-z][a-z0-9+.\-]{0,30}://[^/\s:@\"']{1,200}:)([^@\s/\"']{1,200})(?=@)"
# ``key=value`` / ``"key": "value"`` pairs: the value is the secret. The match starts at the key
# word itself, whatever comes before it (DB_PASSWORD, clientSecret, "github_token"), so no
# prefix is ever scanned; the key's quotes may be escaped (JSON text inside a JSON string). A
# quoted value is redacted to its closing quote (of the same kind, escapes included), a list
# to its closing bracket, a bare value to a separator.
_KEY_WORDS = (
    r"password|passwd|passphrase|pwd|secret(?:[_\-]?access[_\-]?key)?|api[_\-]?key|access[_\-]?key|"
    r"access[_\-]?token|auth[_\-]?token|refresh[_\-]?token|session[_\-]?token|id[_\-]?token|token|"
    r"private[_\-]?key|credentials?"
)
_PAIR = (
    r"(?i)((?:" + _KEY_WORDS + r")\\*[\"']?[ \t]*[:=][ \t]*)"
    r"(?:\"((?:[^\"\\\r\n]|\\.)*)"  # "value", \" and other escapes inside
    r"|'((?:[^'\\\r\n]|\\.)*)"  # 'value'
    r"|(\\+[\"'])((?:[^\"'\\\r\n]|\\+[^\"'\\\r\n])*)"  # \"value\" (JSON inside a JSON string)
    r"|\[(?!REDACTED\]|\"\[REDACTED\]\"\])([^\]\r\n]*)"  # [values], unless already redacted
    r"|([^\"'\s,;&}\[\]\\]{4,}))"  # bare: to the next separator
)
#: A field whose name is one of the key words (at its end: ``db.password``, ``clientSecret``,
#: ``x-api-key``; not ``max_tokens``): its whole value is the secret, in a structured value
#: (an OTLP kvlist, a span attribute) as in text.
_SECRET_FIELD = re.compile(r"(?i)(?:" + _KEY_WORDS + r")$")
_JSON_LITERALS = ("null", "true", "false")
_QUOTE_OF_KEY = re.compile(r'\\*"')


def _redact_pair(m: re.Match) -> str:
    key, double, single, escaped_quote, escaped, listed, bare = m.groups()
    if double is not None:
        return key + '"' + REDACTED
    if single is not None:
        return key + "'" + REDACTED
    if escaped_quote is not None:
        return key + escaped_quote + REDACTED
    if listed is not None:
        return key + "[" + (f'"{REDACTED}"' if listed.strip() else "")
    if bare.lower() in _JSON_LITERALS:
        return m.group(0)
    if key.rstrip().endswith(":") and '"' in key:  # a JSON number or literal: keep the JSON valid
        quote = _QUOTE_OF_KEY.search(key).group(0)
        return key + quote + REDACTED + quote
    return key + REDACTED


# Every match of a default pattern contains one of its markers (case-sensitive for
# SECRET_PATTERNS, in the lower-cased text for _BEARER and _PAIR). Before each of the three
# substitutions, a text without that regex's markers cannot match it, so the regex is skipped:
# the same redaction, several times faster on ordinary values.
# ASCII only: under re.IGNORECASE a few non-ASCII letters match ASCII ones (the Kelvin sign
# matches "k"), which str.lower() would not show.
_SECRET_MARKERS = re.compile(r"sk-|k_live_|k_test_|AKIA|ASIA|gh[pousr]_|github_pat_|xox|xapp-|AIza|hf_|eyJ|-----BEGIN")
_BEARER_MARKERS = re.compile(r"bearer|authorization|://")
_PAIR_MARKERS = re.compile(r"passw|passp|pwd|secret|key|token|credential")
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
        self._url = re.compile(_URL_PASSWORD) if defaults else None
        self._pair = re.compile(_PAIR) if defaults else None
        self._function = function
        # The markers only cover the default patterns; extra ones always run their regexes.
        self._whole_markers = _SECRET_MARKERS if defaults and not whole[len(SECRET_PATTERNS):] else None
        self._prefilter = True

    def secret_field(self, name: str) -> bool:
        """Whether a field named ``name`` holds a secret as a whole (with the default patterns)."""
        return self._pair is not None and len(name) <= 200 and _SECRET_FIELD.search(name) is not None

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
            if "://" in text:
                text = self._url.sub(lambda m: m.group(1) + REDACTED, text)
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
