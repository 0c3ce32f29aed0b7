"""The wizard's first paint (issue 13 item 16): what `advisor wizard` imports before the first frame. The time
itself is measured by bench/wizard_speed.py (bench/results/wizard_first_paint.md); this guards the deferrals:
the parser declares only the wizard, and checking a pre-filled GPU name loads the GPU table, not the estimator."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = r"""
import json, sys
from advisor.cli import build_parser
from advisor.commands.wizard import prefilled

args = build_parser("wizard").parse_args(["wizard", "--goal", "domain", "--gpu", "NVIDIA GeForce RTX 4090", "--model", "7b"])
raw = prefilled(args)
import advisor.tui.app  # everything the app needs before its first frame
print(json.dumps({"raw": raw, "modules": sorted(sys.modules)}))
"""


def _loaded() -> tuple[dict, set[str]]:
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, timeout=120, check=True)
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return data["raw"], set(data["modules"])


def test_wizard_start_defers_the_estimator_and_the_other_commands():
    raw, modules = _loaded()
    assert raw["gpu"] == "NVIDIA GeForce RTX 4090"  # the name was checked (find_gpu ran) ...
    assert "estimators.gpus" in modules and "estimators.gpu_names" in modules
    # ... without the estimator itself, the other commands or pydantic
    for heavy in (
        "estimators.pricing",
        "estimators.sft",
        "estimators.terms",
        "advisor.knobs",
        "advisor.advice",
        "pydantic",
        "advisor.commands.estimate",
        "advisor.commands.generate",
        "advisor.commands.accuracy",
    ):
        assert heavy not in modules, heavy


def test_the_package_still_exports_the_estimator():
    import estimators
    import estimators.pricing
    import estimators.result
    from estimators import Estimate, Setup, estimate

    assert estimate is estimators.pricing.estimate and Estimate is estimators.result.Estimate
    assert isinstance(estimate(estimators.resolve_model("7b").spec, Setup()), Estimate)
