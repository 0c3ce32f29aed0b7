"""Property tests over the whole flag space: the estimator never crashes on valid input, never returns a
negative or inconsistent figure, and more batch, sequence or rank never needs less memory."""

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from estimators import Setup, estimate
from estimators.catalog import catalog
from estimators.checks import encoder_problem, lora_target_problem
from estimators.setup import ADAPTATIONS, ATTENTIONS, LORA_PRESETS, OPTIMIZERS, PRECISIONS, QUANT_TYPES

MODELS = sorted(catalog())

setups = (
    st.fixed_dictionaries(
        dict(
            adaptation=st.sampled_from(ADAPTATIONS),
            precision=st.sampled_from(PRECISIONS),
            optimizer=st.sampled_from(OPTIMIZERS),
            micro_batch=st.integers(1, 64),
            seq_len=st.integers(1, 32768),
            grad_ckpt=st.sampled_from([None, True, False]),
            attention=st.sampled_from(ATTENTIONS),
            lora_r=st.integers(1, 512),
            lora_targets=st.sampled_from(sorted(LORA_PRESETS) + ["q_proj,v_proj", "down_proj"]),
            lora_dropout=st.sampled_from([0.0, 0.05, 0.1]),
            quant_type=st.sampled_from(QUANT_TYPES),
            double_quant=st.booleans(),
            kbit_upcast=st.booleans(),
        )
    )
    .filter(lambda d: not (d["adaptation"] == "qlora" and d["precision"] == "fp32"))
    .map(lambda d: Setup(**d))
)  # refused when built

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])


@SETTINGS
@given(model=st.sampled_from(MODELS), setup=setups)
def test_never_crashes_and_is_consistent(model, setup):
    assume(lora_target_problem(catalog()[model], setup) is None)  # module names the model has (gpt2: no q_proj)
    assume(encoder_problem(catalog()[model], setup) is None)  # what an encoder cannot run (QLoRA on RoBERTa)
    est = estimate(catalog()[model], setup)
    assert est.peak_allocated > 0
    assert all(term.bytes >= 0 for phase in est.phases.values() for term in phase)
    assert est.peak_allocated == max(sum(t.bytes for t in phase) for phase in est.phases.values())
    assert est.peak_allocated <= est.peak_reserved < est.device_bytes
    assert sum(est.categories().values()) == est.peak_allocated


@SETTINGS
@given(model=st.sampled_from(MODELS), setup=setups, field=st.sampled_from(["micro_batch", "seq_len", "lora_r"]), more=st.integers(1, 64))
def test_more_batch_sequence_or_rank_never_needs_less(model, setup, field, more):
    spec = catalog()[model]
    assume(lora_target_problem(spec, setup) is None)
    assume(encoder_problem(spec, setup) is None)
    base = estimate(spec, setup).peak_allocated
    bigger = estimate(spec, setup.with_(**{field: getattr(setup, field) + more})).peak_allocated
    assert bigger >= base
