"""advisor data check reads every format it claims: JSON lines, JSON arrays and objects, CSV/TSV (BOM, sniffed
delimiter), gzip, parquet (nested columns too), saved `datasets` folders, folders of files, and dataset ids found
in a (fake, tmp) Hugging Face cache. Each read gives the same rows as the data written."""

from __future__ import annotations

import csv
import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from data_corpus import PREFERENCE, PROMPT_COMPLETION, SFT_MESSAGES, write_jsonl

from advisor.datasets import sources
from advisor.datasets.readers import iter_rows
from advisor.errors import AdvisorError


def rows_of(path, split=None) -> list[dict]:
    return [r.value for r in iter_rows(sources.resolve(str(path), split))]


def test_jsonl_rows_and_line_numbers(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text(json.dumps(PREFERENCE[0]) + "\n\n" + json.dumps(PREFERENCE[1]) + "\n", encoding="utf-8")
    got = list(iter_rows(sources.resolve(str(f))))
    assert [r.value for r in got] == PREFERENCE[:2]
    assert [r.number for r in got] == [1, 3]  # blank lines count: the number is the line an editor shows


def test_json_array_streamed_element_by_element(tmp_path, monkeypatch):
    import advisor.datasets.jsonrows as jsonrows

    monkeypatch.setattr(jsonrows, "CHUNK", 64)  # windows far smaller than the file: elements straddle reads
    f = tmp_path / "d.json"
    f.write_text(json.dumps(SFT_MESSAGES, indent=2), encoding="utf-8")
    assert rows_of(f) == SFT_MESSAGES


@pytest.mark.parametrize("shape", ["train_key", "columns", "lines"])
def test_json_object_layouts(tmp_path, shape):
    f = tmp_path / "d.json"
    if shape == "train_key":
        f.write_text(json.dumps({"train": PROMPT_COMPLETION}), encoding="utf-8")
    elif shape == "columns":
        f.write_text(json.dumps({k: [r[k] for r in PROMPT_COMPLETION] for k in ("prompt", "completion")}), encoding="utf-8")
    else:  # JSON lines saved with a .json name
        f.write_text("\n".join(json.dumps(r) for r in PROMPT_COMPLETION) + "\n", encoding="utf-8")
    assert rows_of(f) == PROMPT_COMPLETION


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_csv_delimiter_sniffed_and_bom_dropped(tmp_path, delimiter):
    f = tmp_path / "d.csv"
    with open(f, "w", encoding="utf-8-sig", newline="") as out:  # utf-8-sig writes a BOM
        w = csv.writer(out, delimiter=delimiter)
        w.writerow(["prompt", "completion"])
        for r in PROMPT_COMPLETION:
            w.writerow([r["prompt"] + ", really", r["completion"]])  # a quoted comma in the text
    got = rows_of(f)
    assert list(got[0]) == ["prompt", "completion"]  # not '\ufeffprompt'
    assert got == [{"prompt": r["prompt"] + ", really", "completion": r["completion"]} for r in PROMPT_COMPLETION]


def test_csv_multiline_quoted_field_across_the_sniff_window(tmp_path):
    f = tmp_path / "d.csv"
    long = "x" * 70_000 + "\nsecond line"  # longer than the 64 KiB sniff sample, with a newline inside quotes
    with open(f, "w", encoding="utf-8", newline="") as out:
        w = csv.writer(out)
        w.writerow(["text"])
        w.writerow([long])
        w.writerow(["short"])
    assert rows_of(f) == [{"text": long}, {"text": "short"}]


def test_gzip_jsonl(tmp_path):
    f = tmp_path / "d.jsonl.gz"
    with gzip.open(f, "wt", encoding="utf-8") as out:
        out.write("\n".join(json.dumps(r) for r in PREFERENCE) + "\n")
    assert rows_of(f) == PREFERENCE


def test_parquet_with_nested_turns(tmp_path):
    f = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(SFT_MESSAGES), f, row_group_size=7)
    assert rows_of(f) == SFT_MESSAGES


