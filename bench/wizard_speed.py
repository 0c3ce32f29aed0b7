"""Wizard speed: first paint and live re-estimates. Results go to bench/results/wizard_speed.md.

    .venv/bin/python bench/wizard_speed.py            # prints a Markdown report
    .venv/bin/python bench/wizard_speed.py --write    # and writes bench/results/wizard_speed.md

Budgets (the issue): first paint <= 1 s, each live re-estimate <= 50 ms, on this machine.

* first paint, headless: a fresh `python` process runs the wizard with Textual's headless driver; the time is from
  the process's first line (before any import) to Textual's `Ready` event (the DOM is ready and the first frame
  has been written). Interpreter start-up is added from `python -c pass`.
* first paint, real terminal (when tmux is installed): `advisor wizard` started in an 80x24 tmux pane; the time
  is from spawning it to the first capture of the pane that shows the step bar and the footer (polled every 20 ms).
* live re-estimate: the memory step of a running app (headless, 80x24); each what-if knob is changed through its
  widget and the time runs until the memory bar has rendered the new estimate (`handler`: the synchronous part,
  the estimate plus the plan update plus the redraw request; `to the bar repainted`: from setting the widget's
  value, through its Changed message, the handler and Textual's next refresh, to the end of the bar's `render()`;
  `key press`: the same from a key press in the focused micro-batch field).
"""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RUNS = 7
ANSWERS = 'goal = "domain"\ndata = ["instruction_pairs"]\ngpu = "rtx3060"\nmodel = "7b"\n'

HEADLESS = r"""
import time
t0 = time.perf_counter()
from advisor.tui.app import WizardApp

class Timed(WizardApp):
    def on_ready(self):
        print(f"FIRST_PAINT {time.perf_counter() - t0:.4f}", flush=True)
        self.exit()

Timed(answers={"goal": "domain", "data": ["instruction_pairs"], "gpu": "rtx3060", "model": "7b"}).run(headless=True, size=(80, 24))
"""


# The same, through the command's own path: `advisor wizard`'s parser, the pre-filled answers' check (which
# looks the GPU name up), then the app. Prints wall and CPU seconds (CPU time moves less with the machine's load).
CLI_HEADLESS = r"""
import time
t0, c0 = time.perf_counter(), time.process_time()
import sys
from advisor.cli import build_parser
from advisor.commands.wizard import prefilled

args = build_parser("wizard").parse_args(["wizard", "--answers", sys.argv[1], "--lang", "en"])
raw = prefilled(args)
from advisor.tui.app import WizardApp

class Timed(WizardApp):
    def on_ready(self):
        print(f"FIRST_PAINT {time.perf_counter() - t0:.4f} {time.process_time() - c0:.4f}", flush=True)
        self.exit()

Timed(answers=raw).run(headless=True, size=(80, 24))
"""


def _env(tree: Path | None) -> dict:
    """The environment of a measured process: with `tree`, that source tree's packages come first."""
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    return env


def first_paint_cli(tree: Path | None = None, runs: int = RUNS) -> tuple[list[float], list[float]]:
    """(wall seconds, CPU seconds) from the process's first line to the first frame, through the CLI path."""
    wall, cpu = [], []
    with tempfile.TemporaryDirectory() as tmp:
        answers = Path(tmp) / "answers.toml"
        answers.write_text(ANSWERS, encoding="utf-8")
        for _ in range(runs):
            proc = subprocess.run(
                [sys.executable, "-c", CLI_HEADLESS, str(answers)], capture_output=True, text=True, cwd=tree or ROOT, env=_env(tree), timeout=60
            )
            line = next(out_line for out_line in proc.stdout.splitlines() if out_line.startswith("FIRST_PAINT"))
            wall.append(float(line.split()[1]))
            cpu.append(float(line.split()[2]))
    return wall, cpu


