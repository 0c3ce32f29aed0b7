"""The wizard's plan quote never asks Textual for a 0-second timer: Textual 8.2's Timer divides by its interval when it
fires late (textual/timer.py:163), so `set_timer(0.0)` closed the wizard with ZeroDivisionError under load (seen going
goal -> data -> goal -> data -> resources -> back -> back -> quit in a terminal)."""

from __future__ import annotations

import pytest

from advisor.tui.state import WizardState
from advisor.tui.widgets.plan_quote import PlanQuote


@pytest.mark.parametrize("delay", [0.0, None, 0.4])
def test_the_quote_asks_for_a_positive_delay(monkeypatch, delay):
    asked = []
    monkeypatch.setattr(PlanQuote, "set_timer", lambda self, seconds, callback: asked.append(seconds))
    quote = PlanQuote(WizardState(), "en", "goal")
    quote.refresh_soon(delay)
    assert asked and asked[0] >= PlanQuote.SOON_S > 0
