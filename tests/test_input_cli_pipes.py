"""A reader that goes away (`advisor accuracy | head -1`, issue 13 item 14): the command stops quietly, with no
BrokenPipeError traceback, and exits 141 (128 + SIGPIPE) as a shell reports for `yes | head -1`."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from advisor.cli import EXIT_BROKEN_PIPE, main, one_line

ROOT = Path(__file__).resolve().parent.parent


class _GoneReader(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_in_process_broken_pipe_returns_141(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdout", _GoneReader())
    assert main(["gpus", "--json"]) == EXIT_BROKEN_PIPE


def _closed_reader(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run `advisor ARGV` with its stdout a pipe whose read end is already closed: every write fails with EPIPE."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([sys.executable, "-m", "advisor", *argv], stdout=write, stderr=subprocess.PIPE, text=True, cwd=cwd, timeout=300)
    finally:
        os.close(write)


@pytest.mark.parametrize("argv", [["accuracy", "--out", "ACC"], ["models", "--json"], ["estimate", "--model", "7b", "--json"]])
def test_closed_pipe_ends_quietly(tmp_path, argv):
    argv = [str(tmp_path / "acc.md") if a == "ACC" else a for a in argv]
    proc = _closed_reader(*argv, cwd=tmp_path)
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
    assert proc.returncode == EXIT_BROKEN_PIPE


def test_generate_and_launch_dry_run_into_a_closed_pipe(tmp_path):
    run = tmp_path / "run"
    assert (
        subprocess.run(
            [sys.executable, "-m", "advisor", "generate", "--model", "tiny", "--out", str(run)], capture_output=True, cwd=tmp_path, timeout=300
        ).returncode
        == 0
    )
    for argv in (["launch", str(run), "--dry-run"], ["generate", "--model", "tiny", "--out", str(run), "--force"]):
        proc = _closed_reader(*argv, cwd=tmp_path)
        assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
        assert proc.returncode in (0, EXIT_BROKEN_PIPE)  # a short output may fit the pipe buffer and exit 0


def test_one_line_escapes_control_characters_but_keeps_korean():
    assert one_line("bad 'a\nb'\x1b[31m 학습") == "bad 'a\\nb'\\x1b[31m 학습"
    assert len(one_line("x" * 5000)) == 400
