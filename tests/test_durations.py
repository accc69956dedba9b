"""How durations read in the terminal and the web UI (hotmess.durations)."""

from __future__ import annotations

from hotmess.durations import duration_text, seconds_text


def test_each_duration_in_the_unit_that_reads():
    assert [seconds_text(s) for s in (0.0, 4.12e-4, 3.44e-3, 0.25, 2.314, 59.994, 252.4, 3725)] == [
        "0µs", "412µs", "3.4ms", "250.0ms", "2.31s", "59.99s", "4m12s", "62m05s"]


def test_an_unknown_start_or_end_is_no_duration():
    assert duration_text(None, 10**9) == duration_text(10**9, None) == ""
    assert duration_text(10**9, 10**9 + 1_500_000) == "1.5ms"
