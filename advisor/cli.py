"""The `advisor` command: parse, call the core, render. Each subcommand lives in advisor/commands/ and keeps
its heavy imports inside its `run`, so `advisor estimate` never loads torch, transformers or textual."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from .errors import EXIT_INTERRUPTED, EXIT_USAGE, AdvisorError

# Subcommand modules, in the order `advisor --help` lists them. Each has NAME, HELP, add_arguments(p), run(args).
COMMANDS = ("wizard", "advise", "estimate", "fit", "generate", "launch", "measure", "accuracy", "models", "gpus")


TOP_LEVEL_FLAGS = ("-h", "--help", "--version")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as every other input error
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def available_commands() -> list[str]:
    """Commands whose module exists (the list above names the ones planned)."""
    return [name for name in COMMANDS if importlib.util.find_spec(f"advisor.commands.{name}")]


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `selected`, only that command's flags are declared (the others are listed by name),
    which keeps the start-up of `advisor estimate` free of the other commands' imports."""
    parser = _Parser(
        prog="advisor",
        description="Plan LLM fine-tuning: which method, whether it fits in GPU memory, and a ready training script.",
        epilog="Run `advisor COMMAND --help` for the flags and examples of each command.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"advisor {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in available_commands():
        module = importlib.import_module(f"advisor.commands.{name}")
        p = sub.add_parser(
            module.NAME, help=module.HELP, description=module.HELP, epilog=getattr(module, "EXAMPLES", None),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if selected in (None, name):
            module.add_arguments(p)
        p.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or (argv[0].startswith("-") and argv[0] not in TOP_LEVEL_FLAGS):
        # `advisor` and `advisor --lang ko ...` open the wizard: it is the main door
        argv = ["wizard", *argv] if "wizard" in available_commands() else ["--help"]
    parser = build_parser(argv[0] if argv[0] in COMMANDS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.run(args) or 0
    except AdvisorError as exc:
        print(f"advisor: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except ValueError as exc:  # EstimateError and RulesError are ValueErrors with user-facing messages
        if type(exc).__module__.startswith(("estimators", "advisor")):
            print(f"advisor: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        raise
    except KeyboardInterrupt:
        print("advisor: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