def compare(before: Path, runs: int = RUNS) -> str:
    """Before (the source tree `before`, e.g. `git archive HEAD` unpacked) against this tree, runs interleaved so
    both see the same machine load."""
    results = {"before": ([], [], []), "after": ([], [], [])}
    for _ in range(runs):
        for name, tree in (("before", before), ("after", None)):
            wall, cpu = first_paint_cli(tree, runs=1)
            results[name][0].extend(wall)
            results[name][1].extend(cpu)
            tmux = first_paint_tmux(tree, runs=1)
            results[name][2].extend(tmux or [])
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        f"Before = `{before}`, after = this tree; {runs} interleaved runs each; load average after the runs {load}.",
        "",
        "| first paint | before | after |",
        "|---|---|---|",
    ]
    lines.append(
        f"| headless, `advisor wizard --answers` path, wall (+ interpreter start-up not included) | "
        f"{_ms(results['before'][0])} | {_ms(results['after'][0])} |"
    )
    lines.append(f"| same, CPU time of the process | {_ms(results['before'][1])} | {_ms(results['after'][1])} |")
    if results["after"][2]:
        lines.append(f"| real 80x24 terminal (tmux), spawned to drawn | {_ms(results['before'][2])} | {_ms(results['after'][2])} |")
    return "\n".join(lines) + "\n"


def _ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms"


def interpreter_start() -> list[float]:
    out = []
    for _ in range(RUNS):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        out.append(time.perf_counter() - t)
    return out


def first_paint_headless() -> list[float]:
    out = []
    for _ in range(RUNS):
        proc = subprocess.run([sys.executable, "-c", HEADLESS], capture_output=True, text=True, cwd=ROOT, timeout=60)
        line = next(out_line for out_line in proc.stdout.splitlines() if out_line.startswith("FIRST_PAINT"))
        out.append(float(line.split()[1]))
    return out


def first_paint_tmux(tree: Path | None = None, runs: int = RUNS) -> list[float] | None:
    if not shutil.which("tmux"):
        return None
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        answers = Path(tmp) / "answers.toml"
        answers.write_text(ANSWERS, encoding="utf-8")
        for i in range(runs):
            session = f"wizard-bench-{os.getpid()}-{i}-{time.monotonic_ns()}"
            where = f"env PYTHONPATH={tree} " if tree is not None else ""
            cmd = f"{where}{sys.executable} -m advisor wizard --answers {answers} --lang en; sleep 5"
            t = time.perf_counter()
            subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", "-c", str(tree or ROOT), cmd], check=True)
            try:
                while time.perf_counter() - t < 20:
                    pane = subprocess.run(["tmux", "capture-pane", "-t", session, "-p"], capture_output=True, text=True).stdout
                    if "1 Goal" in pane and "Next" in pane and "Glossary" in pane:
                        out.append(time.perf_counter() - t)
                        break
                    time.sleep(0.02)
            finally:
                subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    return out


# what-if changes: (knob, values to cycle through)
CHANGES = [
    ("micro_batch", ["4", "8", "1", "2"]),
    ("seq_len", ["4096", "1024", "2048"]),
    ("lora_r", ["64", "8", "16"]),
    ("grad_ckpt", [False, True]),
    ("optimizer", ["adamw8bit", "paged_adamw8bit", "adamw"]),
    ("adaptation", ["lora", "full", "qlora"]),
    ("quant_type", ["fp4", "nf4"]),
    ("gpus", ["2"]),
    ("parallel", ["zero3", "zero2", "ddp"]),
    ("gpus", ["4", "1"]),
]


def screen_view(app):
    from advisor.tui.state import memory_view

    return memory_view(app.state.plan, app.state.stage)


