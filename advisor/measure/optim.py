"""The optimizer a measured step runs (`make_optimizer`: the HF Trainer's choice for `Setup.optimizer`), and
bitsandbytes optimizers, emulated: their kernels take raw device pointers, which fake tensors do not have.

The emulation allocates exactly the state bitsandbytes allocates (`Optimizer2State.init_state` /
`Optimizer1State.init_state`, bitsandbytes 0.50) and updates the parameters in place, as the fused kernels do
(no scratch):
  8-bit AdamW (block-wise): uint8 state1 and state2 like the parameter, an fp32 absmax per 256 values for each,
    and the shared 256-entry quantisation maps; tensors under `min_8bit_size` (4096) elements keep fp32 states.
  paged 8-bit AdamW: the same states in CUDA managed (paged) memory, which the caching allocator never sees, so
    they are not counted in allocated memory (the estimate reports them separately).
  Lion (32-bit): one fp32 state.
"""

from __future__ import annotations

import torch

from estimators.setup import Setup

MIN_8BIT_SIZE = 4096
BLOCK = 256


class EmulatedBnbOptimizer(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-5, kind: str = "adamw8bit"):
        super().__init__(params, {"lr": lr})
        self.kind = kind
        self.qmaps: tuple[torch.Tensor, torch.Tensor] | None = None  # made on the first 8-bit state, then shared

    def _init_state(self, p: torch.Tensor, state: dict) -> None:
        paged = self.kind == "paged_adamw8bit"
        device = "meta" if paged else p.device
        if self.kind == "lion":
            state["state1"] = torch.zeros_like(p, dtype=torch.float32)
            return
        if p.numel() < MIN_8BIT_SIZE:
            state["state1"] = torch.zeros_like(p, dtype=torch.float32, device=device)
            state["state2"] = torch.zeros_like(p, dtype=torch.float32, device=device)
            return
        if self.qmaps is None:
            self.qmaps = (torch.zeros(256, dtype=torch.float32, device=p.device), torch.zeros(256, dtype=torch.float32, device=p.device))
        blocks = -(-p.numel() // BLOCK)
        state["state1"] = torch.zeros_like(p, dtype=torch.uint8, device=device)
        state["state2"] = torch.zeros_like(p, dtype=torch.uint8, device=device)
        state["absmax1"] = torch.zeros(blocks, dtype=torch.float32, device=device)
        state["absmax2"] = torch.zeros(blocks, dtype=torch.float32, device=device)
        state["qmap1"], state["qmap2"] = self.qmaps

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    self._init_state(p, state)
                p.add_(p.grad, alpha=-group["lr"])  # in place, as the fused kernel: no scratch
        return None


def make_optimizer(model, setup: Setup):
    """The HF Trainer's optimizer for `Setup.optimizer` (weight decay as the Trainer groups it is memory-neutral)."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = setup.optimizer
    if opt == "adamw":  # transformers >= 5 with torch >= 2.8: adamw_torch_fused
        return torch.optim.AdamW(params, lr=1e-5, fused=True)
    if opt == "sgd":
        return torch.optim.SGD(params, lr=1e-5)
    if opt == "sgd_momentum":
        return torch.optim.SGD(params, lr=1e-5, momentum=0.9)
    if opt == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(params, lr=1e-5, scale_parameter=False, relative_step=False)
    if opt in ("adamw8bit", "paged_adamw8bit", "lion") and params and params[0].is_cuda:
        import bitsandbytes as bnb

        cls = {"adamw8bit": bnb.optim.AdamW8bit, "paged_adamw8bit": bnb.optim.PagedAdamW8bit, "lion": bnb.optim.Lion}[opt]
        return cls(params, lr=1e-5)
    if opt in ("adamw8bit", "paged_adamw8bit", "lion"):
        return EmulatedBnbOptimizer(params, lr=1e-5, kind=opt)
    raise ValueError(f"advisor measure cannot run optimizer '{opt}' yet")
