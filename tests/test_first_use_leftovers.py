"""Issue 13 leftovers: a card sold with two memory sizes is not silently the larger one, and the Korean wizard's
stage line is Korean."""

import pytest

from estimators.errors import EstimateError
from estimators.gpus import find_gpu


def test_a_4060_ti_without_its_size_asks_which_one():
    with pytest.raises(EstimateError, match="which one\\? rtx4060ti-8gb .* or rtx4060ti-16gb"):
        find_gpu("rtx4060ti")
    assert find_gpu("RTX 4060 Ti 8GB").memory_gib < 8 < find_gpu("rtx4060ti-16gb").memory_gib


def test_the_korean_stage_line_is_korean():
    from advisor.tui.plan_calls import make_plan
    from advisor.tui.screens.recommend import advice_renderable

    plan = make_plan({"goal": "chat_format", "data": ["instruction_pairs"], "gpu": "rtx4090", "model": "tiny"})
    ko = "\n".join(part.plain for part in advice_renderable(plan, "ko").renderables if hasattr(part, "plain"))
    en = "\n".join(part.plain for part in advice_renderable(plan, "en").renderables if hasattr(part, "plain"))
    assert "마이크로 배치" in ko and "토큰)" in ko and "(mb " not in ko
    assert "(mb " in en and " tok)" in en
