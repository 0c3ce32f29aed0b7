"""A ModelSpec for a config.json whose model_type has no table in estimators/families.py: transformers builds the
model on the meta device (no weights, no memory) and its modules are counted.

Counts are exact: every parameter is assigned to one ParamCounts field (embeddings, output head, decoder-layer
linear weights and biases, raw 2-D/3-D parameters such as stacked MoE experts, and the rest as norms). The
per-layer linear shapes come from the decoder layer whose set of shapes is the most common one (hybrid models
mix layer kinds; the others are priced as if they were that one). The architecture switches the activation terms
read (gated MLP, norm kind, fused qkv, ...) are inferred from the modules and the config; the estimate says it
came from a meta-device build.

Only the resolver calls this (estimators.catalog.resolve_model, for an unknown model_type), and only when torch
and transformers are installed: the estimate itself stays pure Python.
"""

from __future__ import annotations

from collections import Counter

import torch

from estimators.errors import EstimateError
from estimators.model import ModelSpec

# Module-name fragments that put a linear in the attention block (the rest of a layer is MLP).
_ATTENTION_WORDS = ("attn", "attention", "q_proj", "k_proj", "v_proj", "o_proj", "query", "key", "value")
_ROUTER_WORDS = ("router", "gate")


def _is_linear(mod) -> bool:
    from transformers.pytorch_utils import Conv1D

    return isinstance(mod, (torch.nn.Linear, Conv1D))


def _linear_shape(mod) -> tuple[int, int]:
    """(in, out): nn.Linear stores [out, in], GPT-2's Conv1D [in, out]."""
    w = mod.weight
    return (w.shape[1], w.shape[0]) if isinstance(mod, torch.nn.Linear) else (w.shape[0], w.shape[1])


def _decoder_layers(model, n_layers: int | None) -> torch.nn.ModuleList:
    """The longest nn.ModuleList of the backbone (its length should be num_hidden_layers)."""
    lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) > 0]
    if not lists:
        raise EstimateError(f"{type(model).__name__}: no list of decoder layers found")
    if n_layers:
        exact = [m for m in lists if len(m) == n_layers]
        if exact:
            return max(exact, key=lambda m: sum(p.numel() for p in m.parameters()))
    return max(lists, key=len)


def _group(path: str, out_features: int, experts: int) -> str:
    low = path.lower()
    leaf = [x for x in low.split(".") if x != "weight"][-1]
    if experts and out_features in (experts, 1) and any(w in leaf for w in _ROUTER_WORDS):
        return "router"  # the router, or Qwen2-MoE's one-output shared_expert_gate
    if any(w in low for w in _ATTENTION_WORDS):
        return "attention"
    return "mlp"


def _norm_params(module) -> set[int]:
    """ids of the parameters of norm modules (some are 2-D: Cohere's per-head q/k norms)."""
    return {id(p) for m in module.modules() if "norm" in type(m).__name__.lower() for p in m.parameters(recurse=False)}


