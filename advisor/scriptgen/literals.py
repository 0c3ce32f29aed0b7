"""Python source made of literals only: how every value of the plan, user strings included, reaches a generated
script (dicts, lists, str via repr, numbers, bools, None; a keyword block as `dict(name=literal, ...)`)."""

from __future__ import annotations

import math


def py_literal(value, indent: int = 0, comments: dict[str, str] | None = None) -> str:
    """`value` as Python source made of literals only (dicts, lists, str via repr, numbers, bools, None)."""
    pad, inner = "    " * indent, "    " * (indent + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        rows = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"CONFIG keys must be strings, got {key!r}")
            note = f"  # {comments[key]}" if comments and key in comments else ""
            rows.append(f"{inner}{key!r}: {py_literal(item, indent + 1)},{note}")
        return "{\n" + "\n".join(rows) + f"\n{pad}}}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        return "[" + ", ".join(py_literal(item, indent + 1) for item in value) + "]"
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"CONFIG values must be finite numbers, got {value!r}")
    if value is None or isinstance(value, (str, int, float, bool)):
        return repr(value)
    raise TypeError(f"CONFIG values must be literals, got {type(value).__name__}")


def py_kwargs(value: dict | None, comments: dict[str, str] | None = None) -> str:
    """A keyword-argument block as `dict(name=literal, ...)`, one per line (None stays None): it reads as the call
    it feeds, e.g. SFTConfig(per_device_train_batch_size=2, ...)."""
    if value is None:
        return "None"
    rows = []
    for key, item in value.items():
        if not key.isidentifier():
            raise TypeError(f"keyword names must be identifiers, got {key!r}")
        note = f"  # {comments[key]}" if comments and key in comments else ""
        rows.append(f"    {key}={py_literal(item, 1)},{note}")
    return "dict(\n" + "\n".join(rows) + "\n)"