async def live_reestimate() -> tuple[list[float], list[float], list[float], dict[str, float]]:
    """(handler times, change-to-bar-repaint times, key-press-to-bar-repaint times, slowest repaint per knob)."""
    from textual.widgets import Input

    from advisor.tui.app import WizardApp
    from advisor.tui.screens.memory import MemoryScreen
    from advisor.tui.widgets.memory_bar import MemoryBar

    app = WizardApp(answers={"goal": "domain", "data": ["instruction_pairs"], "gpu": "rtx3060", "model": "7b"}, step="recommend")
    handler, repaint, keyed, per_knob = [], [], [], {}
    async with app.run_test(size=(80, 24)) as pilot:
        while not app.state.plan_is_current():
            await pilot.pause(0.05)
        await pilot.press("ctrl+n")
        await pilot.pause(0.2)
        screen = app.screen
        assert isinstance(screen, MemoryScreen)
        bar = screen.query_one(MemoryBar)
        original_apply, original_render = screen.apply_knob, bar.render
        rendered: list[tuple[float, object]] = []

        def timed_apply(field_name, value):
            t = time.perf_counter()
            original_apply(field_name, value)
            handler.append(time.perf_counter() - t)

        def timed_render():
            out = original_render()
            rendered.append((time.perf_counter(), bar.view))
            return out

        screen.apply_knob, bar.render = timed_apply, timed_render

        def repainted(since: float) -> float:
            """Seconds from `since` to the first bar render showing the current estimate."""
            want = screen_view(app)
            return next(t for t, view in rendered if t >= since and view == want) - since

        for _ in range(3):
            for knob, values in CHANGES:
                for value in values:
                    widget = screen.query_one(f"#knob-{knob}")
                    rendered.clear()
                    t = time.perf_counter()
                    widget.value = value  # as the widget does when the user edits it: it posts Changed
                    await pilot.pause()
                    setup = app.state.plan.stage(app.state.stage).setup
                    want = int(value) if knob in ("micro_batch", "seq_len", "lora_r", "gpus") else value
                    assert getattr(setup, knob) == want, f"{knob}={value} did not re-estimate"
                    dt = repainted(t) if rendered else 0.0  # no render: the estimate did not change
                    repaint.append(dt)
                    per_knob[knob] = max(per_knob.get(knob, 0.0), dt)
        micro = screen.query_one("#knob-micro_batch", Input)
        micro.focus()
        await pilot.pause()
        for key in ["end", "backspace", "4", "backspace", "8", "backspace", "1", "6", "backspace", "backspace", "2"] * 2:
            rendered.clear()
            t = time.perf_counter()
            await pilot.press(key)
            await pilot.pause()
            if rendered and micro.value:
                keyed.append(repainted(t))
    return handler, repaint, keyed, per_knob


def report() -> str:
    start = interpreter_start()
    headless = first_paint_headless()
    cli_wall, cli_cpu = first_paint_cli()
    tmux = first_paint_tmux()
    handler, repaint, keyed, per_knob = asyncio.run(live_reestimate())
    import textual

    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        "# Wizard speed",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"Textual {textual.__version__}; load average after the run {load} (1/5/15 min: the machine is shared, so "
        f"timings move with it). {RUNS} runs each. Command: `.venv/bin/python bench/wizard_speed.py --write`.",
        "",
        "| what | budget | result |",
        "|---|---|---|",
        f"| interpreter start-up (`python -c pass`) | | {_ms(start)} |",
        f"| first paint, headless (imports + app start to the first frame) | | {_ms(headless)} |",
        f"| first paint, headless + interpreter start-up | ≤ 1 s | {_ms([h + statistics.median(start) for h in headless])} |",
        f"| first paint, headless through `advisor wizard --answers` (parser, answer check, app) + start-up | ≤ 1 s | "
        f"{_ms([h + statistics.median(start) for h in cli_wall])} (CPU {_ms(cli_cpu)}) |",
    ]
    if tmux:
        lines.append(f"| first paint in a real 80x24 terminal (tmux), `advisor wizard` spawned to the screen drawn | ≤ 1 s | {_ms(tmux)} |")
    else:
        lines.append("| first paint in a real terminal (tmux) | ≤ 1 s | not measured: tmux is not installed |")
    lines += [
        f"| live re-estimate, handler (estimate + plan update + redraw request), {len(handler)} changes | ≤ 50 ms | {_ms(handler)} |",
        f"| live re-estimate, widget change to the bar repainted, {len(repaint)} changes | ≤ 50 ms | {_ms(repaint)} |",
        f"| live re-estimate, key press in the micro-batch field to the bar repainted, {len(keyed)} keys | ≤ 50 ms | {_ms(keyed)} |",
        "",
        "Slowest widget-change-to-bar-repaint per what-if knob: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in per_knob.items()) + ".",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    if "--compare" in sys.argv:  # --compare BEFORE_TREE [--write]: before/after table, appended to the results
        before = Path(sys.argv[sys.argv.index("--compare") + 1]).resolve()
        text = "## First paint, before and after (issue 13 item 16)\n\n" + compare(before)
        print(text)
        if "--write" in sys.argv:
            out = ROOT / "bench" / "results" / "wizard_first_paint.md"
            out.write_text(
                "# Wizard first paint\n\nCommand: `.venv/bin/python bench/wizard_speed.py --compare BEFORE_TREE --write`.\n\n" + text,
                encoding="utf-8",
            )
            print(f"written: {out}", file=sys.stderr)
        return 0
    text = report()
    print(text)
    if "--write" in sys.argv:
        out = ROOT / "bench" / "results" / "wizard_speed.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(f"written: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
