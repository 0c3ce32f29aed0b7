"""The fast path stays light: the estimator and `advisor estimate` never import the training stack."""

import json
import subprocess
import sys

HEAVY = ("torch", "transformers", "peft", "bitsandbytes", "trl", "accelerate", "textual", "datasets", "pydantic")

PROBE = """
import json, sys
{body}
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def _loaded(body: str) -> list[str]:
    code = PROBE.format(body=body, heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_estimator_loads_no_heavy_package():
    assert _loaded("import estimators, estimators.catalog, estimators.report, estimators.gpus") == []


def test_estimate_command_loads_no_heavy_package():
    body = (
        "import contextlib, io\n"
        "from advisor.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['estimate', '--model', '7b', '--method', 'qlora']) == 0\n"
        "    assert main(['estimate', '--model', '8b', '--json']) == 0\n"
    )
    assert _loaded(body) == []


def test_help_loads_no_heavy_package():
    body = (
        "import contextlib, io\n"
        "from advisor.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        main(['estimate', '--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
    )
    assert _loaded(body) == []


def test_probe_detects_a_heavy_import():
    """The check itself can fail: importing pydantic is seen."""
    assert _loaded("import pydantic") == ["pydantic"]
