"""The top-level command: help lists every command, and wizard flags without a command open the wizard."""

from conftest import run_advisor


def test_help_lists_every_command():
    out = run_advisor("--help")
    assert out.returncode == 0
    for name in ("wizard", "advise", "estimate", "fit", "generate", "launch", "measure", "accuracy", "models", "gpus"):
        assert name in out.stdout, name


def test_wizard_flags_without_a_command_reach_the_wizard():
    """`advisor --lang en` is the wizard (here without a terminal, so it says it needs one)."""
    out = run_advisor("--lang", "en")
    assert out.returncode == 2
    assert "invalid choice" not in out.stderr
    assert "terminal" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_unknown_command_is_one_line():
    out = run_advisor("estimat")
    assert out.returncode == 2 and "invalid choice" in out.stderr and "Traceback" not in out.stderr


def test_ci_runs_the_readme_test_command_verbatim():
    from conftest import ROOT

    readme_commands = [line for line in (ROOT / "README.md").read_text().splitlines()[:12] if line.startswith("python3 -m venv")]
    assert len(readme_commands) == 2, "the README starts with two commands"
    assert readme_commands[1] in (ROOT / ".ci" / "run").read_text()
