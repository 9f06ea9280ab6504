"""Manifest: durable append, both formats agree, torn lines, resume keys by content."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest

from analysis.errors import MediaError, ParameterError
from analysis.media.hashing import content_hash
from composer.pipeline.manifest import CSV_COLUMNS, Manifest, Record, read_csv, read_jsonl, settings_digest


def _rec(name: str, h: str, status: str = "ok", **extra) -> Record:
    return Record(input=name, content_hash=h, settings="s1", status=status, **extra)


def test_content_hash_is_sha256_of_bytes_and_ignores_name(tmp_path: Path) -> None:
    a = tmp_path / "a.bin"
    a.write_bytes(b"x" * 3_000_000)  # more than one read chunk
    b = tmp_path / "renamed.bin"
    b.write_bytes(a.read_bytes())
    assert content_hash(a) == hashlib.sha256(b"x" * 3_000_000).hexdigest()
    assert content_hash(a) == content_hash(b)
    with pytest.raises(MediaError, match=r"missing\.mp4: file not found"):
        content_hash(tmp_path / "missing.mp4")
    with pytest.raises(MediaError, match="directory"):
        content_hash(tmp_path)


def test_settings_digest_ignores_key_order_but_not_values() -> None:
    assert settings_digest({"a": 1, "b": "x"}) == settings_digest({"b": "x", "a": 1})
    assert settings_digest({"a": 1}) != settings_digest({"a": 2})
    assert len(settings_digest({})) == 16


def test_append_writes_jsonl_and_csv_that_read_back_equal(tmp_path: Path) -> None:
    m = Manifest(tmp_path / "out")
    r1 = _rec("a.mp4", "h1", result={"chosen": "match", "choice": "song.ogg", "score": 0.8125, "scores": [0.8, 0.1]},
              outputs=("out/a.mid", "out/a.wav"), seconds=1.5, timings={"analysis": 1.0}, worker="w:1")
    r2 = _rec("b.mp4", "h2", "error", error="b.mp4: moov atom not found, 'quoted', comma, and\nnewline")
    m.append(r1)
    m.append(r2)
    assert read_jsonl(m.jsonl_path) == [r1, r2]
    back = read_csv(m.csv_path)
    assert [r.to_dict() for r in back] == [r1.to_dict(), r2.to_dict()]
    with m.csv_path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows[0]["chosen"] == "match" and rows[0]["choice"] == "song.ogg" and rows[0]["score"] == "0.8125"
    assert rows[1]["status"] == "error" and "moov atom" in rows[1]["error"]


def test_torn_last_line_is_skipped_and_next_append_starts_fresh(tmp_path: Path) -> None:
    m = Manifest(tmp_path)
    m.append(_rec("a.mp4", "h1"))
    with m.jsonl_path.open("ab") as fh:  # a process killed in the middle of a write
        fh.write(b'{"input": "b.mp4", "content_ha')
    assert [r.input for r in m.records()] == ["a.mp4"]
    m.append(_rec("c.mp4", "h3"))
    assert [r.input for r in m.records()] == ["a.mp4", "c.mp4"]
    lines = m.jsonl_path.read_text().splitlines()
    assert json.loads(lines[-1])["input"] == "c.mp4"


def test_completed_keys_last_record_wins_and_retry_errors(tmp_path: Path) -> None:
    m = Manifest(tmp_path)
    m.append(_rec("a.mp4", "h1", "error", error="boom"))
    m.append(_rec("b.mp4", "h2", "error", error="bad"))
    m.append(_rec("a.mp4", "h1"))  # a retried later and succeeded
    assert m.latest()[("h1", "s1")].status == "ok"
    assert m.completed() == {("h1", "s1"), ("h2", "s1")}
    assert m.completed(retry_errors=True) == {("h1", "s1")}


def test_sync_csv_rebuilds_after_kill_between_writes(tmp_path: Path) -> None:
    m = Manifest(tmp_path)
    m.append(_rec("a.mp4", "h1"))
    m.append(_rec("b.mp4", "h2"))
    m.csv_path.write_text(m.csv_path.read_text().splitlines()[0] + "\n")  # CSV lost its rows
    assert m.sync_csv() is True
    assert [r.input for r in read_csv(m.csv_path)] == ["a.mp4", "b.mp4"]
    assert m.sync_csv() is False


def test_bad_inputs_raise_clear_errors(tmp_path: Path) -> None:
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(ParameterError, match="must be a directory"):
        Manifest(f)
    with pytest.raises(ParameterError, match="'done'"):
        _rec("a", "h", "done")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(MediaError, match="not a manifest CSV"):
        read_csv(tmp_path / "other.csv")
