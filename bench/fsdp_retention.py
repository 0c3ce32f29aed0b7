"""FSDP1 holding every layer's checkpoint until the backward ends: a toy LoRA decoder on CPU, 2 gloo ranks.

What it shows. Under torch FSDP1, a unit whose flat parameter is frozen (a LoRA/QLoRA decoder layer once peft's
fsdp_auto_wrap_policy has put the adapters in units of their own) is resharded by
`_register_post_backward_reshard_only_hook` (torch/distributed/fsdp/_runtime_utils.py): a multi-grad hook on the
unit's forward inputs whose handle FSDP keeps until `_finalize_params` at the end of the backward. When the
checkpoint sits OUTSIDE the unit and is reentrant (transformers < 4.52: `self._gradient_checkpointing_func(
decoder_layer.__call__, ...)`), the forward that registers the hook is the recompute, and its inputs are the
checkpoint's detached copies of the layer input: leaves that share storage with the saved checkpoint and collect the
input gradient in `.grad`. The hook's grad_fns (their AccumulateGrad nodes) keep them, so once layer i's backward is
done its checkpoint and its input gradient stay alive. At the bottom layer's backward a rank holds
2 x (L - 1) x tokens x hidden elements; all but one (layer 1's input gradient, which is the gradient flowing into the
bottom layer) would otherwise be gone. With the checkpoint inside the unit (transformers
>= 4.52, GradientCheckpointingLayer), with non-reentrant checkpointing, or with a trainable flat parameter (full
fine-tuning) nothing is held.

Why it matters for the estimator. estimators/stack_training.py:fsdp_frozen_unit_held_checkpoints adds exactly that
(2L - 3) x checkpoint term (the 2 x (L - 1) held, less the gradient alive anyway) to the FSDP LoRA/QLoRA backward
on transformers < 4.52; this script is the pure-torch
measurement behind it, one variant per condition the term depends on.

How it measures. The function each checkpoint runs records a weak reference to the tensors it is called with (for
reentrant checkpointing, the recompute's detached inputs). An identity between the bottom layer and the next calls
a probe from its backward, just before the bottom layer's; the probe counts the inputs of layers 1..L-1 still alive, the ones holding a
.grad, and their bytes (distinct storages, so a .grad that is the gradient now flowing into the bottom layer is
counted apart: it would be alive anyway). The same moment is marked in a torch.profiler memory trace of rank 0,
whose running total of live CPU bytes gives an independent figure: the held variant minus the inside-the-unit
variant, compared with the formula.

    .venv/bin/python bench/fsdp_retention.py                       # 8 layers, 2048 tokens x 256 hidden per rank, fp32
    .venv/bin/python bench/fsdp_retention.py --write               # and writes bench/results/fsdp_retention.txt
    .venv/bin/python bench/fsdp_retention.py --dtype bfloat16      # the training dtype; about 5x slower on a CPU without bf16 matmul

fp32 by default only for speed: what is held is a count of layer inputs, the same in any dtype (the formula's bytes
follow --dtype).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import socket
import sys
import tempfile
import time
import warnings
import weakref
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.utils.checkpoint import checkpoint

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results" / "fsdp_retention.txt"
MIB = 2**20
PROBE = "probe: bottom layer backward"

# (label, where the checkpoint sits, reentrant, decoder weights frozen); the first is the held case.
VARIANTS = (
    ("outside unit, reentrant, frozen", "outside", True, True),
    ("inside unit, reentrant, frozen", "inside", True, True),
    ("outside unit, non-reentrant, frozen", "outside", False, True),
    ("outside unit, reentrant, trainable", "outside", True, False),
)


class Recorder:
    """Weak references to what each layer's checkpointed function was called with, and the probe's findings.
    Weak, so that recording changes nothing about what stays alive."""

    def __init__(self, layers: int):
        self.seen: list[list[weakref.ref]] = [[] for _ in range(layers)]
        self.found: dict | None = None

    def record(self, layer: int, x: torch.Tensor) -> None:
        if torch.is_grad_enabled():  # the reentrant forward runs under no_grad; only the recompute builds a graph
            self.seen[layer].append(weakref.ref(x))

    def alive(self, layers: range) -> list[torch.Tensor]:
        out: dict[int, torch.Tensor] = {}
        for i in layers:
            for ref in self.seen[i]:
                t = ref()
                if t is not None:
                    out[id(t)] = t  # non-reentrant calls the function twice with the same tensor
        return list(out.values())

    def probe(self, grad: torch.Tensor) -> None:
        """Gradient hook on the bottom layer's output: the backward of layers 1..L-1 is done, layer 0's is next."""
        with torch.profiler.record_function(PROBE):  # a timestamp in the memory trace
            alive = self.alive(range(1, len(self.seen)))
            storages: dict[int, int] = {}
            for t in alive:
                for s in (t, t.grad):
                    if s is not None:
                        storages[s.untyped_storage().data_ptr()] = s.untyped_storage().nbytes()
            in_flight = grad.untyped_storage().data_ptr()
            self.found = {
                "alive": len(alive),
                "with_grad": sum(t.grad is not None for t in alive),
                "held_bytes": sum(storages.values()),
                "extra_bytes": sum(b for p, b in storages.items() if p != in_flight),
            }
            del alive  # drop the strong references before the backward goes on


class Mark(torch.autograd.Function):
    """Identity whose backward calls the probe. Put between the bottom layer and the next, its backward runs once the
    next layer's backward is done and before the bottom unit's own backward hooks (FSDP's unshard) run, whichever
    variant; a hook on the bottom layer's output would run after FSDP's, which are registered on it first."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, probe) -> torch.Tensor:
        ctx.probe = probe
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        ctx.probe(grad)
        return grad, None


class Adapter(nn.Module):
    """A LoRA-like down/up pair, the only trainable part of a LoRA layer; wrapped as an FSDP unit of its own."""

    def __init__(self, hidden: int, rank: int, dtype: torch.dtype):
        super().__init__()
        self.down = nn.Linear(hidden, rank, bias=False, dtype=dtype)
        self.up = nn.Linear(rank, hidden, bias=False, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.down(x))


class Block(nn.Module):
    """A decoder layer: a frozen MLP (its flat parameter) plus the adapter. `inside` checkpoints within the FSDP unit,
    like transformers >= 4.52's GradientCheckpointingLayer."""

    def __init__(self, index: int, hidden: int, rank: int, dtype: torch.dtype, recorder: Recorder):
        super().__init__()
        self.w_in = nn.Linear(hidden, 2 * hidden, bias=False, dtype=dtype)
        self.w_out = nn.Linear(2 * hidden, hidden, bias=False, dtype=dtype)
        self.adapter = Adapter(hidden, rank, dtype)
        self.index, self.recorder = index, recorder
        self.inside: bool | None = None  # None: no checkpoint here; else use_reentrant for the inner checkpoint

    def body(self, x: torch.Tensor) -> torch.Tensor:
        self.recorder.record(self.index, x)
        return x + self.w_out(torch.relu(self.w_in(x))) + self.adapter(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inside is not None and torch.is_grad_enabled():
            return checkpoint(self.body, x, use_reentrant=self.inside)
        return self.body(x)


class Decoder(nn.Module):
    """The layer stack and a frozen head. `outside` checkpoints each FSDP-wrapped layer from the loop, like
    transformers < 4.52's `self._gradient_checkpointing_func(decoder_layer.__call__, ...)`."""

    def __init__(self, layers: int, hidden: int, rank: int, dtype: torch.dtype, recorder: Recorder):
        super().__init__()
        self.layers = nn.ModuleList(Block(i, hidden, rank, dtype, recorder) for i in range(layers))
        self.head = nn.Linear(hidden, hidden, bias=False, dtype=dtype)
        self.recorder = recorder
        self.outside: bool | None = None  # None: no checkpoint in the loop; else use_reentrant

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        for i, unit in enumerate(self.layers):
            if self.outside is not None:
                h = checkpoint(self._through(i, unit), h, use_reentrant=self.outside)
            else:
                h = unit(h)
            if i == 0:
                h = Mark.apply(h, self.recorder.probe)
        return self.head(h).float().pow(2).mean()

    def _through(self, i: int, unit: nn.Module):
        def run(x: torch.Tensor) -> torch.Tensor:
            self.recorder.record(i, x)  # for reentrant: the recompute's detached input
            return unit(x)

        return run


def build(args: argparse.Namespace, where: str, reentrant: bool, frozen: bool, recorder: Recorder) -> nn.Module:
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from torch.distributed.fsdp import ShardingStrategy
    from torch.distributed.fsdp.wrap import ModuleWrapPolicy

    torch.manual_seed(0)  # same weights on both ranks, so no sync_module_states broadcast is needed
    model = Decoder(args.layers, args.hidden, args.rank, getattr(torch, args.dtype), recorder)
    for name, p in model.named_parameters():
        # The adapters train; the decoder weights and the head are frozen unless this is the trainable control.
        p.requires_grad_(".adapter." in name or (not frozen and ".w_" in name))
    for block in model.layers:
        block.inside = reentrant if where == "inside" else None
    model.outside = reentrant if where == "outside" else None
    # Adapter units of their own (peft's fsdp_auto_wrap_policy) leave the Block unit's flat parameter frozen. No backward
    # prefetch: it would gather the bottom unit's parameters before the probe in some variants and not in others, and the
    # live-bytes column should differ by activations only (the count of held inputs does not depend on it).
    return FSDP(
        model,
        sharding_strategy=ShardingStrategy.FULL_SHARD,
        auto_wrap_policy=ModuleWrapPolicy({Block, Adapter}),
        use_orig_params=True,
        backward_prefetch=None,
        device_id=torch.device("cpu"),
    )


def live_at_probe(trace: str) -> int | None:
    """Bytes allocated since the profiler started and still live when the probe ran (sum of the [memory] deltas)."""
    with open(trace) as f:
        events = json.load(f)["traceEvents"]
    marks = [float(e["ts"]) for e in events if e.get("name") == PROBE and e.get("ph") == "X"]
    if not marks:
        return None
    mem = sorted(
        (float(e["ts"]), int(e["args"].get("Bytes", 0)))
        for e in events
        if e.get("name") == "[memory]" and e.get("args", {}).get("Device Type", 0) == 0
    )
    return sum(b for ts, b in mem if ts <= marks[0])


@contextlib.contextmanager
def quiet_stderr():
    """Kineto writes a line to file descriptor 2 at every profiler start and stop, whatever its log level."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def step(args: argparse.Namespace, variant: tuple, tmp: str) -> dict:
    """One forward and backward of a fresh model, profiled on rank 0; the probe's findings and the live bytes."""
    label, where, reentrant, frozen = variant
    recorder = Recorder(args.layers)
    model = build(args, where, reentrant, frozen, recorder)
    g = torch.Generator().manual_seed(1 + dist.get_rank())
    # requires_grad on the input: what enable_input_require_grads does for reentrant checkpointing of a frozen embedding
    x = torch.randn(args.tokens, args.hidden, generator=g, dtype=getattr(torch, args.dtype)).requires_grad_()
    rank0 = dist.get_rank() == 0
    prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) if rank0 else None
    if prof:
        with quiet_stderr():
            prof.start()
    model(x).backward()
    if prof:
        with quiet_stderr():
            prof.stop()
    after = len(recorder.alive(range(1, args.layers)))  # after _finalize_params dropped the hook handles
    out = {"label": label, **(recorder.found or {}), "after": after}
    if prof:
        trace = os.path.join(tmp, f"{where}_{reentrant}_{frozen}.json")
        prof.export_chrome_trace(trace)
        out["live_bytes"] = live_at_probe(trace)
    return out


def worker(rank: int, world: int, port: int, args: argparse.Namespace, result: str) -> None:
    # FSDP1's deprecation notice and the like, once per rank and variant, say nothing about what is measured.
    warnings.filterwarnings("ignore")
    os.environ.update(MASTER_ADDR="localhost", MASTER_PORT=str(port))
    torch.set_num_threads(1)  # two ranks on a small shared machine
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rows = [step(args, v, tmp) for v in VARIANTS]
        Path(f"{result}.{rank}").write_text(json.dumps(rows))
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def table(args: argparse.Namespace, rows: list[dict], other: list[dict]) -> str:
    elem = torch.finfo(getattr(torch, args.dtype)).bits // 8
    one = args.tokens * args.hidden * elem  # one layer input (a checkpoint) or its gradient
    formula = 2 * (args.layers - 1) * one
    base = next((r.get("live_bytes") for r in rows if r["label"].startswith("inside")), None)
    lines = [
        f"{args.layers} layers, {args.tokens} tokens x {args.hidden} hidden per rank, {args.dtype}; rank 0 at the bottom layer's backward",
        f"formula 2 x (L - 1) x tokens x hidden x {elem} B = {formula / MIB:.2f} MiB  (one layer input: {one / MIB:.2f} MiB)",
        "",
        f"{'variant':38s} {'inputs alive':>12s} {'with .grad':>10s} {'held MiB':>9s} {'/formula':>8s} {'extra MiB':>9s} "
        f"{'live MiB':>9s} {'vs inside':>9s} {'after bwd':>9s}",
    ]
    for r in rows:
        live = r.get("live_bytes")
        delta = f"{(live - base) / MIB:+9.2f}" if live is not None and base is not None else f"{'-':>9s}"
        lines.append(
            f"{r['label']:38s} {r.get('alive', 0):12d} {r.get('with_grad', 0):10d} {r.get('held_bytes', 0) / MIB:9.2f} "
            f"{r.get('held_bytes', 0) / formula:8.2f} {r.get('extra_bytes', 0) / MIB:9.2f} "
            f"{(live or 0) / MIB:9.2f} {delta} {r['after']:9d}"
        )
    keys = ("alive", "with_grad", "held_bytes", "after")
    same = all(all(a.get(k) == b.get(k) for k in keys) for a, b in zip(rows, other, strict=True))
    lines += ["", f"rank 1: {'the same counts and held bytes' if same else 'DIFFERENT counts: ' + json.dumps(other)}"]
    lines += [
        "",
        "inputs alive / with .grad: the tensors the checkpointed functions of layers 1..L-1 were called with (for reentrant",
        "  checkpointing, the recompute's detached inputs) still alive just before the bottom layer's backward, and those holding",
        "  a .grad; held MiB: their distinct storages; extra MiB: less the gradient now flowing into the bottom layer (which",
        "  is one of those .grads under reentrant checkpointing and is alive in every variant);",
        "live MiB: torch.profiler's live CPU bytes allocated since the step began, at the same moment; vs inside: minus the",
        "  inside-the-unit variant; after bwd: inputs still alive once backward() returned (FSDP's _finalize_params removed",
        "  the hook handles). The trainable control's live bytes also hold the decoder weights' gradients.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], epilog="example: .venv/bin/python bench/fsdp_retention.py --layers 8 --write"
    )
    parser.add_argument("--layers", type=int, default=8, help="decoder layers L (default 8)")
    parser.add_argument("--tokens", type=int, default=2048, help="tokens per rank (batch x sequence; default 2048)")
    parser.add_argument("--hidden", type=int, default=256, help="hidden size (default 256)")
    parser.add_argument("--rank", type=int, default=8, help="adapter rank (default 8)")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32", help="weights and activations (default float32)")
    parser.add_argument("--write", action="store_true", help=f"also write the output to {OUT.relative_to(ROOT)}")
    args = parser.parse_args()
    if args.layers < 2:
        parser.error("--layers must be at least 2")
    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")  # gloo's connection chatter
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = os.path.join(tmp, "rows.json")
        mp.spawn(worker, args=(2, free_port(), args, result), nprocs=2, join=True)
        rows, other = (json.loads(Path(f"{result}.{r}").read_text()) for r in (0, 1))
    text = table(args, rows, other)
    print(text)
    if args.write:
        header = (
            f"command: .venv/bin/python bench/fsdp_retention.py {' '.join(sys.argv[1:])}\n"
            f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; torch {torch.__version__}; machine: {platform.machine()}, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}; 2 gloo ranks; {time.perf_counter() - start:.0f} s\n\n"
        )
        OUT.write_text(header + text + "\n", encoding="utf-8")
        print(f"written: {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
