"""Issue 14 §5: advise's sizing search and `advisor fit` rank the memory-saving knobs by one table
(estimators/fit_options.py KNOB_WEIGHTS): cheaper in speed and quality first, paged 8-bit states after checkpointing."""

from advisor.advice.fitting import knob_variants
from estimators.catalog import resolve_model
from estimators.fit_options import KNOB_WEIGHTS, fix_options, knob_weight
from estimators.setup import Setup


def test_advise_tries_the_knobs_in_fits_order():
    for base in (Setup(adaptation="full"), Setup(adaptation="lora"), Setup(adaptation="qlora", gpus=2, parallel="ddp")):
        variants = knob_variants(base)
        unsharded = [v for v in variants if v.parallel == base.parallel]
        weights = [knob_weight(v, base.with_(grad_ckpt=False)) for v in unsharded]
        assert weights == sorted(weights), base.adaptation


def test_fit_prices_the_same_knobs_with_the_same_weights():
    options = {o.key: o.weight for dim in fix_options(resolve_model("7b").spec, Setup(adaptation="full")) for o in dim if o.key}
    assert {k: options[k] for k in KNOB_WEIGHTS} == KNOB_WEIGHTS
    assert KNOB_WEIGHTS["grad_ckpt"] < KNOB_WEIGHTS["paged_adamw8bit"]
