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


def test_data_check_without_a_tokenizer_loads_no_heavy_package(tmp_path):
    """`advisor data check` (issue 17) reads parquet and counts tokens without torch/transformers/datasets."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([{"prompt": "a", "completion": "b"}] * 3), tmp_path / "d.parquet")
    (tmp_path / "d.jsonl").write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n')
    body = (
        "import contextlib, io\n"
        "from advisor.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['data', 'check', {str(tmp_path / 'd.parquet')!r}, '--model', '8b', '--gpu', '24GB']) == 0\n"
        f"    assert main(['data', 'check', {str(tmp_path / 'd.jsonl')!r}, '--json']) == 0\n"
    )
    assert _loaded(body) == []
