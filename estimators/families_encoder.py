"""The encoder rows of the family table (merged into estimators/families.py FAMILIES): BERT and RoBERTa fine-tuned
for sequence classification, read from transformers 5.24's modeling_bert.py / modeling_roberta.py and their config
classes. One row shape for both: learned absolute positions and token types summed into the embedding, a LayerNorm
after it, post-LayerNorm blocks (attention.self.{query,key,value}, attention.output.dense, intermediate.dense,
output.dense, every linear with a bias), a one-op GELU MLP, dropout after the embedding, on the attention
probabilities and after each block, and a classification head on the first token (ModelSpec.encoder)."""

from __future__ import annotations

from .family_types import LN_FC, Family, Flag, dropout, family

# The embedding LayerNorm is the one norm outside the layers (final_norm: the same 2h parameters at the other end).
# No LM head shares the embedding: tie_embeddings is off whatever tie_word_embeddings says (terms.embedding_gradient).
_ENCODER_SWITCHES = {
    **LN_FC,
    "qkv_bias": True,
    "o_bias": True,
    "mlp_bias": True,
    "learned_positions": True,
    "encoder": True,
    "tie_embeddings": False,
}
# hidden_dropout_prob drops after the embedding and after attention and MLP; attention_probs_dropout_prob the probabilities
_ENCODER_FLAGS = {
    "hidden_dropout_prob": Flag({"resid_dropout": True, "embed_dropout": True}, {"resid_dropout": False, "embed_dropout": False}, (0.1, 0.0)),
    "attention_probs_dropout_prob": dropout("attn_dropout"),
}


def _encoder(arch: str) -> Family:
    """One encoder row: the switches and flags above, the config class's defaults (BertConfig and RobertaConfig share them)."""
    return family(
        arch,
        _ENCODER_SWITCHES,
        flags=_ENCODER_FLAGS,
        act_key="hidden_act",
        num_key_value_heads=None,
        head_dim=None,
        max_position_embeddings=512,
        type_vocab_size=2,
        tie_word_embeddings=True,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        hidden_act="gelu",
    )


ENCODER_FAMILIES: dict[str, Family] = {
    # BERT (bert-base/large-uncased, ...): BertForSequenceClassification, the pooler's dense + tanh on [CLS]
    "bert": _encoder("BertForSequenceClassification"),
    # RoBERTa: RobertaForSequenceClassification (no pooler; RobertaClassificationHead's dense + out_proj); checkpoints
    # have 514 positions (two offset by the padding index) and one token type, both read from their config.json
    "roberta": _encoder("RobertaForSequenceClassification"),
}
