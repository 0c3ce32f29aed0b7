"""The time estimate stays on the fast path: `advisor estimate --gpu ... --tokens ...` and the throughput table
import no training stack (the same probe as tests/test_import_hygiene.py)."""

import json
import subprocess
import sys

HEAVY = ("torch", "transformers", "peft", "bitsandbytes", "trl", "accelerate", "textual", "datasets", "pydantic")


def _loaded(body: str) -> list[str]:
    code = f"import json, sys\n{body}\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_timed_estimate_loads_no_heavy_package():
    body = (
        "import contextlib, io\n"
        "from advisor.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['estimate', '--model', '8b', '--method', 'qlora', '--gpu', 'rtx4090', '--tokens', '1e7']) == 0\n"
        "    assert main(['estimate', '--model', '7b', '--gpu', 'h100', '--examples', '100', '--json']) == 0\n"
        "    assert main(['accuracy', '--throughput']) == 0\n"
    )
    assert _loaded(body) == []


def test_time_modules_load_no_heavy_package():
    assert (
        _loaded(
            "import estimators.timing, estimators.flops, estimators.roofline, estimators.time_report, "
            "estimators.time_accuracy, advisor.timeflags, advisor.throughput"
        )
        == []
    )


def test_probe_detects_a_heavy_import():
    assert _loaded("import pydantic") == ["pydantic"]
