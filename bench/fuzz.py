"""The CLI fuzzer's long run: tens of thousands of random argv lists through `advisor.cli.main` in-process,
counting tracebacks, wrong exit codes, multi-line errors and non-strict JSON. Results: bench/results/fuzz.md.

    .venv/bin/python bench/fuzz.py                     # 20,000 cases, prints the report
    .venv/bin/python bench/fuzz.py --cases 1000        # a quick look
    .venv/bin/python bench/fuzz.py --write             # and writes bench/results/fuzz.md

The argv generator, the malformed files and the judging are those of tests/test_fuzz_cli.py (the suite runs a
few hundred cases per command through hypothesis; this runs the same generator with a seeded random.Random so
the counts can be reproduced: case i of command c uses seed hash((c, i, --seed))).
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_fuzz_cli import FUZZED, draw_argv, make_files, run_cli  # noqa: E402


def fuzz(cases: int, seed: int) -> tuple[dict, list, float]:
    counts: dict[str, collections.Counter] = {c: collections.Counter() for c in FUZZED}
    problems: list = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = make_files(root)
        old = os.getcwd()
        os.chdir(root)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            for i in range(cases):
                command = FUZZED[i % len(FUZZED)]
                rng = random.Random(f"{seed}:{command}:{i}")
                argv = draw_argv(rng, command, files, root)
                outcome = run_cli(argv)
                counts[command]["cases"] += 1
                counts[command][f"exit {outcome.code}"] += 1
                if outcome.problem:
                    counts[command]["problems"] += 1
                    problems.append((command, outcome.problem, argv))
                if (i + 1) % 1000 == 0:  # progress on stderr: cases done, problems so far, seconds
                    print(f"fuzz: {i + 1} cases, {len(problems)} problems, {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
        finally:
            os.chdir(old)
    return counts, problems, time.perf_counter() - start


def report(cases: int, seed: int) -> str:
    counts, problems, seconds = fuzz(cases, seed)
    total = sum(c["cases"] for c in counts.values())
    bad = len(problems)
    lines = [
        "# CLI fuzz",
        "",
        f"{total:,} in-process calls of `advisor.cli.main(argv)` (seed {seed}), {seconds:.0f} s on "
        f"{platform.machine()} with {os.cpu_count()} CPUs, Python {platform.python_version()}. "
        f"Command: `.venv/bin/python bench/fuzz.py --cases {cases} --write`.",
        "",
        "A case is a problem when an exception escapes `main`, the exit code is not 0 or 2, stderr holds a "
        "traceback, an error is not on `advisor`-prefixed lines, or a `--json` output is not strict JSON.",
        "",
        f"**Problems: {bad}** (target 0).",
        "",
        "| command | cases | exit 0 | exit 2 | problems |",
        "|---|---|---|---|---|",
    ]
    for command, c in counts.items():
        lines.append(f"| {command} | {c['cases']:,} | {c['exit 0'] + c['exit None']:,} | {c['exit 2']:,} | {c['problems']} |")
    if problems:
        lines += ["", "First problems (kind, argv):", ""]
        kinds = collections.Counter(p[1].split(":")[0] for p in problems)
        lines += [f"- {kind}: {n}" for kind, n in kinds.most_common()]
        lines.append("")
        for command, problem, argv in problems[:20]:
            lines.append(f"- `{command}`: {problem[:160]!r} — argv {argv!r}"[:400])
    lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    text = report(args.cases, args.seed)
    print(text)
    if args.write:
        out = ROOT / "bench" / "results" / "fuzz.md"
        out.write_text(text, encoding="utf-8")
        print(f"written: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
