"""GaLore (`--galore`, HF optim="galore_adamw") and its layer-wise variant (`--galore-layerwise`), priced on top of the
SFT phases like the other options: rows of rules/stacks.toml whose pricers estimators/option_terms.py PRICES maps.
Here too `one_gradient_at_a_time`, the gradients of a step taken inside backward, which layer-wise GaLore and
option_terms' optim_in_bwd share (option_terms imports this module for PRICES, so that one's home is here).
"""

from __future__ import annotations

from . import terms as t
from .model import ModelSpec
from .setup import Setup
from .stack_change import Change

GALORE_RANK = 128  # transformers 5.24 trainer_optimizer.py _get_galore_optimizer: `"rank": int(optim_args.pop("rank", 128))`


def galore_matrices(m: ModelSpec) -> list[tuple[int, int, int]]:
    """(rows, cols, count) of the matrices GaLore projects with `optim_target_modules="all-linear"`: every nn.Linear
    weight (`_setup_low_rank_optimizer` collects each nn.Linear's `.weight`), the decoder's and the untied LM head."""
    out = [(lin.out_features, lin.in_features, lin.count * m.num_layers) for lin in t.layer_linears(m) if lin.module]
    if not m.tie_embeddings:
        out.append((m.vocab_size, m.hidden_size, 1))
    return out


def galore_states(m: ModelSpec, setup: Setup) -> int:
    """GaLoreAdamW's state: per projected m x n matrix the projector (`ortho_matrix`: Vh[:r] of r x n when m >= n,
    else U[:, :r] of m x r, cast back to the weight dtype) and exp_avg / exp_avg_sq of the r-rank gradient
    (`torch.zeros_like(grad)` after `project`: m x r or r x n); every other parameter gets AdamW's two full states.
    Read in galore-torch 1.0 galore_torch/adamw.py:93-103 and galore_projector.py:12-40, 71-98."""
    p, r = t.trainable_bytes_per_param(setup), GALORE_RANK
    projected, total = 0, 0
    for rows, cols, count in galore_matrices(m):
        rank = min(r, rows, cols)
        total += count * (2 * rank * max(rows, cols) + rank * min(rows, cols)) * p
        projected += count * rows * cols
    rest = max(0, t.trainable_params(m, setup) - projected)
    return total + 2 * rest * p


def galore_step_scratch(m: ModelSpec, setup: Setup) -> int:
    """The step's largest working set, at a projector update (the first step and every update_proj_gap = 200):
    `matrix = module_params.data.float()` of the gradient and `torch.linalg.svd(matrix, full_matrices=False)`'s U
    (m x k) and Vh (k x n) in fp32 for the largest projected matrix; besides, every step makes the projected
    gradient, `denom`, `norm_grad` (r-rank) and `project_back`'s full-size update in the weight dtype."""
    p, r = t.trainable_bytes_per_param(setup), GALORE_RANK
    best = 0
    for rows, cols, _ in galore_matrices(m):
        k = min(rows, cols)
        svd = 4 * rows * cols + 4 * (rows * k + k * cols)
        step = 3 * min(r, k) * max(rows, cols) * p + rows * cols * p
        best = max(best, svd, step)
    return best


def galore_layerwise(m: ModelSpec, setup: Setup) -> list:
    """Layer-wise GaLore (`optim="galore_adamw_layerwise"`): one GaLoreAdamW per parameter, stepped by a post-accumulate-grad
    hook that then zeroes the gradient (`optimizer_dict[param].step(); optimizer_dict[param].zero_grad()`), so at most one
    parameter's gradient exists and each step's working set (galore_step_scratch, the SVD at a projector update) falls
    inside backward; LayerWiseDummyOptimizer's own step does nothing. On top of the `galore` row's states.
    Read in transformers 5.24.0 trainer_optimizer.py:164-186 (_setup_low_rank_optimizer, is_layerwise), which refuses
    gradient accumulation and DDP with it."""
    if not setup.galore or setup.adaptation != "full":
        return []
    return [
        one_gradient_at_a_time(m, setup),
        Change(
            "add",
            "GaLore SVD scratch",
            galore_step_scratch(m, setup),
            "fp32 gradient copy and its SVD factors (largest matrix), stepped in backward",
            phases=("backward (top layer)", "backward (layers)"),
        ),
    ]


def galore(m: ModelSpec, setup: Setup) -> list:
    """GaLore (`optim="galore_adamw"`, `optim_target_modules="all-linear"`, rank 128): full fine-tuning whose AdamW
    states for the projected matrices are rank-128 (galore_states), with an SVD every 200 steps (galore_step_scratch).
    Gradients stay full size (the layer-wise variant, which frees them in backward, is not priced)."""
    if setup.adaptation != "full" or setup.optimizer != "adamw":
        return []
    return [
        Change("set", "optimizer states", galore_states(m, setup), f"GaLore AdamW: rank-{GALORE_RANK} states and projectors"),
        Change(
            "add",
            "GaLore SVD scratch",
            galore_step_scratch(m, setup),
            "fp32 gradient copy and its SVD factors (largest matrix)",
            phases=("optimizer step",),
        ),
    ]


# ------------------------------------------------------------------------------------------------ a step inside backward
def one_gradient_at_a_time(m: ModelSpec, setup: Setup) -> Change:
    """A step inside backward (optim_in_bwd, galore_layerwise) frees each gradient once it is stepped: the gradients
    term is the largest trainable parameter's."""
    largest = largest_trainable(m, setup) * t.trainable_bytes_per_param(setup)
    return Change("set", "gradients", largest, "one parameter's gradient at a time (stepped in backward)")


def largest_trainable(m: ModelSpec, setup: Setup) -> int:
    if setup.adaptation == "full":
        return max(m.vocab_size * m.hidden_size, max((x.in_features * x.out_features for x in t.layer_linears(m)), default=0))
    return max((rows * cols for lin in t.lora_linears(m, setup) for rows, cols in t.lora_factors(m, lin, setup)), default=0)
