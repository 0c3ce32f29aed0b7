"""How a path the user gave is written into a plan or a script. Standard library only."""

from __future__ import annotations

from pathlib import Path


def absolute(text: str) -> str:
    """A path that exists here, written down absolute (the scripts resolve relative paths against their own folder);
    anything else, a cached hub id for one, as it is."""
    path = Path(text).expanduser()
    return str(path.resolve()) if path.exists() else text
