"""Issue 14 §3: the wizard's what-if knobs explain themselves in the wizard's language (their tooltips were English
for Korean users); flags keep the English help."""

from advisor.knobs import KNOBS
from advisor.tui.state import WHATIF_KNOBS

BY_FIELD = {k.field: k for k in KNOBS}


def test_every_what_if_knob_has_korean_help():
    for field in WHATIF_KNOBS:
        ko = BY_FIELD[field].text("ko")
        assert ko != BY_FIELD[field].help and any("\uac00" <= ch <= "\ud7a3" for ch in ko), field


def test_english_help_is_the_flag_help():
    assert BY_FIELD["lora_r"].text("en") == BY_FIELD["lora_r"].help == "LoRA rank"