def _layer_linears(layer, experts: int) -> list[dict]:
    """Every linear-like weight of one decoder layer as estimators.params.Linear fields."""
    found, in_module = [], _norm_params(layer)
    for path, mod in layer.named_modules():
        if _is_linear(mod):
            fin, fout = _linear_shape(mod)
            found.append(
                {
                    "name": path.rsplit(".", 1)[-1],
                    "in_features": int(fin),
                    "out_features": int(fout),
                    "bias": mod.bias is not None,
                    "count": 1,
                    "group": _group(path, fout, experts),
                    "module": True,
                }
            )
            in_module.update(id(p) for p in mod.parameters(recurse=False))
    for path, p in layer.named_parameters():
        if id(p) in in_module or p.dim() < 2:
            continue
        name = path.rsplit(".", 1)[-1]
        if name == "weight":  # a module holding a raw weight (a MoE router): name it by the module
            name = path.rsplit(".", 2)[-2]
        if p.dim() == 3:  # transformers 5 stacked experts: [experts, out, in], applied with F.linear
            found.append(
                {
                    "name": name,
                    "in_features": int(p.shape[2]),
                    "out_features": int(p.shape[1]),
                    "bias": False,
                    "count": int(p.shape[0]),
                    "group": "expert",
                    "module": False,
                }
            )
        else:
            out, fin = int(p.shape[0]), int(p.numel() // p.shape[0])
            found.append(
                {
                    "name": name,
                    "in_features": fin,
                    "out_features": out,
                    "bias": False,
                    "count": 1,
                    "group": _group(path, out, experts),
                    "module": False,
                }
            )
    return found


def _leaf(model, module) -> str:
    """The attribute name `module` has in `model` ("embed_in" for GPT-NeoX's model.gpt_neox.embed_in)."""
    return next(path for path, m in model.named_modules() if m is module).rsplit(".", 1)[-1]


def _signature(linears: list[dict]) -> tuple:
    return tuple(sorted((x["name"], x["in_features"], x["out_features"], x["count"]) for x in linears))


def _first(config, *names, default=None):
    for n in names:
        v = getattr(config, n, None)
        if v is not None:
            return v
    return default


def census_spec(config: dict, name: str, where: str) -> ModelSpec:
    """The ModelSpec (with its exact counts in `extra["census"]`) of the model transformers builds from `config`."""
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM

    mt = config.get("model_type")
    kwargs = {k: v for k, v in config.items() if k not in ("model_type", "architectures", "auto_map")}
    try:
        hf_config = AutoConfig.for_model(mt, **kwargs)
    except (ValueError, KeyError) as e:
        raise EstimateError(
            f"{where}: transformers {transformers.__version__} does not know model_type '{mt}' either ({str(e).splitlines()[0][:120]})"
        ) from None
    hf_config = getattr(hf_config, "get_text_config", lambda: hf_config)()
    try:
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(hf_config)
    except Exception as e:  # noqa: BLE001 - any failure to build is one line for the user
        raise EstimateError(
            f"{where}: transformers could not build a causal LM for model_type '{mt}' ({type(e).__name__}: {str(e).splitlines()[0][:160]})"
        ) from None
    return _spec_from_model(model, hf_config, config, name, where)


def _spec_from_model(model, hf_config, config: dict, name: str, where: str) -> ModelSpec:
    n_layers = _first(hf_config, "num_hidden_layers", "n_layer", "num_layers")
    experts = int(_first(hf_config, "num_local_experts", "num_experts", "n_routed_experts", default=0) or 0)
    top_k = int(_first(hf_config, "num_experts_per_tok", "moe_top_k", "top_k", default=0) or 0)
    layers = _decoder_layers(model, n_layers)
    per_layer = [_layer_linears(layer, experts) for layer in layers]
    common = Counter(_signature(x) for x in per_layer).most_common(1)[0][0]
    linears = next(x for x in per_layer if _signature(x) == common)

    emb = model.get_input_embeddings()
    head = model.get_output_embeddings()
    tied = head is not None and head.weight is emb.weight
    seen: set[int] = set()

    def take(params) -> int:
        n = 0
        for p in params:
            if id(p) not in seen:
                seen.add(id(p))
                n += p.numel()
        return n

    embedding = take([emb.weight])
    embedding += take([m.weight for m in model.modules() if isinstance(m, torch.nn.Embedding) and m is not emb])
    lm_head = take(head.parameters()) if head is not None else 0
    linear = bias = raw = 0
    for layer in layers:
        for mod in layer.modules():
            if _is_linear(mod):
                linear += take([mod.weight])
                bias += take([mod.bias]) if mod.bias is not None else 0
        norms = _norm_params(layer)
        raw += take([p for p in layer.parameters() if p.dim() >= 2 and id(p) not in norms])
    total = sum(p.numel() for p in model.parameters())
    norm = total - embedding - lm_head - linear - bias - raw  # norms, and any other small parameters
    active = total
    if experts and top_k:
        idle = sum(x["in_features"] * x["out_features"] * x["count"] for x in linears if x["group"] == "expert")
        active = total - len(layers) * idle * (experts - top_k) // experts

    h = int(_first(hf_config, "hidden_size", "n_embd", "d_model", default=emb.weight.shape[1]))
    heads = int(_first(hf_config, "num_attention_heads", "n_head", default=1))
    head_dim = int(_first(hf_config, "head_dim", default=0) or 0)
    if head_dim * heads == h:
        head_dim = 0
    mlp_in = [x for x in linears if x["group"] in ("mlp", "expert") and x["in_features"] != h]
    inter = max((x["in_features"] for x in mlp_in), default=int(_first(hf_config, "intermediate_size", default=4 * h)))
    mlp_from_h = [x for x in linears if x["group"] in ("mlp", "expert") and x["in_features"] == h]
    expert_in = [x["in_features"] for x in linears if x["group"] == "expert" and x["in_features"] != h]
    fused_gate_up = not experts and any(x["out_features"] == 2 * inter and "gate" in x["name"] for x in mlp_from_h)
    gated = len(mlp_from_h) >= 2 or any(x["out_features"] == 2 * inter for x in mlp_from_h)
    layer0 = layers[0]
    norm_mods = [m for m in layer0.children() if "norm" in type(m).__name__.lower()]
    norm_kinds = {type(m).__name__ for m in layer0.modules() if "norm" in type(m).__name__.lower()}
    n_params = len(list(norm_mods[0].parameters())) if norm_mods else 1
    norm_kind = {0: "none", 1: "rms"}.get(n_params, "layer")  # weight only is priced as RMSNorm
    heads = int(_first(hf_config, "num_attention_heads", "n_head", default=1))
    kv = int(_first(hf_config, "num_key_value_heads", "num_kv_heads", default=heads) or heads)
    hd = int(_first(hf_config, "head_dim", default=0) or 0) or h // max(1, heads)
    attn = [x for x in linears if x["group"] == "attention"]
    fused_qkv = any(x["in_features"] == h and x["out_features"] == (heads + 2 * kv) * hd for x in attn)
    biases = {g: any(x["bias"] for x in linears if x["group"] == g) for g in ("attention", "mlp")}
    qk = [m for n, m in layer0.named_modules() if n.rsplit(".", 1)[-1] in ("q_norm", "q_layernorm")]
    qk_norm = ""
    if qk:
        w = next(iter(qk[0].parameters()), None)
        if w is not None:
            qk_norm = (
                "per_head" if w.dim() == 2 or w.numel() == heads * hd and len(list(qk[0].children())) else ("head" if w.numel() == hd else "full")
            )
    window = _first(hf_config, "sliding_window", default=0) or 0
    if getattr(hf_config, "use_sliding_window", True) is False:
        window = 0
    drop = float(_first(hf_config, "resid_pdrop", "residual_dropout", "hidden_dropout", default=0.0) or 0.0)
    embed_drop = float(_first(hf_config, "embd_pdrop", "embedding_dropout", default=0.0) or 0.0)
    act = _first(hf_config, "hidden_act", "activation_function", "activation", default="gelu_new")
    positions = [m for m in model.modules() if isinstance(m, torch.nn.Embedding) and m is not emb]
    census = {
        "counts": {
            "total": total,
            "embedding": embedding,
            "lm_head": lm_head,
            "linear": linear,
            "linear_bias": bias,
            "norm": norm,
            "active": active,
            "raw_linear": raw,
        },
        "linears": linears,
        "layer_kinds": len(set(_signature(x) for x in per_layer)),
        # what modules_to_save's roles are called here (estimators/params.py embedding_modules)
        "names": {role: _leaf(model, mod) for role, mod in (("embed", emb), ("head", head)) if mod is not None},
        "norm_classes": sorted(norm_kinds),
    }
    return ModelSpec(
        name=name,
        model_type=str(config.get("model_type")),
        hidden_size=h,
        intermediate_size=int(inter),
        num_layers=len(layers),
        num_heads=heads,
        num_kv_heads=kv if heads % kv == 0 else heads,
        vocab_size=int(emb.weight.shape[0]),
        head_dim=head_dim,
        max_positions=int(_first(hf_config, "max_position_embeddings", "n_positions", default=4096)),
        tie_embeddings=tied,
        gated_mlp=gated,
        norm=norm_kind,
        norms_per_layer=max(1, len(norm_mods)),
        parallel_block=len(norm_mods) == 1,
        fused_qkv=fused_qkv,
        fused_gate_up=fused_gate_up,
        qkv_bias=biases["attention"],
        o_bias=biases["attention"],
        mlp_bias=biases["mlp"],
        qk_norm=qk_norm,
        learned_positions=bool(positions),
        sliding_window=int(window) if isinstance(window, int) else 0,
        logit_softcap=float(_first(hf_config, "final_logit_softcapping", default=0.0) or 0.0),
        attn_softcap=float(_first(hf_config, "attn_logit_softcapping", default=0.0) or 0.0),
        lm_head_bias=head is not None and getattr(head, "bias", None) is not None,
        resid_dropout=drop > 0,
        embed_dropout=embed_drop > 0,
        mlp_act="gelu_new" if gated else str(act),  # ModelSpec's default: unused by gated MLPs
        num_experts=experts if top_k else 0,
        experts_per_token=top_k if experts else 0,
        moe_intermediate_size=max(expert_in, default=0) if experts and top_k and max(expert_in, default=0) != inter else 0,
        experts_fused=any(not x["module"] and x["group"] == "expert" for x in linears),
        source=where,
        extra={"census": census, "hf_config": dict(config)},
    )
