"""Whole-process speed of `advisor estimate`: median wall time and max RSS over N fresh processes.

Targets (issue 3): median <= 0.15 s, max RSS <= 45 MiB on the 2-core development machine.
Run: .venv/bin/python bench/speed.py [N]   (results recorded in bench/results/speed.md)

Start-up as a multiple of a bare interpreter (issue 14 §8): `--startup [N] [--write]` times N fresh processes
of each command, interleaved so that all see the same machine load, and divides the medians by the median of
`python -c pass` (the wizard's by an empty Textual app's first paint). Targets: `estimate --json` <= 4x, the
estimate table (stdout not a terminal) <= 6x, `--help` <= 2.5x, `advise` <= 10x, the wizard <= 1.25x an empty
Textual app. With --write the table goes to bench/results/speed_startup.txt.

Bytecode: with PYTHONDONTWRITEBYTECODE set (as on the development machine) nothing would ever be cached and
every run would compile the project afresh, which no installed copy does; so the run first compiles the project
and the packages it imports into their normal __pycache__ folders (python -m compileall) and says so.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

COMMANDS = (
    ["estimate", "--model", "7b", "--method", "qlora"],
    ["estimate", "--model", "llama-3.1-70b", "--method", "full", "--gpu", "h100", "--json"],
    # issue 16: the same estimate with the time and cost block
    ["estimate", "--model", "llama-3.1-70b", "--method", "full", "--gpu", "h100", "--tokens", "1e8", "--json"],
)
# In-process cost of the time terms alone (issue 16 target: a few milliseconds): step_time + time_dict per set-up.
TIME_CASES = (
    ("llama-3.1-8b", {"adaptation": "qlora"}, "rtx4090"),
    ("llama-3.1-70b", {"adaptation": "full", "gpus": 8, "parallel": "fsdp"}, "h100"),
    ("mixtral-8x7b", {"adaptation": "lora"}, "a100-80gb"),
    ("qwen2.5-7b", {"train": "grpo", "adaptation": "lora", "seq_len": 1024, "response_len": 512}, "h100"),
    ("llama-3.1-8b", {"train": "dpo", "adaptation": "full", "gpus": 4, "parallel": "zero3"}, "h100"),
)


def run_once(args: list[str]) -> tuple[float, float]:
    """Wall seconds and max RSS (MiB) of one fresh `advisor` process."""
    start = time.perf_counter()
    pid = os.posix_spawn(
        sys.executable,
        [sys.executable, "-m", "advisor", *args],
        os.environ.copy(),
        file_actions=[(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)],
    )
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"advisor {' '.join(args)} failed")
    return elapsed, usage.ru_maxrss / 1024


def main(n: int = 30) -> None:
    print("| command | runs | median s | p90 s | max RSS MiB |\n|---|---|---|---|---|")
    for args in COMMANDS:
        run_once(args)  # warm the page cache and bytecode
        samples = [run_once(args) for _ in range(n)]
        times = sorted(s[0] for s in samples)
        rss = max(s[1] for s in samples)
        print(f"| advisor {' '.join(args)} | {n} | {statistics.median(times):.3f} | {times[int(0.9 * (n - 1))]:.3f} | {rss:.1f} |")


def time_terms_cost(repeats: int = 200) -> None:
    """Median milliseconds of the time terms (estimators.timing.step_time + time_report.time_dict), in process."""
    from estimators.catalog import resolve_model
    from estimators.gpus import find_gpu
    from estimators.setup import Setup
    from estimators.time_report import Dataset, time_dict

    print("\n| time terms: model, set-up, GPU | calls | median ms | max ms |\n|---|---|---|---|")
    for key, changes, gpu_id in TIME_CASES:
        spec, gpu, setup = resolve_model(key).spec, find_gpu(gpu_id), Setup(**changes)
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            time_dict(spec, setup, gpu, Dataset(tokens=10**8))
            samples.append((time.perf_counter() - start) * 1e3)
        samples.sort()
        print(f"| {key} {changes} {gpu_id} | {repeats} | {statistics.median(samples):.2f} | {samples[-1]:.2f} |")


# (label, argv after `python`, what its median is divided by, target ratio)
STARTUP = (
    ("python -c pass", ["-c", "pass"], None, None),
    ("advisor estimate --model 7b --json", ["-m", "advisor", "estimate", "--model", "7b", "--json"], "python -c pass", 4.0),
    ("advisor estimate --model 7b (the table, stdout not a terminal)", ["-m", "advisor", "estimate", "--model", "7b"], "python -c pass", 6.0),
    ("advisor --help", ["-m", "advisor", "--help"], "python -c pass", 2.5),
    (
        "advisor advise --goal chat_format --data instruction_pairs --gpu rtx3060ti --model 7b",
        ["-m", "advisor", "advise", "--goal", "chat_format", "--data", "instruction_pairs", "--gpu", "rtx3060ti", "--model", "7b"],
        "python -c pass",
        10.0,
    ),
    ("empty Textual app, headless, to its first frame", ["-c", "EMPTY_APP"], None, None),
    (
        "advisor wizard --answers FILE, headless, to its first frame",
        ["-c", "WIZARD", "ANSWERS"],
        "empty Textual app, headless, to its first frame",
        1.25,
    ),
)
# Both apps print READY and their CPU seconds on their Ready event (the first frame written), then exit: the time
# is from spawning the process to that line (what the user waits for; a worker may still load the rest behind it).
EMPTY_APP = (
    "import sys, time\nfrom textual.app import App\nclass A(App):\n    def on_ready(self):\n"
    "        print('READY', time.process_time(), file=sys.__stdout__, flush=True)\n        self.exit()\nA().run(headless=True, size=(80, 24))\n"
)
WIZARD = """import sys, time
from advisor.cli import build_parser
from advisor.commands.wizard import prefilled
raw = prefilled(build_parser("wizard").parse_args(["wizard", "--answers", sys.argv[1], "--lang", "en"]))
from advisor.tui.app import WizardApp
class W(WizardApp):
    def on_ready(self):
        print("READY", time.process_time(), file=sys.__stdout__, flush=True)
        self.exit()
