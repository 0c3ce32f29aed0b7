"""Python's cyclic garbage collector, held off while the wizard starts.

Importing Textual creates some 50,000 objects that live as long as the process, and building the first screen many
more; on the way the collector runs about a hundred times, walking young objects that are all still alive: tens of
milliseconds of the first frame, for nothing to collect. So advisor.tui.app imports Textual with the collector paused
and then freezes what exists (gc.freeze: those objects are left out of later collections, without a walk over them),
and WizardApp pauses it again from its Load event to its first frame (Ready). After the first frame the frozen objects
are handed back (gc.unfreeze) and the collector runs as usual. A process that froze objects itself is left alone.
"""

from __future__ import annotations

import gc

_frozen = False  # whether the objects frozen now were frozen here (then thaw hands them back)


def pause() -> bool:
    """Stop the collector; returns whether it was running, for `resume`."""
    running = gc.isenabled()
    gc.disable()
    return running


def resume(running: bool, freeze: bool = False) -> None:
    """Restart the collector if it was running; with `freeze`, the objects alive now are left out of its walks."""
    global _frozen
    if freeze and not _frozen and gc.get_freeze_count() == 0:
        gc.freeze()
        _frozen = True
    if running:
        gc.enable()


def thaw() -> None:
    """Hand what `resume(freeze=True)` froze back to the collector (once the first frame is on the screen)."""
    global _frozen
    if _frozen:
        _frozen = False
        gc.unfreeze()
