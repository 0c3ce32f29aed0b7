"""`advisor advise`: which method and adaptation to use, following the source document's tables, sized so that
it fits the GPU. Torch-free: the memory model is pure Python."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..lang import default_lang

NAME = "advise"
EXAMPLES = """examples:
  advisor advise --goal chat_format --data instruction_pairs --gpu rtx3060ti --model 7b
  advisor advise --goal quality_safety --data instruction_pairs,preference_pairs --gpu h100 --model 8b
  advisor advise --goal domain --data raw_text --gpu 24GB --priority cost --lang ko
  advisor advise --goal best_quality --data preference_pairs --gpu a100-80gb --gpu-count 2 --json
  advisor advise --answers answers.toml --save plan.toml
  advisor advise --goal chat_format --data instruction_pairs --gpu rtx4090 --margin 2GiB
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..answers import add_question_flags  # here, so other commands' start-up skips it

    add_question_flags(p)
    out = p.add_argument_group("output")
    out.add_argument("--answers", type=Path, metavar="FILE", help="read the answers from a TOML file (question ids as keys); flags override it")
    out.add_argument(
        "--lang", choices=("ko", "en"), default=None, help="language of the explanation (default: ko when LC_ALL/LANG is Korean, else en)"
    )
    out.add_argument("--json", action="store_true", help="print the plan as JSON (schema advisor.plan/2)")
    out.add_argument("--save", type=Path, metavar="PLAN.toml", help="write the plan to a TOML file (`advisor generate --plan` reads it)")
    out.add_argument("--force", action="store_true", help="overwrite the --save file if it exists")
    p.add_argument(
        "--dataset",
        metavar="PATH",
        help="your training data (see `advisor data check`): its type, rows and token "
        "lengths answer --data, --data-count and --seq-len where they are not given",
    )
    p.add_argument(
        "--margin",
        metavar="SIZE",
        default=None,
        help="memory to keep free on each card besides the estimate: 1.5GiB, 800MiB, 10%% (of the card) or 0; "
        "default auto = the estimate's measured error for its class, plus 0.5 GiB on a consumer card for the display",
    )


def run(args: argparse.Namespace) -> int:
    from ..advice.advise import advise
    from ..answers import answers_from_args, load_answers
    from ..errors import AdvisorError
    from ..plan import save_plan
    from ..plan_render import print_plan

    lang = args.lang or default_lang()
    if args.save and args.save.exists() and not args.force:
        raise AdvisorError(f"{args.save} exists; pass --force to overwrite it")
    base = load_answers(args.answers) if args.answers else None
    dataset = None
    if getattr(args, "dataset", None):  # issue 17: the data answers what it can (advisor/datasets/advice.py)
        from ..datasets.advice import answers_from_dataset

        dataset, base = answers_from_dataset(args.dataset, args, base)
    answers = answers_from_args(args, base, origin=str(args.answers) if args.answers else "answers")
    if dataset:  # a PPO/GRPO stage needs prompt + response tokens, more than the data's own length
        from ..datasets.advice import plan_for_dataset

        plan, answers = plan_for_dataset(lambda a: advise(a, margin=args.margin), answers, dataset)
    else:
        plan = advise(answers, margin=args.margin)
    if args.save:
        save_plan(plan, args.save, force=args.force)
    if args.json:
        json.dump(plan.to_data() | ({"dataset": dataset} if dataset else {}), sys.stdout, indent=2, ensure_ascii=False, allow_nan=False)
        print()
    else:
        print_plan(plan, answers, lang)
        if dataset:
            from rich.console import Console

            from ..datasets.advice import summary_lines

            for line in summary_lines(dataset, lang):
                Console().print(line)
    if args.save:
        print(f"advisor: plan saved to {args.save}", file=sys.stderr)
    return 0
