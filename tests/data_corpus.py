"""Helpers for the tests/test_data_*.py files: small data files in every format and a tiny BPE tokenizer trained
in-process (no download), saved the way a Hugging Face model folder holds it."""

from __future__ import annotations

import json
from pathlib import Path

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# a template that refuses turns out of order, as Llama 2's and Mistral's do
STRICT = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{{ '[' + message['role'] + '] ' + message['content'] + eos_token }}{% endfor %}"
)

CORPUS = [
    "The capital of France is Paris.",
    "Give me three tips for staying focused while studying.",
    "Put your phone in another room and work in short blocks.",
    "What is a prime number? A number with two divisors.",
    "좋은 아침입니다. 오늘 날씨가 좋네요.",
    "한국어 문장도 토큰으로 나뉩니다.",
    "def add(a, b):\n    return a + b\n",
    "The quick brown fox jumps over the lazy dog.",
    "Explain why exercise is good for health.",
] * 20


def tiny_tokenizer(folder: Path, template: str = CHATML) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    folder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    tok.save(str(folder / "tokenizer.json"))
    config = {
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "chat_template": template,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": 4096,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


TINY_LLAMA = {  # a small llama config.json, so --model can point at a folder with the tokenizer beside it
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 256,
    "intermediate_size": 688,
    "max_position_embeddings": 2048,
    "model_type": "llama",
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": 4,
    "rms_norm_eps": 1e-05,
    "tie_word_embeddings": False,
    "vocab_size": 400,
    "torch_dtype": "bfloat16",
}


def tiny_model(folder: Path, template: str = CHATML) -> Path:
    tiny_tokenizer(folder, template)
    (folder / "config.json").write_text(json.dumps(TINY_LLAMA), encoding="utf-8")
    return folder


def write_jsonl(path: Path, rows: list, raw_lines: list[str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r, ensure_ascii=False) for r in rows] + (raw_lines or [])
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def turns(*pairs: tuple[str, str]) -> list[dict]:
    return [{"role": r, "content": c} for r, c in pairs]


SFT_MESSAGES = [{"messages": turns(("user", f"Question {i}: what is {i} plus {i}?"), ("assistant", f"It is {2 * i}."))} for i in range(1, 21)]
PROMPT_COMPLETION = [{"prompt": f"What is {i} times three?", "completion": f" {3 * i}."} for i in range(1, 21)]
PREFERENCE = [{"prompt": f"Name colour {i}.", "chosen": f"Colour {i} is blue.", "rejected": f"I will not say {i}."} for i in range(1, 21)]
