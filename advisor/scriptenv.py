"""The environment a generated script's PEP 723 block asks for, built once by the launcher.

Every script pins its dependencies in a `# /// script` block: the versions the run was generated with. The
scripts run in the launcher's environment, except where a block names pins the script cannot run without
(`[tool.advisor] exact = ["trl"]`): the PPO script, because trl removed PPO after 1.12.0 while the other
stages run the current trl. When this environment lacks such a pin, `advisor launch` runs the script in the
environment its block describes, built once and reused:

- a venv without pip of its own (`python -m venv --without-pip`), which sees the launcher's site-packages
  through a `.pth` file: the packages whose pinned version is the one installed here are shared, not copied
  (torch alone is gigabytes);
- the pins that differ (for PPO: trl) installed into the venv's own site-packages, which come first on
  sys.path, with `uv pip install` when uv is on PATH, else this interpreter's `pip install --target`. They are
  installed without their dependencies (`--no-deps`): the block pins the whole set, and every other pin was
  just checked to be the version installed here;
- checked afterwards (the venv's interpreter reports every pinned version), then marked ready.

Where: $ADVISOR_ENV_DIR, else $XDG_CACHE_HOME/advisor/envs, else ~/.cache/advisor/envs; one folder per
(Python version, launcher environment, differing pins). Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import AdvisorError

# PEP 723's reference regex for a metadata block (https://peps.python.org/pep-0723/#reference-implementation)
BLOCK = re.compile(r"(?m)^# /// (?P<type>[a-zA-Z0-9-]+)$\s(?P<content>(^#(| .*)$\s)+)^# ///$")
PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([A-Za-z0-9.+!_-]+)\s*$")
READY = ".advisor-env.json"
VERSIONS_PROBE = "import importlib.metadata as m, json, sys; print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"


def script_block(script: Path) -> dict:
    """The parsed PEP 723 `script` block of a script ({} when it has none)."""
    text = Path(script).read_text(encoding="utf-8")
    for match in BLOCK.finditer(text):
        if match.group("type") == "script":
            body = "".join(line[2:] if line.startswith("# ") else line[1:] for line in match.group("content").splitlines(keepends=True))
            try:
                return tomllib.loads(body)
            except tomllib.TOMLDecodeError as exc:
                raise AdvisorError(f"{Path(script).name}: its PEP 723 block is not valid TOML ({exc})") from None
    return {}


def exact_pins(script: Path) -> dict[str, str]:
    """name -> version of the pins the script cannot run without (`[tool.advisor] exact = [...]` in its block).
    The other pins record what the run was generated with; a near version in this environment runs it."""
    block = script_block(script)
    exact = {_norm(name) for name in block.get("tool", {}).get("advisor", {}).get("exact", [])}
    out = {}
    for dep in block.get("dependencies", []):
        match = PIN.match(str(dep))
        if match and _norm(match.group(1)) in exact:
            out[_norm(match.group(1))] = match.group(2)
    return out


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name).split("+")[0]
    except importlib.metadata.PackageNotFoundError:
        return None


def differing_pins(pins: dict[str, str]) -> dict[str, str]:
    """The pins this environment does not have at that version."""
    return {name: version for name, version in pins.items() if installed_version(name) != version.split("+")[0]}


def env_root() -> Path:
    if os.environ.get("ADVISOR_ENV_DIR"):
        return Path(os.environ["ADVISOR_ENV_DIR"]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "advisor" / "envs"


@dataclass(frozen=True)
class ScriptEnv:
    """The environment one script needs: this one (no differing pins) or a built overlay."""

    pins: dict[str, str]  # the differing pins the overlay installs
    path: Path | None  # the overlay's folder; None = this environment

    @property
    def python(self) -> str:
        return sys.executable if self.path is None else str(self.path / "bin" / "python")

    @property
    def ready(self) -> bool:
        return self.path is None or ((self.path / READY).is_file() and Path(self.python).exists())

    def describe(self) -> str:
        return ", ".join(f"{name}=={version}" for name, version in sorted(self.pins.items()))


def env_for(script: Path) -> ScriptEnv:
    """Where `script` runs: here when this environment has every pin, else its overlay (built or not yet)."""
    pins = differing_pins(exact_pins(script))
    if not pins:
        return ScriptEnv({}, None)
    base = sys.prefix + "\n" + json.dumps(sorted(pins.items()))
    tag = hashlib.sha256(base.encode()).hexdigest()[:10]
    label = "-".join(f"{name}-{version}" for name, version in sorted(pins.items()))
    return ScriptEnv(pins, env_root() / f"py{sys.version_info.major}{sys.version_info.minor}-{label}-{tag}")


def shared_site_dirs() -> list[str]:
    """This environment's package folders (its site-packages, and the system's when this venv includes them)."""
    dirs = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    dirs += [p for p in sys.path if p and Path(p).name in ("site-packages", "dist-packages") and Path(p).is_dir()]
    return list(dict.fromkeys(dirs))


def _site_packages(python: str) -> list[str]:
    code = "import json, sysconfig; p = sysconfig.get_paths(); print(json.dumps(sorted({p['purelib'], p['platlib']})))"
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def _install_argv(pins: dict[str, str], python: str, target: str) -> list[str]:
    specs = [f"{name}=={version}" for name, version in sorted(pins.items())]
    uv = shutil.which("uv")
    if uv:
        return [uv, "pip", "install", "--python", python, "--no-deps", *specs]
    return [sys.executable, "-m", "pip", "install", "--no-deps", "--no-input", "--target", target, *specs]


def build(env: ScriptEnv, say: Callable[[str], None] = lambda line: None, log: Path | None = None) -> ScriptEnv:
    """Build `env` if it is not ready: venv, shared base through .pth, differing pins installed, versions checked.
    `say` gets progress lines (the installer's output included); all of it also goes to `log`."""
    if env.ready:
        return env
    assert env.path is not None
    folder = env.path
    staging = folder.with_name(folder.name + f".building-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []

    def note(line: str) -> None:
        lines.append(line)
        say(line)

    try:
        note(f"creating a venv at {folder} that shares this environment's packages")
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(staging)], check=True, capture_output=True, text=True)
        python = str(staging / "bin" / "python")
        own = _site_packages(python)
        base = shared_site_dirs()
        argv = _install_argv(env.pins, python, own[0])
        note(f"installing {env.describe()} (without dependencies: the rest of the block is shared): {' '.join(argv[-len(env.pins) :])}")
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
        assert proc.stdout is not None
        for raw in proc.stdout:
            if raw.strip():
                note("  " + raw.rstrip())
        if proc.wait() != 0:
            last = next((line.strip() for line in reversed(lines) if line.strip()), "no output")
            raise AdvisorError(f"could not install {env.describe()} for the script's environment: {last}")
        # after the install, so an installer that looks at sys.path sees an empty venv; appended paths come after
        # the venv's own site-packages, so its pins win over the shared ones
        # (site.addsitedir rather than bare paths: the shared folders' own .pth files are processed too)
        Path(own[0], "_advisor_shared_env.pth").write_text("".join(f"import site; site.addsitedir({p!r})\n" for p in base), encoding="utf-8")
        wanted = sorted(env.pins)
        done = subprocess.run([python, "-c", VERSIONS_PROBE, *wanted], capture_output=True, text=True)
        seen = json.loads(done.stdout) if done.returncode == 0 else {}
        wrong = [f"{n} {seen.get(n, 'missing')} (wanted {env.pins[n]})" for n in wanted if str(seen.get(n, "")).split("+")[0] != env.pins[n]]
        if wrong:
            raise AdvisorError(f"the script's environment at {folder} has {', '.join(wrong)}")
        (staging / READY).write_text(json.dumps({"pins": env.pins, "shared": base}, indent=2) + "\n", encoding="utf-8")
        if not (folder / READY).is_file():  # another launch may have finished the same build meanwhile: keep that one
            shutil.rmtree(folder, ignore_errors=True)
            staging.rename(folder)
        note(f"environment ready: {folder}")
    except subprocess.CalledProcessError as exc:
        raise AdvisorError(f"could not create the script's environment at {folder}: {(exc.stderr or str(exc)).strip().splitlines()[-1:]}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a", encoding="utf-8") as f:
                f.write("".join(line + "\n" for line in lines))
    return env