W(answers=raw).run(headless=True, size=(80, 24))
"""
ANSWERS = 'goal = "domain"\ndata = ["instruction_pairs"]\ngpu = "rtx3060"\nmodel = "7b"\n'


def compile_bytecode() -> str:
    """Compile the project and the packages its commands import into their __pycache__ folders, once, so that
    PYTHONDONTWRITEBYTECODE does not turn every timed run into a compile. Returns what was done, for the report."""
    folders = [ROOT / "advisor", ROOT / "estimators", ROOT / "rules"]
    for name in ("rich", "textual", "pydantic", "pydantic_core", "markdown_it", "mdurl", "pygments", "platformdirs", "typing_extensions"):
        spec = importlib.util.find_spec(name)
        if spec and spec.origin:
            folders.append(Path(spec.origin).parent if spec.origin.endswith("__init__.py") else Path(spec.origin))
    ok = all(compileall.compile_dir(str(f), quiet=1) if f.is_dir() else compileall.compile_file(str(f), quiet=1) for f in folders)
    flag = "set" if os.environ.get("PYTHONDONTWRITEBYTECODE") else "not set"
    return (
        f"bytecode: compiled once before timing with compileall into the normal __pycache__ folders "
        f"({', '.join(f.name for f in folders)}){'' if ok else ' (some files failed to compile)'}; "
        f"PYTHONDONTWRITEBYTECODE is {flag}"
    )


def timed(argv: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of `python argv`: from spawning it to its exit, or to its READY line (the apps' first
    frame; the CPU time is then the one the process reports on that line)."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    elapsed = cpu = None
    for line in proc.stdout:
        if line.startswith(b"READY "):
            elapsed, cpu = time.perf_counter() - start, float(line.split()[1])
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if elapsed is None:
        elapsed, cpu = time.perf_counter() - start, usage.ru_utime + usage.ru_stime
    if proc.returncode:
        raise SystemExit(f"{' '.join(argv)} failed: {err.decode(errors='replace')[-500:]}")
    return elapsed, cpu


def startup(n: int, write: bool = False) -> str:
    import tempfile

    note = compile_bytecode()
    with tempfile.TemporaryDirectory() as tmp:
        answers = Path(tmp) / "answers.toml"
        answers.write_text(ANSWERS, encoding="utf-8")
        code = {"EMPTY_APP": EMPTY_APP, "WIZARD": WIZARD, "ANSWERS": str(answers)}
        argvs = {label: [code.get(a, a) for a in argv] for label, argv, _, _ in STARTUP}
        for argv in argvs.values():  # warm the page cache (and the model catalog's cache)
            timed(argv)
        wall: dict[str, list[float]] = {label: [] for label in argvs}
        cpu: dict[str, list[float]] = {label: [] for label in argvs}
        for _ in range(n):  # interleaved: a burst of load on the shared machine hits every command alike
            for label, argv in argvs.items():
                w, c = timed(argv)
                wall[label].append(w)
                cpu[label].append(c)
    med = {label: (statistics.median(wall[label]), statistics.median(cpu[label])) for label in argvs}
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        f"command: {sys.executable} bench/speed.py --startup {n}{' --write' if write else ''}",
        f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; load average after the runs {load} (the machine is shared)",
        note,
        f"{n} interleaved runs of each command (fresh processes, stdout to a pipe: not a terminal), after one warm-up run;",
        "wall = spawn to exit (to the first frame for the apps), CPU = user + system seconds of the process (less moved",
        "by other jobs on a shared machine than wall time); medians, and ratios of medians from this same run",
        "",
        f"{'command':<88} {'wall ms':>8} {'ratio':>6} {'CPU ms':>7} {'ratio':>6} {'target':>7}",
    ]
    for label, _, base, target in STARTUP:
        w, c = med[label]
        rw = f"{w / med[base][0]:.2f}x" if base else ""
        rc = f"{c / med[base][1]:.2f}x" if base else ""
        goal = f"<={target:g}x" if target else ""
        mark = ""
        if target:
            mark = (
                "  ok"
                if max(w / med[base][0], c / med[base][1]) <= target
                else ("  ok (CPU), over (wall)" if c / med[base][1] <= target else "  OVER")
            )
        lines.append(f"{label:<88} {w * 1000:8.1f} {rw:>6} {c * 1000:7.1f} {rc:>6} {goal:>7}{mark}")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/speed.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  .venv/bin/python bench/speed.py 30\n  .venv/bin/python bench/speed.py --startup 10 --write",
    )
    parser.add_argument(
        "runs", nargs="?", type=int, default=30, help="fresh processes per command for the `advisor estimate` latency table (default 30)"
    )
    parser.add_argument(
        "--startup",
        nargs="?",
        type=int,
        const=15,
        metavar="N",
        help="instead: start-up of each command as a multiple of a bare interpreter, N interleaved runs (default 15)",
    )
    parser.add_argument("--write", action="store_true", help="with --startup: also write the table to bench/results/speed_startup.txt")
    args = parser.parse_args(argv)
    if args.write and args.startup is None:
        parser.error("--write goes with --startup")
    return args


if __name__ == "__main__":
    args = parse_args(sys.argv[1:])
    if args.startup is not None:
        text = startup(args.startup, args.write)
        print(text, end="")
        if args.write:
            (ROOT / "bench" / "results" / "speed_startup.txt").write_text(text, encoding="utf-8")
    else:
        main(args.runs)
        time_terms_cost()
