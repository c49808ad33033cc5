"""federation.remote_json: what NUL characters become in JSON from other servers."""

from __future__ import annotations

import json

import pytest

from federation import remote_json


def test_nul_characters_are_dropped_from_every_string_keys_included() -> None:
    document = {
        "id": "https://b.example/x\x00",
        "name\x00": ["a\x00b", {"deep": "c\x00\x00d"}],
        "count": 3,
        "flag": True,
        "nothing": None,
    }
    assert remote_json.loads(json.dumps(document)) == {
        "id": "https://b.example/x",
        "name": ["ab", {"deep": "cd"}],
        "count": 3,
        "flag": True,
        "nothing": None,
    }


def test_a_backslash_before_u0000_is_text_and_kept() -> None:
    text = json.dumps({"name": "C:\\u0000"})  # a backslash, then the letters u0000
    assert remote_json.loads(text) == {"name": "C:\\u0000"}


def test_documents_without_nul_are_read_as_json_loads_reads_them() -> None:
    text = json.dumps({"name": "équipe", "list": [1, 2.5, "x"]}, ensure_ascii=False)
    assert remote_json.loads(text) == json.loads(text)


def test_what_is_not_json_still_raises() -> None:
    with pytest.raises(json.JSONDecodeError):
        remote_json.loads('{"name": "\x00"}')  # a raw NUL is not valid JSON
