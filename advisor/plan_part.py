"""What every part of a Plan shares (advisor/plan.py): plain dataclasses that copy themselves with changes and give
their saved form. Kept apart so the parts of advisor/plan.py and advisor/plan_priced.py share one base."""

from __future__ import annotations

from dataclasses import fields, is_dataclass, replace


class PlanPart:
    """What every part of a plan shares: copies with changes, and its TOML/JSON form."""

    __pydantic_config__ = {"extra": "forbid"}  # read by pydantic when a plan file is validated: unknown keys are errors

    def with_(self, **changes):
        return replace(self, **changes)

    def to_data(self) -> dict:
        """The saved form: fields in order, None left out, floats as floats (pydantic's json dump of before)."""
        return _dumped(self)


def _dumped(value):
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _float(f.type, _dumped(v)) for f in fields(value) if (v := getattr(value, f.name)) is not None}
    if isinstance(value, (list, tuple)):
        return [_dumped(v) for v in value]
    if isinstance(value, dict):
        return {k: _dumped(v) for k, v in value.items()}
    return value


def _float(annotation, value):
    """A float field given an int in code (memory_gib=24) is saved as 24.0, as a validated plan would hold it."""
    return float(value) if annotation in ("float", "float | None") and type(value) is int else value
