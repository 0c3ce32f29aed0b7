"""The collector is held off while the wizard starts (advisor/tui/gc_pause.py) and is itself again once the first
frame is drawn: enabled, and nothing left frozen out of its walks."""

from __future__ import annotations

import asyncio
import gc

from advisor.tui import gc_pause
from advisor.tui.app import WizardApp


def test_pause_and_resume_restore_what_was_there():
    was = gc.isenabled()
    try:
        gc.enable()
        assert gc_pause.pause() is True and not gc.isenabled()
        gc_pause.resume(True)
        assert gc.isenabled()
        gc.disable()  # a process that runs without the collector keeps running without it
        assert gc_pause.pause() is False
        gc_pause.resume(False)
        assert not gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()


def test_a_freeze_is_handed_back_and_someone_elses_is_left_alone():
    gc_pause.resume(gc.isenabled(), freeze=True)
    if gc.get_freeze_count():  # frozen here (unless the import of the app already did and thawed)
        gc_pause.thaw()
    assert gc.get_freeze_count() == 0
    gc.freeze()  # the process froze objects itself: not ours to freeze over or to thaw
    try:
        gc_pause.resume(True, freeze=True)
        gc_pause.thaw()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_after_the_first_frame_the_collector_runs_as_usual():
    async def scenario():
        app = WizardApp(lang="en")
        async with app.run_test(size=(100, 40)) as pilot:
            await pilot.pause()
            return gc.isenabled(), gc.get_freeze_count()

    assert asyncio.run(scenario()) == (True, 0)
