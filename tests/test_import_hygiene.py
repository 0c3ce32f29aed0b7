"""The fast path stays light: the estimator and `advisor estimate` never import the training stack."""

import json
import os
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


# issue 14 §8: start-up that stays a calculator's. The command runs with stdout a pipe (not a terminal), as in
# `advisor estimate | less`; the modules it loaded are reported on stderr.
START_PROBE = """
import json, sys
from advisor.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
sys.stdout.flush()
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('rich', 'pydantic') or m in {watch!r})), file=sys.stderr)
"""


def _started(argv: list[str], watch: tuple[str, ...] = ()) -> list[str]:
    code = START_PROBE.format(argv=argv, watch=set(watch))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stderr.strip().splitlines()[-1])


def test_top_level_help_imports_no_command_module_and_no_estimator():
    """`advisor --help` lists the commands from their summaries: no command module, no knobs, no estimator."""
    commands = (
        "advisor.commands.estimate",
        "advisor.commands.advise",
        "advisor.commands.wizard",
        "advisor.knobs",
        "estimators.setup",
        "estimators.catalog",
        "dataclasses",
    )
    assert _started(["--help"], commands) == []
    assert _started(["--version"], commands) == []


def test_estimate_json_and_piped_table_import_no_rich_nor_pydantic():
    """--json, and the table on a stream that is not a terminal (advisor/plaintext.py), load neither."""
    assert _started(["estimate", "--model", "7b", "--json"]) == []
    assert _started(["estimate", "--model", "8b", "--method", "qlora", "--gpu", "h100", "--tokens", "1e8"]) == []


def test_advise_on_a_pipe_imports_no_rich_nor_pydantic():
    """`advisor advise | less`: the plan is written as plain text (advisor/compact_table.py, advisor/plaintext.py),
    and the Plan is plain dataclasses (advisor/plan.py): pydantic only validates plan files read back."""
    loaded = _started(["advise", "--goal", "chat_format", "--data", "instruction_pairs", "--gpu", "rtx3060ti", "--model", "7b"], ("advisor.plan",))
    assert loaded == ["advisor.plan"]  # the probe sees what was imported: the plan, and neither rich nor pydantic


def test_reading_a_plan_file_back_validates_it_with_pydantic(tmp_path):
    """The other side of the bargain: a plan file is checked by pydantic when it is read (Plan.from_data)."""
    plan = tmp_path / "p.toml"
    base = ["--goal", "chat_format", "--data", "instruction_pairs", "--gpu", "rtx3060ti", "--model", "7b"]
    assert _started(["advise", *base, "--save", str(plan)], ("advisor.plan",)) == ["advisor.plan"]
    loaded = _started(["generate", "--plan", str(plan), "--out", str(tmp_path / "run")])
    assert "pydantic" in loaded


def test_the_model_catalog_is_read_back_without_a_parse(tmp_path):
    """A second run reads the parsed catalog from the cache (estimators/toml_cache.py): it never calls tomllib on
    rules/models.toml. XDG_CACHE_HOME points into tmp_path, so the real home is not written."""
    code = (
        "import os, tomllib\nfrom pathlib import Path\nparsed = []\nreal = tomllib.loads\n"
        "tomllib.loads = lambda s, **k: parsed.append(len(s)) or real(s, **k)\n"
        "from estimators.catalog import CATALOG_PATH, catalog\ncatalog()\n"
        "print(len(CATALOG_PATH.read_text(encoding='utf-8')) in parsed)\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout.strip() for _ in range(2)]
    assert runs == ["True", "False"]


# The wizard's first frame (issue 14 §8): the model field's lookup imports the planner (pydantic); asked for before the
# frame, and once more when the pre-filled Input reported its value, it ran beside the painting. It now runs once,
# after the first frame; the note still gets the parameter count.
WIZARD_PROBE = """
import json, sys
from advisor.tui.app import WizardApp
from advisor.tui.widgets.question import ModelField

asked, seen = [], {}
lookup = ModelField.resolve
def resolve(self, text):
    asked.append((getattr(self.app, "_painted", None), text))
    return lookup(self, text)
ModelField.resolve = resolve

class W(WizardApp):
    def on_ready(self):
        seen["at_first_frame"] = sorted(m for m in ("pydantic", "advisor.plan", "advisor.planning") if m in sys.modules)
        self.set_interval(0.05, self.done)
        self.set_timer(30, self.exit)

    def done(self):
        note = str(self.screen.query_one("#model-resolved").render())
        if "parameters" in note:
            seen["note"] = note
            self.exit()

W(answers={"goal": "domain", "model": "7b"}).run(headless=True, size=(80, 24))
print(json.dumps({**seen, "asked": asked}))
"""


def test_the_wizard_looks_the_model_up_once_after_its_first_frame():
    out = subprocess.run([sys.executable, "-c", WIZARD_PROBE], capture_output=True, text=True, check=True, timeout=120)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["at_first_frame"] == []
    assert seen["asked"] == [[True, "7b"]]
    assert "6,738,415,616 parameters" in seen["note"]
