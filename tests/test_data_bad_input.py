"""The bad-input corpus, made here in tmp_path: each file gets one clear line on stderr, exit 2, no traceback, and
nothing is written anywhere. Long rows are read in chunks: memory stays bounded by the row limit, not the row."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import run_advisor
from data_corpus import PROMPT_COMPLETION, write_jsonl

from advisor.datasets.textio import iter_lines


def _snapshot(folder):
    return sorted((p.relative_to(folder), p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*"))


def _check_fails(path, *extra, expect: str):
    folder = path if path.is_dir() else path.parent
    before = _snapshot(folder)
    r = run_advisor("data", "check", str(path), "--no-progress", *extra)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    assert expect in r.stderr or expect in r.stdout, (r.stdout, r.stderr)
    assert _snapshot(folder) == before  # nothing written beside the data
    return r


def test_empty_file(tmp_path):
    (tmp_path / "e.jsonl").write_bytes(b"")
    r = _check_fails(tmp_path / "e.jsonl", expect="is empty (0 bytes)")
    assert r.stderr.count("\n") == 1  # one line


def test_only_blank_lines(tmp_path):
    (tmp_path / "b.jsonl").write_text("\n\n  \n")
    _check_fails(tmp_path / "b.jsonl", expect="holds no rows")


def test_truncated_json_lines(tmp_path):
    f = write_jsonl(tmp_path / "t.jsonl", PROMPT_COMPLETION[:3])
    f.write_text(f.read_text() + '{"prompt": "cut', encoding="utf-8")  # the last line ends mid-string
    r = _check_fails(f, "--json", expect="unusable as it is")
    data = json.loads(r.stdout)
    bad = next(p for p in data["problems"] if p["kind"] == "bad_json")
    assert bad["first_rows"] == [4] and "cut off" in bad["example"]
    assert data["rows"]["usable"] == 3


def test_truncated_json_array(tmp_path):
    (tmp_path / "t.json").write_text(json.dumps(PROMPT_COMPLETION)[:-40])
    r = _check_fails(tmp_path / "t.json", "--json", expect="unusable")
    data = json.loads(r.stdout)
    assert any(p["kind"] == "bad_json" and "cut off" in p["example"] for p in data["problems"])


def test_csv_with_mixed_delimiters(tmp_path):
    f = tmp_path / "m.csv"
    lines = ["prompt,completion"] + [f"{r['prompt']},{r['completion']}" for r in PROMPT_COMPLETION[:10]] + ["a question;an answer", "x;y"]
    f.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
    r = _check_fails(f, "--json", expect="unusable")
    data = json.loads(r.stdout)
    wrong = next(p for p in data["problems"] if p["kind"] == "wrong_field_count")
    assert wrong["count"] == 2 and wrong["first_rows"] == [11, 12]
    assert "comma-separated" in wrong["example"]


def test_csv_duplicate_header(tmp_path):
    (tmp_path / "h.csv").write_text("prompt,prompt\na,b\n")
    _check_fails(tmp_path / "h.csv", expect="names a column twice")


def test_parquet_with_unknown_nested_columns(tmp_path):
    f = tmp_path / "n.parquet"
    rows = [{"meta": {"id": i, "tags": ["a", "b"]}, "scores": [1.0, 2.0]} for i in range(5)]
    pq.write_table(pa.Table.from_pylist(rows), f)
    _check_fails(f, expect="no known dataset type in the columns meta (object), scores (list)")


def test_parquet_messages_that_are_not_turns(tmp_path):
    f = tmp_path / "n.parquet"
    pq.write_table(pa.Table.from_pylist([{"messages": [{"speaker": "a", "text": "b"}]}] * 3), f)
    _check_fails(f, expect="not a list of turns with role/content")


def test_corrupt_parquet(tmp_path):
    (tmp_path / "c.parquet").write_bytes(b"PAR1" + b"\x01garbage" * 100)
    _check_fails(tmp_path / "c.parquet", expect="not a readable parquet file")


def test_folder_of_mixed_formats(tmp_path):
    write_jsonl(tmp_path / "mix" / "a.jsonl", PROMPT_COMPLETION)
    with open(tmp_path / "mix" / "b.csv", "w", newline="") as out:
        csv.writer(out).writerows([["prompt", "completion"], ["a", "b"]])
    _check_fails(tmp_path / "mix", expect="mixes data formats (csv: 1 file(s), jsonl: 1 file(s))")


def test_folder_without_data(tmp_path):
    (tmp_path / "nodata").mkdir()
    (tmp_path / "nodata" / "weights.bin").write_bytes(b"\x00" * 10)
    _check_fails(tmp_path / "nodata", expect="no data files")


@pytest.mark.parametrize(
    "blob, expect",
    [
        (bytes(range(256)) * 40, "holds binary data"),
        ('{"text": "hi"}\n'.encode("utf-16"), "UTF-16"),
        (b"\x1f\x8b\x08\x00" + b"\x00" * 50, "compressed"),
        (b"PAR1" + b"\x00" * 50, "is a parquet file"),
    ],
)
def test_binary_garbage_named_jsonl(tmp_path, blob, expect):
    (tmp_path / "g.jsonl").write_bytes(blob)
    _check_fails(tmp_path / "g.jsonl", expect=expect)


def test_non_utf8_bytes_are_a_row_error(tmp_path):
    f = write_jsonl(tmp_path / "u.jsonl", PROMPT_COMPLETION[:3])
    f.write_bytes(f.read_bytes() + b'{"prompt": "caf\xe9", "completion": "ok"}\n')  # latin-1 é
    r = _check_fails(f, "--json", expect="unusable")
    bad = next(p for p in json.loads(r.stdout)["problems"] if p["kind"] == "non_utf8")
    assert bad["first_rows"] == [4]


def test_unknown_extension_and_missing_path(tmp_path):
    (tmp_path / "d.xlsx").write_bytes(b"PK")
    _check_fails(tmp_path / "d.xlsx", expect="unknown data format '.xlsx'")
    r = run_advisor("data", "check", str(tmp_path / "nope.jsonl"))
    assert r.returncode == 2 and "no such file or folder" in r.stderr and "Traceback" not in r.stderr


def test_a_few_mb_single_line_is_read(tmp_path):
    f = tmp_path / "long.jsonl"
    f.write_text(json.dumps({"text": "word " * 800_000}) + "\n")  # 4 MB on one line
    r = run_advisor("data", "check", str(f), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["tokens"]["sequence"]["max"] > 500_000


def test_a_row_over_the_limit_is_reported_and_skipped(tmp_path):
    from advisor.datasets import sources
    from advisor.datasets.readers import iter_rows

    f = tmp_path / "over.jsonl"
    f.write_text(json.dumps({"text": "x" * 3_000_000}) + "\n" + json.dumps({"text": "short"}) + "\n")
    got = list(iter_rows(sources.resolve(str(f)), max_row_bytes=1 << 20))
    assert [(r.number, r.problem) for r in got] == [(1, "row_too_long"), (2, "")]
    assert got[1].value == {"text": "short"}


def test_long_line_reading_keeps_memory_bounded():
    """A 24 MB single line read with a 1 MiB row limit and 64 KiB chunks: the peak stays near the limit,
    so a 2 GB line costs the same (the claim is bounded reading, shown here without a 2 GB file)."""
    size = 24 << 20
    stream = io.BytesIO(b"y" * size + b"\nnext\n")
    tracemalloc.start()
    got = [(n, raw, length) for n, raw, length, _ in iter_lines(stream, max_row_bytes=1 << 20, chunk=64 << 10)]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert got == [(1, None, size), (2, b"next", 4)]
    assert peak < 4 << 20, f"peak {peak:,} bytes for a {size:,}-byte line"


def test_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    import sys

    from advisor.datasets import sources
    from advisor.datasets.readers import iter_rows
    from advisor.errors import AdvisorError

    pq.write_table(pa.Table.from_pylist(PROMPT_COMPLETION), tmp_path / "d.parquet")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
    with pytest.raises(AdvisorError, match=r"needs pyarrow, which is not installed: pip install 'advisor\[data\]'"):
        list(iter_rows(sources.resolve(str(tmp_path / "d.parquet"))))
