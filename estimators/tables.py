"""Where the data tables live: the top-level `rules/` folder, shipped as the `rules` package."""

from pathlib import Path

RULES_DIR = Path(__file__).resolve().parent.parent / "rules"
CALIBRATION_DIR = Path(__file__).resolve().parent / "calibration"


def rules_path(name: str) -> Path:
    return RULES_DIR / name
