"""The real program in a real terminal: `advisor wizard` in an 80x24 tmux pane, driven by keys as a person would.

Skips when tmux is missing (`apt-get install tmux`). Set ADVISOR_TMUX_CAPTURE=path to keep the pane captures
(docs/wizard-screens.md shows one).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)")


class Pane:
    """One tmux server of its own (-L), so the test's environment reaches the program and nothing else is touched."""

    def __init__(self, name: str) -> None:
        self.socket = f"advisor-test-{os.getpid()}-{name}"
        self.captures: list[tuple[str, str]] = []

    def tmux(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args], capture_output=True, text=True, timeout=30)

    def start(self, command: str) -> None:
        self.tmux("new-session", "-d", "-s", "wizard", "-x", "80", "-y", "24", "-c", str(ROOT), command).check_returncode()
        self.tmux("set-option", "-s", "escape-time", "0")  # Esc is Esc at once, not the start of an Alt sequence

    def keys(self, *keys: str) -> None:
        for key in keys:
            self.tmux("send-keys", "-t", "wizard", key)
            time.sleep(0.15)

    def text(self) -> str:
        # -J: a line the terminal wrapped (a long path printed after the app exits) comes back whole
        return self.tmux("capture-pane", "-t", "wizard", "-p", "-J").stdout

    def wait_for(self, *needles: str, timeout: float = 30.0, label: str = "") -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.text()
            if all(n in screen for n in needles):
                if label:
                    self.captures.append((label, screen))
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {timeout:g} s for {needles!r}; the pane shows:\n{screen}")
            time.sleep(0.1)

    def wait_gone(self, needle: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while needle in self.text():
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} still on the screen after {timeout:g} s")
            time.sleep(0.1)

    def close(self) -> None:
        self.tmux("kill-server")


@pytest.mark.slow  # the real program in a terminal, typed into, through to a saved run
def test_wizard_in_tmux_from_answers_file_to_saved_run(tmp_path):
    answers = tmp_path / "answers.toml"
    answers.write_text('goal = "domain"\ndata = ["instruction_pairs"]\ngpu = "rtx3060"\nmodel = "7b"\n', encoding="utf-8")
    run_dir = tmp_path / "run"
    cmd = " ".join(
        shlex.quote(a) for a in [sys.executable, "-m", "advisor", "wizard", "--answers", str(answers), "--lang", "en", "--out", str(run_dir)]
    )
    pane = Pane("main")
    pane.start(f"{cmd}; echo EXIT=$?; sleep 60")
    try:
        screen = pane.wait_for("1 Goal & model", "Adapt to a domain", "^n Next", label="1 Goal & model (pre-filled from answers.toml)")
        assert "I only need to adapt the model to a specific domain. → LoRA/QLoRA + SFT" in screen  # its §6 row, as the table says it
        pane.keys("C-n")
        pane.wait_for("What data do you have?")
        pane.keys("C-n")
        pane.wait_for("Which GPU will you train on?", "How many GPUs?", "With these answers: SFT with QLoRA", label="3 Resources")
        pane.keys("C-n")
        screen = pane.wait_for("Recommended: SFT + QLoRA", label="4 Advice")
        assert "[sel.domain §6]" in screen
        pane.keys("C-g")
        pane.wait_for("Glossary", "Alignment", label="Glossary (Ctrl+G)")
        pane.keys("Escape")
        pane.wait_gone("Glossary  (Esc")
        pane.keys("C-n")
        screen = pane.wait_for("What if", "fits on NVIDIA GeForce RTX 3060 12GB", label="5 Memory")
        assert "│" in screen and "█" in screen  # the stacked bar and the capacity mark
        # A person reads the screen before typing. (Keys typed while a loaded machine is still mounting the step
        # were seen to land before the field had its cursor; Textual 8.2.8.)
        time.sleep(0.5)
        pane.keys("BSpace", "1", "6")  # micro-batch 16: the focused what-if control
        screen = pane.wait_for("does not fit", label="5 Memory: micro-batch 16")
        assert "micro-batch    16 " in screen
        pane.keys("C-f")
        pane.wait_for("applied: sft:", "fits on", label="5 Memory: after make it fit (Ctrl+F)")
        pane.keys("C-n")
        pane.wait_for("train_sft.py", "will be written", label="6 Script")
        pane.keys("C-n")
        pane.wait_for("Save the run directory", label="7 Finish")
        pane.keys("s")
        screen = pane.wait_for("EXIT=", timeout=30, label="after the app exits")
        assert "plan: SFT + QLoRA" in screen and f"saved: {run_dir}" in screen and "EXIT=0" in screen
    finally:
        pane.close()
        keep = os.environ.get("ADVISOR_TMUX_CAPTURE")
        text = "\n".join(f"--- {label} ---\n{screen.rstrip()}\n" for label, screen in pane.captures)
        (tmp_path / "captures.txt").write_text(text, encoding="utf-8")
        if keep:
            Path(keep).write_text(text, encoding="utf-8")
    assert (run_dir / "train_sft.py").is_file() and (run_dir / "plan.toml").is_file()
