"""Live tensor storage bytes, op by op: what torch.cuda.max_memory_allocated would count.

`MemoryTracker` is a TorchDispatchMode. After every aten op it registers the storages of the op's outputs it has
not seen (views and in-place results share a known storage and add nothing), rounded up to the CUDA caching
allocator's 512-byte block, and a weak reference whose callback subtracts them when the storage is freed. The
peak is checked after every op. It works the same on fake tensors (inside FakeTensorMode, no memory at all) and on
real CPU tensors, which is how the tracer is itself tested.

Categories come from storage identity, as torch's mem_tracker names them:
  parameters   model weights and buffers (quantisation constants included), registered before the first step
  gradients    a storage that becomes some parameter's .grad (post-accumulate-grad hooks)
  optimizer    storages held in the optimizer's state after a step
  activations  allocated while the forward runs (the forward itself, and layer recomputation in backward)
  temporaries  everything else allocated in backward and in the optimizer step
  other        the input batch
"""

from __future__ import annotations

import weakref
from contextlib import contextmanager

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

BLOCK = 512  # c10/cuda/CUDACachingAllocator.cpp kMinBlockSize: every allocation is a multiple of 512 bytes
CATEGORIES = ("parameters", "gradients", "optimizer", "activations", "temporaries", "other")


def rounded(nbytes: int) -> int:
    return -(-nbytes // BLOCK) * BLOCK


class MemoryTracker(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, list] = {}  # id(storage) -> [bytes, category, weakref]
        self.totals = dict.fromkeys(CATEGORIES, 0)
        self.total = 0
        self.peak = 0
        self.peak_categories = dict(self.totals)
        self.peak_phase = ""
        self.phase = "setup"
        self.phase_peaks: dict[str, int] = {}
        self.forward_depth = 0  # > 0 while a module's forward runs (forward pass or recomputation)
        self.ops = 0
        self.describe = False  # keep a description of every live storage, and copy them at event `snapshot_event`
        self.snapshot_event = -1  # (the peak's event number from an earlier, identical run)
        self.events = 0
        self.peak_event = 0
        self.peak_live: list[tuple[int, str, str]] = []
        self.current_op = "setup"
        self.module_names: dict[int, str] = {}
        self.module_stack: list[str] = []
        self.emulated: dict = {}  # aten/custom op -> fn(tracker, *args, **kwargs) replacing it (see qlora.py)
        self.paused = 0  # > 0 inside `untracked()`: ops run, their outputs are not counted

    # ------------------------------------------------------------------ bookkeeping
    def _category_now(self) -> str:
        if self.phase == "optimizer step":
            return "optimizer"
        if self.phase == "forward" or self.forward_depth > 0:
            return "activations"
        if self.phase == "setup":
            return "parameters"
        return "temporaries"

    def _freed(self, key: int) -> None:
        entry = self.live.pop(key, None)
        if entry is not None:
            self.totals[entry[1]] -= entry[0]
            self.total -= entry[0]

    def track(self, t: torch.Tensor, category: str | None = None) -> None:
        """Count the storage behind `t` (once); `category` re-labels an already counted storage."""
        if t.device.type == "meta":  # not on the device (paged optimizer state, shapes only)
            return
        st = t.untyped_storage()
        key = id(st)
        entry = self.live.get(key)
        if entry is None:
            nbytes = rounded(st.nbytes())
            if nbytes == 0:
                return
            cat = category or self._category_now()
            ref = weakref.ref(st, lambda _r: self._freed(key))
            self.live[key] = [nbytes, cat, ref]
            if self.describe:
                where = self.module_stack[-1] if self.module_stack else ""
                self.live[key].append(f"{self.phase}: {self.current_op} -> {tuple(t.shape)} {str(t.dtype)[6:]} @ {where}")
            self.totals[cat] += nbytes
            self.total += nbytes
        else:
            nbytes = rounded(st.nbytes())
            if nbytes != entry[0]:  # resized in place
                self.totals[entry[1]] += nbytes - entry[0]
                self.total += nbytes - entry[0]
                entry[0] = nbytes
            if category and category != entry[1]:
                self.totals[entry[1]] -= entry[0]
                self.totals[category] += entry[0]
                entry[1] = category
        self._update_peak()

    def category_of(self, t: torch.Tensor) -> str | None:
        entry = self.live.get(id(t.untyped_storage()))
        return entry[1] if entry else None

    def _update_peak(self) -> None:
        self.events += 1
        if self.events == self.snapshot_event:
            self.peak_live = [(e[0], e[1], e[3] if len(e) > 3 else "?") for e in self.live.values()]
        if self.total > self.phase_peaks.get(self.phase, -1):
            self.phase_peaks[self.phase] = self.total
        if self.total > self.peak:
            self.peak = self.total
            self.peak_categories = dict(self.totals)
            self.peak_phase = self.phase
            self.peak_event = self.events

    def relabel(self, tensors, category: str) -> None:
        for t in tensors:
            if isinstance(t, torch.Tensor):
                self.track(t, category)

    def retag_optimizer_scratch(self, state_tensors) -> None:
        """After a step: storages allocated in it that the optimizer does not keep are scratch, not state."""
        keep = {id(t.untyped_storage()) for t in state_tensors}
        for key, entry in list(self.live.items()):
            if entry[1] == "optimizer" and key not in keep:
                self.totals["optimizer"] -= entry[0]
                self.totals["temporaries"] += entry[0]
                entry[1] = "temporaries"

    def reset_peak(self) -> None:
        self.peak = self.total
        self.peak_categories = dict(self.totals)
        self.peak_phase = self.phase
        self.phase_peaks = {}

    @contextmanager
    def in_phase(self, name: str):
        old, self.phase = self.phase, name
        self._update_peak()
        try:
            yield
        finally:
            self.phase = old

    @contextmanager
    def untracked(self):
        """Run code whose allocations the emulated device does not make (a CUDA kernel that only writes into
        existing buffers, emulated by torch ops): outputs allocated inside are not counted. Only for code whose
        new tensors die inside the block."""
        self.paused += 1
        try:
            yield
        finally:
            self.paused -= 1

    # ------------------------------------------------------------------ dispatch
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if self.paused:
            return func(*args, **(kwargs or {}))
        emulate = self.emulated.get(func)
        if emulate is not None:
            out = emulate(self, *args, **(kwargs or {}))
        else:
            out = func(*args, **(kwargs or {}))
        self.ops += 1
        if self.describe:
            self.current_op = str(func.__name__ if hasattr(func, "__name__") else func)
        flat, _ = tree_flatten(out)
        for t in flat:
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                self.track(t)
        return out


@contextmanager
def module_forward_depth(tracker: MemoryTracker):
    """Count nested module forwards, so recomputation during backward is labelled as activations. The post hook
    runs with always_call=True: non-reentrant checkpointing stops a recomputation early by raising."""
    from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

    def pre(module, args):
        tracker.forward_depth += 1
        if tracker.describe:
            tracker.module_stack.append(tracker.module_names.get(id(module), type(module).__name__))

    def post(module, args, output):
        tracker.forward_depth -= 1
        if tracker.describe and tracker.module_stack:
            tracker.module_stack.pop()

    h1 = register_module_forward_pre_hook(pre)
    h2 = register_module_forward_hook(post, always_call=True)
    try:
        yield
    finally:
        h1.remove()
        h2.remove()
