"""The Textual wizard: `advisor wizard` (and `advisor` with no arguments).

A view over `advisor.advice.advise`, the memory estimator and the script generator: the questions are the
declarations in `advisor.questions`, the rules live in `rules/*.toml`. Importing this package is cheap; Textual
loads when `run_wizard` (or `advisor.tui.app`) is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from ..plan import Plan


class Outcome:
    """What the wizard hands back: the Plan (None if the user quit before one was made), what they asked for
    at the end ("save", "launch", "quit", or None when the app was closed otherwise), and the run directory
    written (None unless saved). A plain class: `advisor wizard` imports this package before its first frame,
    and building this frozen dataclass cost that start-up about 0.6 ms."""

    __slots__ = ("plan", "action", "run_dir")

    def __init__(self, plan: Plan | None, action: str | None, run_dir: Path | None) -> None:
        self.plan, self.action, self.run_dir = plan, action, run_dir


def run_wizard(answers: Mapping[str, Any] | None = None, lang: str = "en", run_dir: str | None = None) -> Outcome:
    from .app import WizardApp
    from .state import DEFAULT_RUN_DIR

    app = WizardApp(answers=answers, lang=lang, run_dir=run_dir or DEFAULT_RUN_DIR)
    plan = app.run()
    return Outcome(plan, app.action, app.saved)