def _save_to_disk_layout(folder, rows):
    """What datasets' save_to_disk writes: an Arrow IPC stream per shard, state.json, dataset_info.json."""
    folder.mkdir(parents=True)
    table = pa.Table.from_pylist(rows)
    with pa.OSFile(str(folder / "data-00000-of-00001.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    (folder / "state.json").write_text(json.dumps({"_data_files": [{"filename": "data-00000-of-00001.arrow"}]}))
    (folder / "dataset_info.json").write_text("{}")


def test_saved_dataset_folder_and_dataset_dict(tmp_path):
    _save_to_disk_layout(tmp_path / "dd" / "train", PREFERENCE)
    _save_to_disk_layout(tmp_path / "dd" / "test", PREFERENCE[:3])
    (tmp_path / "dd" / "dataset_dict.json").write_text(json.dumps({"splits": ["train", "test"]}))
    assert rows_of(tmp_path / "dd" / "train") == PREFERENCE
    assert rows_of(tmp_path / "dd") == PREFERENCE  # train by default
    assert rows_of(tmp_path / "dd", "test") == PREFERENCE[:3]
    with pytest.raises(AdvisorError, match="no split 'dev'"):
        sources.resolve(str(tmp_path / "dd"), "dev")


def test_real_save_to_disk_when_datasets_is_installed(tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list(SFT_MESSAGES).save_to_disk(str(tmp_path / "saved"))
    assert rows_of(tmp_path / "saved") == SFT_MESSAGES


def test_folder_of_split_files(tmp_path):
    write_jsonl(tmp_path / "data" / "train.jsonl", PROMPT_COMPLETION)
    write_jsonl(tmp_path / "data" / "test.jsonl", PROMPT_COMPLETION[:2])
    (tmp_path / "data" / "README.md").write_text("# card")
    src = sources.resolve(str(tmp_path / "data"))
    assert src.split == "train" and len(src.files) == 1
    assert rows_of(tmp_path / "data", "test") == PROMPT_COMPLETION[:2]


def test_rows_numbered_on_across_shards(tmp_path):
    write_jsonl(tmp_path / "d" / "part-0.jsonl", PROMPT_COMPLETION[:3])
    write_jsonl(tmp_path / "d" / "part-1.jsonl", PROMPT_COMPLETION[3:5])
    got = list(iter_rows(sources.resolve(str(tmp_path / "d"))))
    assert [r.number for r in got] == [1, 2, 3, 4, 5]
    assert got[3].file == "part-1.jsonl"


def test_hub_snapshot_in_the_local_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    repo = tmp_path / "hf" / "hub" / "datasets--org--prefs"
    snap = repo / "snapshots" / "abc123"
    pq.write_table(pa.Table.from_pylist(PREFERENCE), (snap / "data").mkdir(parents=True) or snap / "data" / "train-00000-of-00001.parquet")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    src = sources.resolve("org/prefs")
    assert "local Hugging Face cache" in src.how
    assert rows_of("org/prefs") == PREFERENCE


def test_datasets_library_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    folder = tmp_path / "hf" / "datasets" / "org___prompts" / "default" / "0.0.0" / "f00d"
    folder.mkdir(parents=True)
    table = pa.Table.from_pylist(PROMPT_COMPLETION)
    with pa.OSFile(str(folder / "prompts-train.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    assert rows_of("org/prompts") == PROMPT_COMPLETION


def test_unknown_id_names_the_cache_and_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(AdvisorError, match="advisor never downloads"):
        sources.resolve("org/absent")


def test_loader_spec_tells_a_script_how_to_load_the_same_rows(tmp_path):
    from advisor.datasets.spec import loader_spec

    f = tmp_path / "d.csv"
    f.write_text("prompt;completion\na;b\n", encoding="utf-8-sig")
    spec = loader_spec(sources.resolve(str(f)), ("prompt", "completion"))
    assert spec == {
        "call": "load_dataset",
        "builder": "csv",
        "data_files": [str(f)],
        "split": "train",
        "sep": ";",
        "keep_default_na": False,
        "features": {"prompt": "string", "completion": "string"},
    }
    _save_to_disk_layout(tmp_path / "saved", PREFERENCE)
    assert loader_spec(sources.resolve(str(tmp_path / "saved"))) == {"call": "load_from_disk", "path": str(tmp_path / "saved")}


def test_loader_spec_loads_the_same_rows_with_datasets(tmp_path):
    datasets = pytest.importorskip("datasets")
    from advisor.datasets.spec import loader_spec

    f = tmp_path / "d.csv"
    with open(f, "w", encoding="utf-8", newline="") as out:
        w = csv.writer(out, delimiter=";")
        w.writerow(["prompt", "completion"])
        w.writerows([[r["prompt"], r["completion"]] for r in PROMPT_COMPLETION])
    spec = loader_spec(sources.resolve(str(f)), ("prompt", "completion"))
    kwargs = {k: v for k, v in spec.items() if k not in ("call", "builder", "features")}
    features = datasets.Features({c: datasets.Value(t) for c, t in spec["features"].items()})
    ds = datasets.load_dataset(spec["builder"], **kwargs, features=features, cache_dir=str(tmp_path / "cache"))
    assert ds.to_list() == rows_of(f)
