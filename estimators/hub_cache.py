"""Where a hub id's config.json lies in the local Hugging Face cache (read only, never downloaded)."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import EstimateError


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache directory, as huggingface_hub finds it (read only, never created)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "huggingface" / "hub"
    return Path.home() / ".cache" / "huggingface" / "hub"


def looks_like_repo_id(text: str) -> bool:
    parts = text.split("/")
    ok = all(p and all(ch.isalnum() or ch in "-_." for ch in p) and p not in (".", "..") for p in parts)
    return ok and 1 <= len(parts) <= 2


def _repo_folder(cache: Path, name: str) -> Path | None:
    """A repo's folder in the hub cache; a name typed in another case is matched case-insensitively."""
    folder = cache / name
    if folder.is_dir():
        return folder
    try:
        return next((p for p in cache.iterdir() if p.name.lower() == name.lower() and p.is_dir()), None)
    except OSError:
        return None


def cached_config(repo_id: str) -> Path | None:
    """config.json of the snapshot refs/main names (else the newest snapshot) of a cached hub repo, or None."""
    folder = _repo_folder(hf_hub_cache(), "models--" + repo_id.replace("/", "--"))
    if folder is None:
        return None
    snapshots = folder / "snapshots"
    ref = folder / "refs" / "main"
    if ref.is_file():
        rev = ref.read_text(encoding="utf-8").strip()
        if (snapshots / rev / "config.json").is_file():
            return snapshots / rev / "config.json"
    found = sorted(snapshots.glob("*/config.json"), key=lambda p: p.stat().st_mtime, reverse=True) if snapshots.is_dir() else []
    if found:
        return found[0]
    raise EstimateError(f"'{repo_id}' is in the local Hugging Face cache ({folder}) but no snapshot has a config.json")
