"""Error messages read as a person would say them."""

from __future__ import annotations

import pytest

from hotmess.errors import InputError


@pytest.mark.parametrize(("record", "where"), [
    (None, "f.json: "),
    (7, "f.json, record 7: "),
    ("7 (task 3 trial 1)", "f.json, record 7 (task 3 trial 1): "),
    ("line 3", "f.json, line 3: "),
    ("line 3 item 0", "f.json, line 3 item 0: "),
    ("item 2", "f.json, item 2: "),
])
def test_input_error_names_the_file_and_the_record_naturally(record, where):
    err = InputError("f.json", record, "bad")
    assert str(err) == where + "bad" and err.record == record and err.message == "bad"
