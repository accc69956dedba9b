"""The redaction prefilter skips a regex only on text it could not match anyway."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hotmess.redact import Redactor

# Pieces of every default pattern, so generated text often nearly or fully matches one.
_PIECES = [
    "sk-", "sk-proj-", "AKIA", "ghp_", "github_pat_", "xoxb-", "AIza", "hf_", "eyJ", ".eyJ",
    "-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----", "Bearer ", "BASIC ",
    "password", "PassWd", "pwd", "client_secret", "api-key", "API_KEY", "apikey", "token",
    "Refresh_Token", "private-key", "=", ": ", '"', "'", " ", "\n", "K", "\u212a", "\u017f",
    "Authorization: Basic ", "authorization=", "basic economy", "passenger", "DB_PASSWORD=",
    '\\"password\\": \\"', "aws_secret_access_key=", "Bearer abc123def456", "null", "1234",
    "abcdefghijklmnopqrstuvwxyz0123456789", "ABCDEFGHIJKLMNOP0123",
]
_TEXT = st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=12)), max_size=12).map("".join)


class _NoPrefilter(Redactor):
    def __init__(self) -> None:
        super().__init__()
        self._prefilter = False


@settings(max_examples=600, deadline=None)
@given(_TEXT)
def test_prefilter_redacts_exactly_what_the_regexes_do(text: str) -> None:
    assert Redactor()(text) == _NoPrefilter()(text)


def test_prefilter_still_redacts_the_usual_secrets() -> None:
    redact = Redactor()
    assert "sk-abcdefghijklmnop1234" not in redact("key sk-abcdefghijklmnop1234 here")
    assert redact('{"password": "hunter22"}') == '{"password": "[REDACTED]"}'
    assert redact("Authorization: Bearer abcdefgh12345") == "Authorization: Bearer [REDACTED]"
    assert redact('{"order_id": 1, "status": "ok"}') == '{"order_id": 1, "status": "ok"}'


def test_extra_patterns_and_functions_still_apply_to_plain_text() -> None:
    assert Redactor(patterns=[r"order-\d+"])("see order-42") == "see [REDACTED]"
    assert Redactor(function=str.upper)("plain") == "PLAIN"
