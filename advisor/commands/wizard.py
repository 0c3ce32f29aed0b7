"""`advisor wizard` (also `advisor` with no arguments): the Textual wizard. It returns a Plan; saving writes the
run directory, and "launch now" hands over to `advisor launch RUN_DIR` after the app has exited."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "wizard"
EXAMPLES = """examples:
  advisor                                     # the same as `advisor wizard`
  advisor wizard --lang ko
  advisor wizard --answers answers.toml       # pre-filled answers (question ids as keys), e.g. for a demo
  advisor wizard --goal domain --gpu rtx3060 --model 7b --out runs/domain

keys: Ctrl+N next, Esc back, Ctrl+G glossary, Ctrl+Q quit (Tab moves between fields; the mouse works too).
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..answers import add_question_flags  # here, so other commands' start-up skips it

    p.add_argument("--answers", type=Path, metavar="FILE", help="pre-fill the answers from a TOML file (question ids as keys); flags override it")
    p.add_argument("--lang", choices=("ko", "en"), default=None, help="language of the wizard (default: ko when the locale is Korean, else en)")
    p.add_argument("--out", metavar="RUN_DIR", default=None, help="where the run directory is written (default: runs/wizard; editable in the wizard)")
    add_question_flags(p)


def prefilled(args: argparse.Namespace) -> dict:
    """The answers file, then the flags, checked by the question declarations (missing ones are asked)."""
    from ..answers import load_answers
    from ..questions import questions
    from ..tui.state import check_answers

    raw = dict(load_answers(args.answers)) if args.answers else {}
    for q in questions():
        value = getattr(args, q.id, None)
        if value is not None:
            raw[q.id] = value
    return check_answers(raw, origin=str(args.answers) if args.answers else "flags")


def exit_lines(outcome, lang: str) -> list[tuple[str, bool]]:
    """What is printed once the wizard has closed, in the wizard's language: (line, goes to stderr). The launch
    command is shell-quoted so it can be pasted whatever the folder is called."""
    import shlex

    from ..tui.i18n import t

    plan = outcome.plan
    if plan is None:
        return [(t("exit_no_plan", lang), True)]
    from ..tui.screens.recommend import method_label

    pipeline, adaptation = method_label(plan.pipeline, plan.adaptation, lang)
    summary = f"{pipeline} + {adaptation} · {plan.model.name} · {plan.hardware.count}× {plan.hardware.gpu_name or plan.hardware.gpu}"
    lines = [(t("exit_plan", lang, summary=summary), False)]
    if outcome.run_dir is None:
        return lines + [(t("exit_nothing_saved", lang), True)]
    lines.append((t("exit_saved", lang, path=outcome.run_dir), False))
    if outcome.action != "launch":
        lines.append((t("exit_run_it", lang, command=f"advisor launch {shlex.quote(str(outcome.run_dir))}"), False))
    return lines


def run(args: argparse.Namespace) -> int:
    from ..errors import AdvisorError
    from ..lang import default_lang

    raw = prefilled(args)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise AdvisorError("the wizard needs a terminal; without one use `advisor advise` and `advisor generate` with flags")
    from ..tui import run_wizard

    lang = args.lang or default_lang()
    outcome = run_wizard(raw, lang=lang, run_dir=args.out)
    for line, to_stderr in exit_lines(outcome, lang):
        print(line, file=sys.stderr if to_stderr else sys.stdout)
    if outcome.plan is None or outcome.run_dir is None or outcome.action != "launch":
        return 0
    from . import launch

    launch_args = argparse.Namespace(run_dir=str(outcome.run_dir), resume=False, dry_run=False, force=False, max_steps=None, no_progress=False)
    return launch.run(launch_args)
