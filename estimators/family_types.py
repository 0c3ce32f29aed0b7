"""The parts the family tables (estimators/families.py, estimators/families_moe.py) are written in: `Family`, one
row per transformers `model_type`; `Flag`, a config.json key that sets ModelSpec fields; the constructors a row is
written with and the switch sets several families share. A module of its own so that both tables use them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Flag:
    """A config.json key that sets ModelSpec fields: `on` when its value is truthy (a dropout > 0, a True switch),
    `off` otherwise. `written` is what hf_config_from_spec writes for on / off (0.1 for a dropout probability:
    any p > 0 keeps the same masks)."""

    on: dict
    off: dict
    written: tuple = (True, False)


def switch(field_: str, on=True, off=False) -> Flag:
    return Flag({field_: on}, {field_: off})


def dropout(field_: str) -> Flag:
    return Flag({field_: True}, {field_: False}, (0.1, 0.0))


ALL_BIASES = Flag({"qkv_bias": True, "o_bias": True, "mlp_bias": True}, {"qkv_bias": False, "o_bias": False, "mlp_bias": False})


@dataclass(frozen=True)
class Family:
    arch: str  # the *ForCausalLM class transformers builds for the model_type
    switches: dict  # ModelSpec fields the modeling code fixes for every model of the family
    defaults: dict  # transformers 5.24 config-class defaults for keys a config.json may omit
    kind: str = "dense"  # dense | moe | gpt2 (GPT-2's n_embd / n_layer / n_head keys)
    flags: dict = field(default_factory=dict)  # config key -> Flag
    required: tuple = ()  # config keys this family needs, when not its kind's (Falcon has no intermediate_size)
    act_key: str = ""  # non-gated MLPs: the config key naming the activation (ModelSpec.mlp_act)


def family(
    arch: str, switches: dict | None = None, kind: str = "dense", flags: dict | None = None, required: tuple = (), act_key: str = "", **defaults
) -> Family:
    return Family(arch, switches or {}, defaults, kind, flags or {}, required, act_key)


# Non-gated MLP, LayerNorm with bias: the GPT-2 / GPT-NeoX layout.
LN_FC = {"norm": "layer", "gated_mlp": False}
FUSED_LN_FC = {**LN_FC, "fused_qkv": True}
