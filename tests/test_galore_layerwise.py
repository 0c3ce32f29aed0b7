"""`--galore --galore-layerwise` (HF optim="galore_adamw_layerwise"): one GaLoreAdamW per parameter, stepped by its
gradient hook inside backward (estimators/galore_terms.py galore_layerwise). By hand on Llama 2 7B (V 32000, h 4096,
i 11008), the refusals transformers makes, and what the script runs."""

import pytest

from estimators import estimate
from estimators.catalog import resolve_model
from estimators.errors import EstimateError
from estimators.galore_terms import galore_layerwise, galore_step_scratch
from estimators.setup import Setup

L7 = resolve_model("7b").spec
FULL = Setup(adaptation="full", galore=True)
LAYERWISE = FULL.with_(galore_layerwise=True)


def _term(est, phase, name):
    hits = [v for v in est.phases[phase] if v.name == name]
    assert len(hits) == 1, (phase, name, [v.name for v in est.phases[phase]])
    return hits[0].bytes


def test_one_gradient_at_a_time_and_the_svd_inside_backward():
    head = 32000 * 4096 * 2  # the largest trainable matrix (untied lm_head), bf16
    est = estimate(L7, LAYERWISE)
    for phase in ("backward (top layer)", "backward (layers)", "optimizer step"):
        assert _term(est, phase, "gradients") == head
    svd = galore_step_scratch(L7, LAYERWISE)
    assert svd == 4 * 32000 * 4096 + 4 * (32000 * 4096 + 4096 * 4096)  # fp32 copy of the head's gradient, U and Vh
    for phase in ("backward (top layer)", "backward (layers)"):
        assert _term(est, phase, "GaLore SVD scratch") == svd


def test_it_costs_less_than_plain_galore_where_the_gradients_were():
    plain, layerwise = estimate(L7, FULL), estimate(L7, LAYERWISE)
    assert _term(plain, "optimizer step", "gradients") == 2 * 6_738_415_616  # every bf16 gradient at the step
    assert layerwise.peak_allocated < plain.peak_allocated
    assert _term(layerwise, "optimizer step", "optimizer states") == _term(plain, "optimizer step", "optimizer states")


def test_nothing_without_galore_itself():
    assert galore_layerwise(L7, Setup(adaptation="full")) == []


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"galore": False}, "use --galore --galore-layerwise"),
        ({"grad_accum": 4}, "refuses it with gradient accumulation and with DDP"),
        ({"gpus": 2, "parallel": "ddp"}, "refuses it with gradient accumulation and with DDP"),
        ({"stack": "torchtune"}, "--galore is not an option of --stack torchtune"),
    ],
)
def test_refused_as_transformers_refuses_it(changes, message):
    with pytest.raises(EstimateError, match=message):
        LAYERWISE.with_(**changes)


def test_the_script_runs_the_layerwise_optimizer():
    from advisor.scriptgen import readme_words, trl_names

    hyper = {
        "learning_rate": 2e-5,
        "epochs": 1.0,
        "max_steps": -1,
        "warmup_ratio": 0.03,
        "lr_scheduler": "cosine",
        "weight_decay": 0.0,
        "seed": 42,
        "logging_steps": 1,
        "save_steps": 2,
        "beta": 0.1,
    }
    kwargs = trl_names.training(LAYERWISE, hyper, "sft")
    assert (kwargs["optim"], kwargs["optim_target_modules"]) == ("galore_adamw_layerwise", "all-linear")
    assert trl_names.training(FULL, hyper, "sft")["optim"] == "galore_adamw"
    assert "galore_adamw_layerwise: each parameter stepped in backward" in readme_words.optimizer_words(LAYERWISE)


def test_the_estimate_lists_both_rows(advisor_main):
    result = advisor_main("estimate", "--method", "full", "--galore", "--galore-layerwise")
    assert result.returncode == 0, result.stderr
    assert "priced: galore, galore-layerwise" in result.stdout
