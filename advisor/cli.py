"""The `advisor` command: parse, call the core, render. Each subcommand lives in advisor/commands/ and keeps
its heavy imports inside its `run`, so `advisor estimate` never loads torch, transformers or textual. Only the
command being run is imported: `advisor --help` lists the summaries of advisor/commands/__init__.py."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import unicodedata
from typing import NoReturn

from estimators.errors import EstimateError

from .commands import SUMMARIES as COMMANDS  # name -> one-line summary, in `advisor --help` order
from .errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, AdvisorError

TOP_LEVEL_FLAGS = ("-h", "--help", "--version")


# 128 + SIGPIPE: what a shell reports for a program whose reader went away (`advisor accuracy | head -1`)
EXIT_BROKEN_PIPE = 141
_MAX_MESSAGE = 400  # characters of an error line; a 5000-character value cannot flood the terminal


def one_line(message: object) -> str:
    """An error message as one line: control characters (a newline in a value, an escape sequence) escaped the
    way repr() writes them, and cut at _MAX_MESSAGE characters. Korean and other printable text stays as is."""
    out = "".join(repr(ch)[1:-1] if unicodedata.category(ch).startswith("C") else ch for ch in str(message))
    return out if len(out) <= _MAX_MESSAGE else out[: _MAX_MESSAGE - 1] + "…"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2, as every other input error
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)}\n")

    def _get_values(self, action, arg_strings):
        # Python 3.11's argparse turns `--seq-len=--` into [] without calling the flag's type (a list reaches the
        # code that expects an int); a lone "--" given as a flag's value is refused here instead.
        if action.nargs in (None, argparse.OPTIONAL) and arg_strings == ["--"] and action.option_strings:
            self.error(f"argument {'/'.join(action.option_strings)}: expected a value, got '--'")
        return super()._get_values(action, arg_strings)


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `selected`, only that command is declared, with its flags. Without, every command is
    declared by its summary alone: `advisor --help`, `--version` and an unknown command need no command module
    (importing them, each pulling advisor.knobs and the estimator, was most of the top-level help's start-up)."""
    parser = _Parser(
        prog="advisor",
        description="Plan LLM fine-tuning: which method, whether it fits in GPU memory, and a ready training script.",
        epilog="Run `advisor COMMAND --help` for the flags and examples of each command.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"advisor {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, summary in COMMANDS.items():
        if selected is None:
            sub.add_parser(name, help=summary)
        elif name == selected:
            # argv[0] is `selected`: the other subcommands can never be parsed now, and importing their modules
            # cost the wizard's first paint about 0.1 s
            module = importlib.import_module(f"advisor.commands.{name}")
            p = sub.add_parser(
                name,
                help=summary,
                description=summary,
                epilog=getattr(module, "EXAMPLES", None),
                formatter_class=argparse.RawDescriptionHelpFormatter,
            )
            module.add_arguments(p)
            p.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or (argv[0].startswith("-") and argv[0] not in TOP_LEVEL_FLAGS):
        # `advisor` and `advisor --lang ko ...` open the wizard: it is the main door
        argv = ["wizard", *argv]
    parser = build_parser(argv[0] if argv[0] in COMMANDS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        code = args.run(args) or 0
        sys.stdout.flush()  # a reader that went away shows up here, inside the handler, not at interpreter exit
        return code
    except BrokenPipeError:
        return _broken_pipe()
    except AdvisorError as exc:
        print(f"advisor: error: {one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except EstimateError as exc:  # the estimator's family (unknown model, impossible setup): the user's input
        print(f"advisor: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:
        if "not JSON compliant" in str(exc):  # json.dump(allow_nan=False): a NaN/inf figure is a bug, not input
            print("advisor: error: internal: a figure in the JSON output is not a finite number (please report)", file=sys.stderr)
            return EXIT_FAILURE
        if str(exc).startswith("Exceeds the limit"):  # int() of a number with > sys.get_int_max_str_digits() digits
            print("advisor: error: a number in the input has more than 4300 digits", file=sys.stderr)
            return EXIT_USAGE
        raise
    except OSError as exc:  # a file the user named cannot be read or written (/proc/self/mem, a full disk)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"advisor: error: {one_line(where + (exc.strerror or str(exc)))}", file=sys.stderr)
        return EXIT_USAGE
    except RecursionError:  # json/tomllib on a file nested thousands deep (the readers recurse per level)
        print("advisor: error: an input file is nested too deeply to read (thousands of levels)", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("advisor: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _broken_pipe() -> int:
    """The reader of stdout went away (`| head -2`): stop quietly, as `cat` or `grep` do. Python's documented
    recipe: point stdout at /dev/null so the flush at interpreter exit cannot raise a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout is not a real file (in-process callers, tests)
        pass
    return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
