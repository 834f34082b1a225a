"""Canonical JSON, timestamps and hashing: the byte-exact forms everything else signs."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chain_of_custody.canonical import canonical_json, is_canonical, parse_canonical
from chain_of_custody.hashing import HashingReader, sha256_bytes, sha256_file
from chain_of_custody.timeutil import format_utc, parse_utc, utc_now

ARABIC = "مرحبا بالعالم"
EMOJI = "🚓📸"


# canonical_json -----------------------------------------------------------------------


def test_same_data_gives_same_bytes_whatever_the_key_order() -> None:
    first = {"b": 1, "a": {"y": [1, 2], "x": None}, "c": True}
    second = {"c": True, "a": {"x": None, "y": [1, 2]}, "b": 1}
    assert canonical_json(first) == canonical_json(second)
    assert canonical_json(first) == b'{"a":{"x":null,"y":[1,2]},"b":1,"c":true}'


def test_unicode_is_kept_as_utf8_not_escaped() -> None:
    data = canonical_json({"text": ARABIC, "emoji": EMOJI})
    assert ARABIC.encode("utf-8") in data
    assert EMOJI.encode("utf-8") in data
    assert b"\\u" not in data
    assert json.loads(data) == {"text": ARABIC, "emoji": EMOJI}


def test_no_whitespace_and_no_trailing_newline() -> None:
    data = canonical_json({"a": [1, 2, {"b": "c d"}]})
    assert data == b'{"a":[1,2,{"b":"c d"}]}'
    assert not data.endswith(b"\n")


def test_control_characters_are_escaped_so_a_record_stays_on_one_line() -> None:
    data = canonical_json({"note": "line one\nline two\r\t"})
    assert b"\n" not in data and b"\r" not in data
    assert parse_canonical(data) == {"note": "line one\nline two\r\t"}


@pytest.mark.parametrize(
    "invalid_value",
    [1.5, {"a": 0.1}, [1, 2.0], {"nested": {"deep": [float("nan")]}}, float("inf")],
)
def test_floats_are_rejected(invalid_value: object) -> None:
    with pytest.raises(TypeError, match="float"):
        canonical_json(invalid_value)


def test_non_string_keys_are_rejected() -> None:
    # {1: "x"} would otherwise serialise exactly like {"1": "x"}.
    with pytest.raises(TypeError, match="keys must be strings"):
        canonical_json({1: "x"})


def test_lone_surrogates_are_rejected() -> None:
    with pytest.raises(ValueError):
        canonical_json({"a": "\ud800"})


def test_unserialisable_values_are_rejected() -> None:
    with pytest.raises(TypeError):
        canonical_json({"when": datetime.now(UTC)})


def test_integers_booleans_null_and_big_integers_are_fine() -> None:
    value = {"big": 2**80, "neg": -3, "t": True, "f": False, "n": None, "tuple": (1, 2)}
    data = canonical_json(value)
    assert data == (
        b'{"big":1208925819614629174706176,"f":false,"n":null,"neg":-3,"t":true,"tuple":[1,2]}'
    )
    assert is_canonical(data)


# is_canonical / parse_canonical -------------------------------------------------------


def test_round_trip() -> None:
    value = {"ar": ARABIC, "list": [1, "two", None, {"k": False}], "emoji": EMOJI}
    data = canonical_json(value)
    assert is_canonical(data)
    assert parse_canonical(data) == value


@pytest.mark.parametrize(
    "invalid_data",
    [
        b'{"b":1,"a":2}',  # keys out of order
        b'{"a": 1}',  # whitespace
        b'{"a":1}\n',  # trailing newline
        b'{"a":"\\u0645"}',  # escaped where canonical uses UTF-8
        b'{"a":1,"a":1}',  # duplicate key
        b'{"a":1.0}',  # float
        b'{"a":NaN}',  # not JSON
        b'{"a":"\xff"}',  # invalid UTF-8
        b"\xef\xbb\xbf{}",  # byte-order mark
        b"",
        b"{",
    ],
)
def test_non_canonical_bytes_are_recognised(invalid_data: bytes) -> None:
    assert not is_canonical(invalid_data)
    with pytest.raises(ValueError):
        parse_canonical(invalid_data)


# timeutil ---------------------------------------------------------------------------


def test_utc_now_has_the_fixed_form() -> None:
    stamp = utc_now()
    assert len(stamp) == len("2026-11-25T12:00:00.123456Z")
    assert stamp.endswith("Z") and stamp[10] == "T" and stamp[19] == "."
    parsed = parse_utc(stamp)
    assert parsed.tzinfo is UTC
    assert format_utc(parsed) == stamp


def test_parse_utc_accepts_short_fractions_and_none() -> None:
    assert parse_utc("2026-11-25T12:00:00Z") == datetime(2026, 11, 25, 12, tzinfo=UTC)
    assert parse_utc("2026-11-25T12:00:00.5Z").microsecond == 500000


@pytest.mark.parametrize(
    "invalid_stamp",
    [
        "2026-11-25T12:00:00+00:00",
        "2026-11-25 12:00:00Z",
        "2026-02-30T12:00:00Z",
        "2026-11-25T12:00:00.1234567Z",
        "٢٠٢٦-11-25T12:00:00Z",  # Arabic-Indic digits
        "",
    ],
)
def test_parse_utc_rejects_other_forms(invalid_stamp: str) -> None:
    with pytest.raises(ValueError):
        parse_utc(invalid_stamp)


def test_format_utc_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone"):
        format_utc(datetime(2026, 11, 25, 12))


# hashing ----------------------------------------------------------------------------


def test_sha256_file_streams_in_chunks(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000  # 1.28 MB: several chunks
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert sha256_file(path, chunk=4096) == (hashlib.sha256(data).hexdigest(), len(data))
    assert sha256_file(path) == (hashlib.sha256(data).hexdigest(), len(data))


def test_sha256_of_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert sha256_file(path) == (hashlib.sha256(b"").hexdigest(), 0)
    assert sha256_bytes(b"") == hashlib.sha256(b"").hexdigest()


def test_hashing_reader_hashes_what_passes_and_what_is_drained() -> None:
    data = b"abcdefghij" * 1000
    reader = HashingReader(io.BytesIO(data))
    assert reader.read(3) == b"abc"
    buffer = bytearray(4)
    assert reader.readinto(buffer) == 4 and bytes(buffer) == b"defg"
    assert reader.tell() == 7
    assert reader.drain() == len(data) - 7
    assert reader.bytes_read == len(data)
    assert reader.hexdigest() == hashlib.sha256(data).hexdigest()
    reader.close()
    with pytest.raises(ValueError):
        reader.read(1)
