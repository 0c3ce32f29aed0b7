"""Issue 14 §5: a malformed rule table is a user-facing error (one line on stderr, exit 2), not a traceback."""

import shutil
import subprocess
import sys
import textwrap

from conftest import ROOT

from advisor import rules
from advisor.errors import EXIT_USAGE, AdvisorError

ADVISE = ["advise", "--goal", "chat_format", "--data", "instruction_pairs", "--gpu", "rtx4090", "--model", "8b"]


def _run_with_rules(rules_copy) -> subprocess.CompletedProcess:
    # A fresh interpreter: the tables are cached per process, and the edge is what a user meets.
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        import advisor.rules
        advisor.rules.rules_dir = lambda: Path({str(rules_copy)!r})
        from advisor.cli import main
        sys.exit(main({ADVISE!r}))
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_rules_error_is_in_the_advisor_family():
    assert issubclass(rules.RulesError, AdvisorError) and rules.RulesError.exit_code == EXIT_USAGE


def test_a_broken_table_prints_one_line_and_exits_2(tmp_path):
    copy = tmp_path / "rules"
    shutil.copytree(rules.rules_dir(), copy)
    good = _run_with_rules(copy)
    assert good.returncode == 0, good.stderr  # the copy itself works: the break below is what fails
    (copy / "selection.toml").write_text("[[situation]\nid = 'sel.broken'\n", encoding="utf-8")
    bad = _run_with_rules(copy)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("advisor: error: selection.toml: invalid TOML"), bad.stderr


def test_estimate_and_generate_share_one_model_resolver():
    """Issue 14 §5: `advisor estimate --model tiny` failed while `advisor generate --model tiny` worked."""
    from advisor.planning import model_spec
    from estimators.catalog import resolve_model

    resolved = resolve_model("tiny")
    spec, ref = model_spec("tiny")
    assert resolved.spec == spec and resolved.key == ref.key == "tiny"
    out = subprocess.run(
        [sys.executable, "-m", "advisor", "estimate", "--model", "tiny", "--json"], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert '"key": "tiny"' in out.stdout and '"resolved_from": "built by the script"' in out.stdout
