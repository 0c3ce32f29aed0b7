"""Every question the advisor asks, declared once as data.

The same declarations become command-line flags and are read back as validated answers in advisor/answers.py
(`add_question_flags`, `answers_from_args`, `Answers.from_mapping`), and widgets in the wizard (it iterates
`questions()`).

Standard library only: importing this never loads pydantic or torch.
"""

from __future__ import annotations

from .errors import AdvisorError
from .question_types import Choice, Question


def _c(value: str, label_ko: str, label_en: str, explain_ko: str, explain_en: str, *rules: str) -> Choice:
    return Choice(value, label_ko, label_en, explain_ko, explain_en, tuple(rules))


def _goal(value: str, label_ko: str, label_en: str) -> Choice:
    """A goal the §6 selection table answers: its explanation and rule come from the row (rules/selection.toml)."""
    return Choice(value, label_ko, label_en, "", "", selection=True)


QUESTIONS: tuple[Question, ...] = (
    Question(
        "goal",
        "choice",
        "무엇을 하고 싶으세요?",
        "What do you want to achieve?",
        "목표에 따라 §6 선택 기준표의 행이 정해집니다.",
        "Your goal picks the row of the document's §6 selection table.",
        required=True,
        choices=(
            _goal("chat_format", "대화 형식 가르치기", "Teach a chat format"),
            _goal("quality_safety", "답변 품질/안전성 높이기", "Better or safer answers"),
            _goal("best_quality", "최고 품질", "Best possible quality"),
            _goal("simple", "간단하고 저렴하게", "Keep it simple and cheap"),
            _goal("domain", "특정 도메인 적응", "Adapt to a domain"),
            _c(
                "reasoning",
                "검증 가능한 과제 (수학, 코드)",
                "Checkable tasks (math, code)",
                "정답을 검증할 수 있는 보상으로 강화학습 → GRPO (문서 밖 추가 방법)",
                "Reinforcement learning on a checkable reward → GRPO (an addition beyond the document)",
                "grpo",
            ),
        ),
    ),
    Question(
        "data",
        "choice",
        "어떤 데이터가 있나요? (여러 개 선택 가능)",
        "What data do you have? (several allowed)",
        "방법마다 필요한 데이터가 다릅니다: SFT는 지시-응답 쌍, RLHF/DPO는 선호도 쌍.",
        "Each method needs its own data: SFT instruction-response pairs, RLHF/DPO preference pairs.",
        required=True,
        multiple=True,
        choices=(
            _c(
                "instruction_pairs",
                "지시-응답 쌍",
                "Instruction-response pairs",
                "사람이 직접 작성한 (질문, 답변) 쌍: SFT에 쓰임",
                "(Question, answer) pairs written by people: used by SFT",
                "sft",
            ),
            _c(
                "preference_pairs",
                "선호도 쌍",
                "Preference pairs",
                '질문 하나에 답변 A, B와 "A가 B보다 낫다" 판단: RLHF/DPO에 쓰임',
                'Two answers per question and a judgement "A is better than B": used by RLHF and DPO',
                "rlhf",
                "dpo",
            ),
            _c(
                "reward_signal",
                "보상 신호",
                "A reward signal",
                "답변에 점수를 주는 Reward Model 또는 정답 검증기: GRPO에 쓰임",
                "A reward model or a verifier that scores answers: used by GRPO",
                "grpo",
            ),
            _c(
                "raw_text",
                "일반 텍스트",
                "Raw text",
                "쌍으로 묶이지 않은 도메인 문서: 같은 손실로 SFT 단계에서 학습",
                "Unpaired domain documents: trained with the same next-token loss in an SFT stage",
                "sft",
            ),
        ),
    ),
    Question(
        "data_count",
        "int",
        "예제가 몇 개인가요? (선택)",
        "How many examples? (optional)",
        "SFT는 보통 수만~수십만 개 쌍으로 학습합니다 (§2). 너무 적으면 경고합니다.",
        "SFT usually trains on tens to hundreds of thousands of pairs (§2); too few gives a warning.",
        minimum=1,
        rules=("sft",),
    ),
    Question(
        "reward",
        "text",
        "GRPO 보상은? (검증 가능한 과제만, 선택)",
        "GRPO's reward? (checkable tasks only, optional)",
        "정답 필드 검사 (check:answer), 직접 쓴 함수 (rewards.py:score), 또는 Reward Model (폴더나 허브 id). "
        "비우면 스크립트가 임시 길이 보상을 씁니다.",
        "A dataset field the answer must equal (check:answer), your function (rewards.py:score), or a reward model "
        "(a folder or hub id). Left empty, the script uses a placeholder length reward.",
        rules=("grpo",),
    ),
    Question(
        "priority",
        "choice",
        "품질과 비용 중 무엇이 우선인가요?",
        "What matters more: quality or cost?",
        "품질 우선이면 Full > LoRA > QLoRA 순으로, 비용 우선이면 LoRA/QLoRA를 먼저 고려합니다.",
        "Quality tries full > LoRA > QLoRA; cost tries LoRA and QLoRA first.",
        default="quality",
        choices=(
            _c(
                "quality",
                "품질",
                "Quality",
                "자원이 허락하는 한 최고 성능 (Full fine-tuning, RLHF)",
                "The best the hardware allows (full fine-tuning, RLHF)",
                "full",
                "cmp.performance",
            ),
            _c("cost", "비용", "Cost", "빠르고 효율적으로 (LoRA/QLoRA, DPO)", "Fast and efficient (LoRA/QLoRA, DPO)", "lora", "qlora", "cmp.cost"),
        ),
    ),
    Question(
        "gpu",
        "text",
        "어떤 GPU를 쓰나요?",
        "Which GPU will you train on?",
        "GPU 이름 (4090, a100-80gb, nvidia-smi가 보여주는 이름; `advisor gpus`) 또는 판매 용량 (24GB; GiB로 주면 사용 가능한 메모리 그대로).",
        "A GPU as people or nvidia-smi name it (4090, a100-80gb; `advisor gpus`), or the size it is sold as (24GB; a size in GiB is taken as usable memory).",
        required=True,
        rules=("sel.personal_gpu",),
    ),
    Question(
        "gpu_count",
        "int",
        "GPU는 몇 개인가요?",
        "How many GPUs?",
        "한 노드의 GPU 수.",
        "GPUs in one machine.",
        default=1,
        minimum=1,
    ),
    Question(
        "time_budget_hours",
        "float",
        "학습에 쓸 수 있는 시간 (시간, 선택)",
        "Time you can spend training (hours, optional)",
        "짧으면 여러 단계가 필요한 RLHF 대신 DPO를 고려합니다.",
        "A short budget favours DPO over the multi-stage RLHF.",
        minimum=0.01,
        rules=("cmp.cost",),
    ),
    Question(
        "budget_usd",
        "float",
        "예산 (USD, 선택)",
        "Budget (USD, optional)",
        "예산이 적으면 비용이 높은 RLHF 대신 DPO를 고려합니다.",
        "A small budget favours DPO over the costly RLHF.",
        minimum=0,
        rules=("cmp.cost",),
    ),
    Question(
        "price",
        "float",
        "GPU 가격 (GPU 1개 1시간당 USD, 선택)",
        "GPU price (USD per GPU-hour, optional)",
        "실제로 내는 가격. 비우면 rules/gpus.toml의 온디맨드 가격을 씁니다. 비용과 예산에 따른 RLHF/DPO 판단이 이 가격을 씁니다.",
        "What you pay per GPU-hour; empty = the on-demand list price in rules/gpus.toml. The costs and the budget's RLHF-or-DPO call use it.",
        minimum=0,
        rules=("cmp.cost",),
        metavar="USD_PER_GPU_HOUR",
    ),
    Question(
        "model",
        "text",
        "어떤 모델을 학습하나요?",
        "Which model will you fine-tune?",
        "카탈로그 이름, 크기 (7b, 8b, 70b), 로컬 경로 또는 캐시된 허브 id (`advisor models`). "
        "이 컴퓨터에 토크나이저가 있으면 데이터의 토큰 수를 그것으로 셉니다.",
        "A catalog name, a size (7b, 8b, 70b), a local path or a cached hub id (see `advisor models`). "
        "Its tokenizer, when it is on this machine, counts your data's tokens.",
        default="7b",
    ),
    Question(
        "seq_len",
        "int",
        "예제 하나의 최대 토큰 수",
        "Longest example, in tokens",
        "모델의 최대 위치 수를 넘으면 잘라서 경고합니다.",
        "Capped at the model's positions, with a warning.",
        default=2048,
        minimum=64,
    ),
)


def questions() -> tuple[Question, ...]:
    """The questions in the order they are asked."""
    return QUESTIONS


def question(qid: str) -> Question:
    for q in QUESTIONS:
        if q.id == qid:
            return q
    raise AdvisorError(f"unknown question '{qid}'; valid: {', '.join(q.id for q in QUESTIONS)}")
