"""Shared fixtures. Tests keep the developer's machine out: caches and config dirs point at tmp paths."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """No test reads the real Hugging Face cache or writes to the user's home."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)  # the parsed-catalog cache (estimators/toml_cache.py) goes under HOME
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def run_advisor(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real `advisor` entry point in a fresh process."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "advisor", *args], capture_output=True, text=True, env=full_env, cwd=cwd or ROOT, timeout=timeout)


@pytest.fixture
def advisor_main(capsys, monkeypatch):
    """`advisor ARGS` inside this process: main() with its output captured, returned as run_advisor returns it
    (returncode, stdout, stderr); `env` is added to the environment until the test ends. It saves an interpreter
    start-up per call for tests that read only the output and the exit code; import hygiene, signals, TTY behaviour
    and start-up timing need run_advisor's fresh process."""
    from advisor.cli import main

    # the width a pipe gets: argparse would otherwise measure the terminal behind `pytest -s`
    monkeypatch.setenv("COLUMNS", "80")

    def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()  # what the test printed before is not the command's output
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse exits from inside parse_args: --help, --version, usage errors
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["advisor", *args], code, out, err)

    return run


@pytest.fixture
def launch_here(advisor_main, monkeypatch):
    """`advisor launch ARGS` inside this process (advisor_main), on a machine the GPU probe finds without CUDA,
    with `env` added to the environment (the stages inherit it). The real probe imports torch in a child interpreter
    (3-6 s on a loaded machine); a launch that must receive a signal still needs run_advisor's own process."""
    from advisor.launch import GpuFacts

    monkeypatch.setattr("advisor.launch.environment.probe_gpus", lambda *a, **k: GpuFacts(count=0))

    def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return advisor_main("launch", *args, env=env)

    return run


# --------------------------------------------------------------------------------------------- PPO, trl 1.12.0


@pytest.fixture(scope="session")
def ppo_python() -> str:
    """A venv under /tmp with trl 1.12.0 of its own (the PPO script's pin), the rest of the stack seen through a .pth
    file (the same pins as the generated script's block). Built by whichever test asks first, and kept; the tests
    that need it skip only when PyPI cannot be reached."""
    from advisor.scriptgen.pins import PPO_TRL

    env = Path("/tmp") / f"advisor-trl-{PPO_TRL}-env"
    python = env / "bin" / "python"
    ready = env / ".ready"
    if not ready.is_file():
        shutil.rmtree(env, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
        site = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True
        ).stdout.strip()
        pip = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", site, f"trl=={PPO_TRL}"],
            capture_output=True,
            text=True,
            timeout=180,
        )
        if pip.returncode != 0:
            shutil.rmtree(env, ignore_errors=True)
            pytest.skip(f"trl=={PPO_TRL} cannot be installed here (no PyPI?): {pip.stderr.strip().splitlines()[-1:]}")
        base = subprocess.run(
            [sys.executable, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True
        ).stdout.strip()
        Path(site, "_advisor_base_env.pth").write_text(base + "\n")
        subprocess.run([str(python), "-m", "compileall", "-q", str(Path(site) / "trl")], capture_output=True)
        ready.write_text(PPO_TRL)
    version = subprocess.run([str(python), "-c", "import trl; print(trl.__version__)"], capture_output=True, text=True, check=True).stdout.strip()
    assert version == PPO_TRL
    return str(python)
