"""One screen per step of the wizard (advisor.tui.state.STEPS), plus the glossary overlay."""

from __future__ import annotations


def screen_for(step: str):
    """A fresh screen for `step`; each one rebuilds itself from the app's WizardState."""
    import importlib

    module, name = SCREENS[step]
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)()


# step -> (module, class); a step's module is imported when the step is first shown (the first paint stays fast)
SCREENS = {
    "goal": ("questions", "GoalScreen"),
    "data": ("data", "DataScreen"),
    "resources": ("resources", "ResourcesScreen"),
    "recommend": ("recommend", "RecommendScreen"),
    "memory": ("memory", "MemoryScreen"),
    "script": ("script", "ScriptScreen"),
    "finish": ("finish", "FinishScreen"),
}
