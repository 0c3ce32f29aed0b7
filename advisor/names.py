"""What a plan's pipelines and adaptations are called, in English and Korean: the one table the advice's prose,
`advisor advise`'s printer and the wizard read."""

from __future__ import annotations

# adaptation -> (en, ko)
ADAPTATIONS = {"full": ("full fine-tuning", "Full fine-tuning"), "lora": ("LoRA", "LoRA"), "qlora": ("QLoRA", "QLoRA")}
# pipeline (advisor/planning.py PIPELINES, plus a reward-model alternative) -> (short, long title), each (en, ko)
PIPELINE_NAMES = {
    "sft": (("SFT", "SFT"), ("SFT", "SFT")),
    "dpo": (("DPO", "DPO"), ("DPO", "DPO")),
    "sft+dpo": (("SFT → DPO", "SFT → DPO"), ("SFT → DPO", "SFT → DPO")),
    "rlhf": (("RLHF", "RLHF"), ("RLHF (SFT → reward model → PPO)", "RLHF (SFT → Reward Model → PPO)")),
    "grpo": (("GRPO", "GRPO"), ("GRPO (addition beyond the document)", "GRPO (문서 밖 추가 방법)")),
    "reward": (("reward model", "Reward Model"), ("reward model", "Reward Model")),
}

ADAPTATION_NAME = {key: en for key, (en, _) in ADAPTATIONS.items()}
ADAPTATION_NAME_KO = {key: ko for key, (_, ko) in ADAPTATIONS.items()}
PIPELINE_NAME = {key: short[0] for key, (short, _) in PIPELINE_NAMES.items()}
PIPELINE_TITLE = {key: long for key, (_, long) in PIPELINE_NAMES.items()}  # (en, ko), as the printer heads a plan
