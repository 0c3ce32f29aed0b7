"""PATH -> what to read: the data files in order, their one format, and where they came from.

A file is read by its extension. A folder is a saved `datasets` folder (`save_to_disk`: dataset_info.json /
state.json beside data-*.arrow, or dataset_dict.json above one folder per split), or a folder of data files of one
format. A name that is no path is looked up in the local Hugging Face cache only (hub snapshots, then the
`datasets` library's own cache); nothing is ever downloaded.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import AdvisorError

# extension -> format; .gz wraps the text formats (read through gzip, progress counted on compressed bytes)
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".arrow": "arrow"}
TEXT_FORMATS = ("jsonl", "json", "csv")
# files a hub dataset repo or a saved folder holds beside the data: never data, never an error
NOT_DATA = {".md", ".gitattributes", ".gitignore", ".lock", ".py", ".txt", ".yaml", ".yml", ".png", ".jpg", ".incomplete"}
SAVED_MARKERS = ("dataset_info.json", "state.json")
SPLIT_WORDS = ("train", "validation", "valid", "dev", "test", "eval")


@dataclass(frozen=True)
class Source:
    files: tuple[Path, ...]
    format: str  # one of FORMATS' values
    label: str  # what the user named, for messages
    how: str  # where it was found (human phrase)
    split: str = ""  # the split chosen, where the source had several
    compressed: bool = False

    @property
    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.files)

    def with_split(self, split: str) -> "Source":
        return replace(self, split=split)


def file_format(path: Path) -> tuple[str | None, bool]:
    """(format, gzip?) from the name; (None, False) for an unknown extension."""
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] == ".gz"
    ext = suffixes[-2] if compressed and len(suffixes) > 1 else (suffixes[-1] if suffixes else "")
    fmt = FORMATS.get(ext)
    if compressed and fmt not in TEXT_FORMATS:
        return None, False
    return fmt, compressed


def resolve(text: str, split: str | None = None) -> Source:
    raw = (text or "").strip()
    if not raw:
        raise AdvisorError("no data given: a .jsonl/.json/.csv/.parquet file, a folder, or a dataset id in the local Hugging Face cache")
    path = Path(raw).expanduser()
    if path.is_file():
        return _single_file(path, raw)
    if path.is_dir():
        return _folder(path, raw, split, f"folder {path}")
    if path.exists():
        raise AdvisorError(f"{raw} is neither a file nor a folder")
    if _looks_like_dataset_id(raw):
        found = _from_cache(raw, split)
        if found:
            return found
    raise AdvisorError(
        f"{raw}: no such file or folder, and no dataset '{raw}' in the local Hugging Face cache "
        f"({_hub_cache()} or {_datasets_cache()}); advisor never downloads (fetch it first, e.g. "
        f"`hf download {raw} --repo-type dataset`)"
    )


def _single_file(path: Path, raw: str) -> Source:
    fmt, compressed = file_format(path)
    if fmt is None:
        known = ", ".join(sorted(set(FORMATS)))
        raise AdvisorError(f"{raw}: unknown data format '{''.join(path.suffixes) or '(no extension)'}' (known: {known}, text formats also .gz)")
    if path.stat().st_size == 0:
        raise AdvisorError(f"{raw} is empty (0 bytes)")
    return Source((path,), fmt, raw, f"file {path}", compressed=compressed)


def _folder(path: Path, raw: str, split: str | None, how: str) -> Source:
    if (path / "dataset_dict.json").is_file():  # DatasetDict.save_to_disk: one saved Dataset per split
        try:
            splits = json.loads((path / "dataset_dict.json").read_text(encoding="utf-8"))["splits"]
        except (OSError, ValueError, KeyError, TypeError):
            raise AdvisorError(f'{raw}: dataset_dict.json is unreadable (expected {{"splits": [...]}})') from None
        chosen = _pick_split(list(splits), split, raw)
        return _folder(path / chosen, raw, None, f"saved datasets folder {path}, split {chosen}").with_split(chosen)
    if any((path / m).is_file() for m in SAVED_MARKERS) and list(path.glob("*.arrow")):
        return Source(_saved_arrow_files(path), "arrow", raw, how if "saved" in how else f"saved datasets folder {path}")
    files = sorted(p for p in path.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts))
    data, unknown = {}, []
    for f in files:
        fmt, compressed = file_format(f)
        if fmt:
            data[f] = (fmt, compressed)
        elif f.suffix.lower() not in NOT_DATA and f.name not in SAVED_MARKERS:
            unknown.append(f)
    if not data:
        extra = f" (found {len(unknown)} other file(s), e.g. {unknown[0].name})" if unknown else ""
        raise AdvisorError(f"{raw}: no data files (.jsonl, .json, .csv, .parquet, .arrow) in this folder{extra}")
    names = {f: _split_of(f.relative_to(path)) for f in data}
    present = sorted({s for s in names.values() if s})
    chosen = ""
    if present:
        chosen = _pick_split(present + ([""] if "" in names.values() else []), split, raw)
        data = {f: v for f, v in data.items() if names[f] == chosen}
    elif split:
        raise AdvisorError(f"{raw}: --split {split} given, but the files name no splits")
    kinds = sorted({v for v in data.values()})
    if len(kinds) > 1:
        counts = ", ".join(f"{fmt}{'.gz' if gz else ''}: {sum(1 for v in data.values() if v == (fmt, gz))} file(s)" for fmt, gz in kinds)
        raise AdvisorError(f"{raw}: the folder mixes data formats ({counts}); point at one file, or a folder of one format")
    fmt, compressed = kinds[0]
    return Source(tuple(data), fmt, raw, how, split=chosen, compressed=compressed)


def _saved_arrow_files(path: Path) -> tuple[Path, ...]:
    """state.json lists the shards in order; without it, their sorted names."""
    try:
        state = json.loads((path / "state.json").read_text(encoding="utf-8"))
        files = tuple(path / d["filename"] for d in state["_data_files"])
        if files and all(f.is_file() for f in files):
            return files
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return tuple(sorted(path.glob("*.arrow")))


def _split_of(rel: Path) -> str:
    """The split a file belongs to, from its folder or name (data/train-00000-of-00001.parquet, test.jsonl)."""
    for part in (*rel.parts[:-1], rel.name):
        for token in re.split(r"[^a-z]+", part.lower()):
            if token in SPLIT_WORDS:
                return "validation" if token in ("valid", "dev") else token
    return ""


def _pick_split(splits: list[str], wanted: str | None, raw: str) -> str:
    if wanted is not None:
        if wanted not in splits:
            raise AdvisorError(f"{raw}: no split '{wanted}' (splits: {', '.join(s or '(unnamed)' for s in splits)})")
        return wanted
    if "train" in splits:
        return "train"
    return splits[0]


def _looks_like_dataset_id(text: str) -> bool:
    parts = text.split("/")
    return 1 <= len(parts) <= 2 and all(p and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", p) for p in parts)


def _hub_cache() -> Path:
    from estimators.hub_cache import hf_hub_cache  # one rule for where the cache is

    return hf_hub_cache()


def _datasets_cache() -> Path:
    if os.environ.get("HF_DATASETS_CACHE"):
        return Path(os.environ["HF_DATASETS_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "datasets"
    return Path.home() / ".cache" / "huggingface" / "datasets"


def _from_cache(repo_id: str, split: str | None) -> Source | None:
    repo = _hub_cache() / ("datasets--" + repo_id.replace("/", "--"))
    snapshots = repo / "snapshots"
    if snapshots.is_dir():
        ref = repo / "refs" / "main"
        snap = snapshots / ref.read_text(encoding="utf-8").strip() if ref.is_file() else None
        if snap is None or not snap.is_dir():
            found = sorted((p for p in snapshots.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
            snap = found[0] if found else None
        if snap is not None:
            return _folder(snap, repo_id, split, f"local Hugging Face cache ({snap})")
    # the `datasets` library's processed cache: <org>___<name>/<config>/<version>/<hash>/<name>-<split>.arrow
    folder = _datasets_cache() / repo_id.replace("/", "___")
    arrows = sorted(folder.rglob("*.arrow")) if folder.is_dir() else []
    if not arrows:
        return None
    by_split: dict[str, list[Path]] = {}
    for f in arrows:
        by_split.setdefault(_split_of(Path(f.name)), []).append(f)
    chosen = _pick_split(sorted(by_split), split, repo_id)
    files = by_split[chosen]
    newest = max(files, key=lambda p: p.stat().st_mtime).parent  # one processed copy, the newest
    return Source(tuple(f for f in files if f.parent == newest), "arrow", repo_id, f"local datasets cache ({newest})", split=chosen)
