"""The wizard's own words (step names, buttons, status lines) in Korean and English.

Question texts are NOT here: they come from `advisor.questions` (the same declarations the CLI flags use).
Rule texts come from `rules/*.toml` through `advisor.rules`. What is left is the chrome around them.
"""

from __future__ import annotations

STEP_NAMES = {
    "goal": ("목표·모델", "Goal & model"),  # the model is asked with the goal: the data step counts tokens with it
    "data": ("데이터", "Data"),
    "resources": ("자원", "Resources"),
    "recommend": ("추천", "Advice"),
    "memory": ("메모리", "Memory"),
    "script": ("스크립트", "Script"),
    "finish": ("완료", "Finish"),
}

# key -> (ko, en). `{name}` placeholders are filled with str.format.
TEXT: dict[str, tuple[str, str]] = {
    "title": ("advisor: 파인튜닝 마법사", "advisor: fine-tuning wizard"),
    "next": ("다음", "Next"),
    "back": ("이전", "Back"),
    "quit": ("종료", "Quit"),
    "glossary": ("용어집", "Glossary"),
    "close": ("닫기", "Close"),
    "make_fit": ("맞추기", "Make it fit"),
    "required": ("필수 항목입니다", "required"),
    "fix_first": ("먼저 고칠 항목: {items}", "Fix first: {items}"),
    "gpu_pick": ("GPU 표에서 고르기", "Pick from the GPU table"),
    "gpu_typed": ("또는 이름이나 메모리 입력 (예: 4090, 24GB)", "or type its name or memory (e.g. 4090, 24GB)"),
    "gpu_other": ("직접 입력한 메모리", "typed memory"),
    "model_resolving": ("모델 찾는 중…", "looking the model up…"),
    "model_params": ("{name}: 파라미터 {params}개", "{name}: {params} parameters"),
    "model_from": ("출처: {how}", "from {how}"),
    # the data step's file field (advisor/tui/widgets/data_step.py)
    "data_label": (
        "학습 데이터 (.jsonl/.json/.csv/.parquet 파일, 폴더 또는 캐시된 허브 데이터셋 id) 입력 후 Enter",
        "Your training data (a .jsonl/.json/.csv/.parquet file, a folder or a cached hub dataset id), then Enter",
    ),
    "data_reading": ("{path} 읽는 중: {pct} ({mb:,.1f} MB)", "reading {path}: {pct} ({mb:,.1f} MB)"),
    "data_tokenizer": ("토큰 수: {model}의 토크나이저로 셈", "tokens counted with {model}'s own tokenizer"),
    "data_tokenizer_template": (
        "토큰 수: {model}의 토크나이저와 채팅 템플릿으로 셈",
        "tokens counted with {model}'s own tokenizer and chat template",
    ),
    "data_approx_model": (
        "토큰 수: 근사치 (이 컴퓨터에 {model}의 토크나이저가 없음)",
        "tokens approximated: no tokenizer of {model} on this machine",
    ),
    "data_approx": ("토큰 수: 근사치 (모델이 없음)", "tokens approximated: no model given"),
    "data_remeasure": (
        "모델이 {old}에서 {new}(으)로 바뀌어 {new}의 토크나이저로 다시 잽니다",
        "the model changed from {old} to {new}: measuring the data again with {new}'s tokenizer",
    ),
    "data_busy": ("데이터를 읽는 중 (끝나면 다음으로)", "the data is still being read (Next when it is done)"),
    "thinking": ("추천을 계산하는 중…", "working out the advice…"),
    "recommend_head": ("추천: {pipeline} + {adaptation}", "Recommended: {pipeline} + {adaptation}"),
    "stages": ("단계", "Stages"),
    "stage_brief": ("{name} (마이크로 배치 {mb}×{accum}, {seq} 토큰)", "{name} (mb {mb}×{accum}, {seq} tok)"),
    "why": ("이유 (원문 규칙)", "Why (the document's rules)"),
    "alternatives": ("다른 선택지와 고르지 않은 이유", "Alternatives and why not"),
    "warnings": ("주의", "Warnings"),
    "compare": ("RLHF vs DPO (원문 §6 비교표)", "RLHF vs DPO (the document's §6 comparison)"),
    "compare_item": ("항목", "Item"),
    "estimate_line": ("예상 메모리 (GPU 한 장): {gib:.1f} GiB / {cap:.1f} GiB", "Estimated memory per GPU: {gib:.1f} GiB of {cap:.1f} GiB"),
    "time_line": ("예상 시간과 비용: {text}", "Expected time and cost: {text}"),
    "quote_line": ("이 답이면: {pipeline} + {adaptation} · {text}", "With these answers: {pipeline} with {adaptation} · {text}"),
    "quote_wait": ("이 답으로 계획하는 중…", "Planning with these answers…"),
    "quote_no_time": ("{gpu}의 속도 정보가 없어 시간과 비용은 알 수 없습니다", "no speed figures for {gpu}: time and cost unknown"),
    "glossary_hint": ("Ctrl+G: 용어집", "Ctrl+G: glossary"),
    "stage": ("단계", "Stage"),
    "fits": ("{gpu}에 들어갑니다: {gib:.1f} GiB 여유", "fits on {gpu}: {gib:.1f} GiB to spare"),
    "no_fit": ("{gpu}에 들어가지 않습니다: {gib:.1f} GiB 초과", "does not fit on {gpu}: {gib:.1f} GiB over"),
    "bar_scale": (
        "카드 메모리 {cap:.1f} GiB (│ 표시) · 필요 {need:.1f} GiB · 단계 {phase}",
        "card {cap:.1f} GiB (at │) · needs {need:.1f} GiB · peak in {phase}",
    ),
    "whatif": ("만약에… (바꾸면 바로 다시 계산)", "What if… (changes re-estimate at once)"),
    "fitting": ("맞추는 방법 찾는 중…", "looking for the cheapest fix…"),
    "fit_applied": ("적용함: {label} ({cost})", "applied: {label} ({cost})"),
    "fit_none": (
        "아는 변경으로는 맞출 수 없습니다: 더 작은 모델이나 큰 GPU를 고르세요",
        "no change the advisor knows makes it fit: pick a smaller model or a larger GPU",
    ),
    "fit_already": ("이미 들어갑니다", "it already fits"),
    "files": ("생성될 파일", "Files that will be written"),
    "write_to": ("저장 위치", "Written to"),
    "will_write_to": ("저장될 위치", "Will be written to"),
    "folder_taken": (
        "{path}에 이미 파일이 있습니다: '덮어쓰기'를 선택하거나 다른 폴더를 입력하세요",
        "{path} already holds files: tick 'overwrite' or type another folder",
    ),
    "folder_empty": ("저장할 폴더를 입력하세요", "type the folder to write to"),
    "placeholder_reward": (
        "GRPO 보상이 없어 임시 길이 보상(약 200자 답변 선호)을 씁니다: 데이터 단계의 보상 질문에 답하거나 advisor generate에 --reward-check, --reward-fn, --reward-model을 주세요",
        "GRPO has no reward: its script uses the PLACEHOLDER length reward (~200-character answers); answer the Data step's reward question, or pass --reward-check, --reward-fn or --reward-model to advisor generate",
    ),
    "rendering": ("스크립트 생성 중…", "generating the scripts…"),
    "no_scriptgen": ("스크립트 생성기가 아직 없습니다", "the script generator is not available"),
    "finish_head": ("무엇을 할까요?", "What now?"),
    "save": ("실행 폴더 저장", "Save the run directory"),
    "launch": ("저장하고 지금 실행", "Save and launch now"),
    "quit_plan": ("저장하지 않고 종료", "Quit without saving"),
    "overwrite": ("이미 있으면 덮어쓰기", "overwrite if it exists"),
    "saved": ("저장함: {path}  (실행: advisor launch {path})", "saved: {path}  (run it: advisor launch {path})"),
    "summary": ("{pipeline} + {adaptation} · {model} · {gpu} × {count}", "{pipeline} + {adaptation} · {model} · {gpu} × {count}"),
    "loading": ("불러오는 중…", "loading…"),
    "save_key": ("저장", "Save"),
    "launch_key": ("실행", "Launch"),
    "none": ("없음", "none"),
    "yes": ("예", "yes"),
    "no": ("아니오", "no"),
    # what `advisor wizard` prints after the app has closed (advisor/commands/wizard.py)
    "exit_no_plan": ("advisor: 계획을 만들기 전에 마법사를 닫았습니다", "advisor: wizard closed before a plan was made"),
    "exit_plan": ("계획: {summary}", "plan: {summary}"),
    "exit_nothing_saved": ("advisor: 저장하지 않았습니다", "advisor: nothing saved"),
    "exit_saved": ("저장함: {path}", "saved: {path}"),
    "exit_run_it": ("실행 명령: {command}", "run it with: {command}"),
}

# Phases of a training step as the estimator names them (estimators/sft.py, kinds.py): the memory bar
# says in which one the peak falls.
PHASE_WORDS = {
    "forward": ("순전파", "forward"),
    "backward": ("역전파", "backward"),
    "loss": ("손실", "loss"),
    "top layer": ("맨 위 층", "top layer"),
    "layers": ("층들", "layers"),
    "end": ("끝", "end"),
    "optimizer step": ("옵티마이저 스텝", "optimizer step"),
    "reference forward": ("참조 모델 순전파", "reference forward"),
    "generation": ("생성", "generation"),
    "rollout scoring": ("롤아웃 채점", "rollout scoring"),
    "value model": ("가치 모델", "value model"),
}

# "Make it fit" (estimators/fit.py Fix.key parts): Korean label and cost, filled from the fixed set-up. The
# English words come from the solver itself (Fix.label / Fix.cost), so they never drift from what it did.
FIX_TEXT_KO = {
    "adamw8bit": ("8비트 AdamW", "옵티마이저 상태를 8비트로 저장; 공개된 실험에서 품질은 비슷"),
    "paged_adamw8bit": ("페이지드 8비트 AdamW", "8비트 상태가 호스트 RAM으로 페이지될 수 있음; 그때는 느려짐"),
    "grpo_round": (
        "마이크로 배치 {micro_batch} × 그래디언트 누적 {grad_accum} (생성 라운드가 num_generations로 나누어떨어짐)",
        "한 라운드의 생성 수가 줄어듦; 유효 배치 {effective}",
    ),
    "lora": ("Full fine-tuning 대신 LoRA", "어댑터만 학습; 성능 상한이 약간 낮음 (§5)"),
    "qlora": ("QLoRA (4비트 기본 가중치)", "4비트 베이스; 조금 느리고 품질 손실이 작음 (§5)"),
    "lora_attention": ("어텐션에만 LoRA (라우터와 전문가는 고정)", "적응하는 가중치가 적음; 전문가 병합 사본 없음"),
    "no_kbit_upcast": (
        "양자화하지 않은 가중치를 계산 dtype으로 유지 (fp32 업캐스트 없음)",
        "norm, 임베딩, 양자화하지 않은 전문가의 fp32 사본을 만들지 않음; 약간 덜 안정적",
    ),
    "offload_optimizer": (
        "옵티마이저 상태를 CPU로 오프로드 (DeepSpeed ZeRO-Offload, --parallel {parallel})",
        "스텝이 느려짐 (옵티마이저가 CPU에서 실행); 상태, fp32 마스터, 그래디언트를 호스트 RAM에 둠",
    ),
    "offload_all": (
        "가중치, 그래디언트, 옵티마이저 상태를 CPU로 오프로드 (FSDP CPUOffload)",
        "스텝이 훨씬 느려짐 (층마다 복사해 옴); 샤딩된 상태를 호스트 RAM에 둠",
    ),
    "grad_ckpt": ("그래디언트 체크포인팅 켜기", "스텝이 약 20-30 % 느려짐 (순전파를 다시 계산)"),
    "more_gpus": ("GPU 2개에 FSDP 전체 샤딩", "GPU 한 장 추가; 통신 오버헤드"),
    "micro_batch": ("마이크로 배치 {micro_batch} × 그래디언트 누적 {grad_accum}", "유효 배치 {effective}; 스텝당 토큰이 줄어 느려짐"),
    "seq_len": ("시퀀스를 {seq_len} 토큰으로 자름", "{seq_len} 토큰보다 긴 예제는 잘림"),
}

# How a model name was resolved (estimators/catalog.py Resolved.resolved_from), prefix -> Korean prefix
MODEL_SOURCE_KO = (
    ("shorthand ", "크기 약칭 "),
    ("catalog: ", "카탈로그: "),
    ("catalog", "카탈로그"),
    ("config.json at ", "config.json 파일: "),
    ("local Hugging Face cache ", "로컬 Hugging Face 캐시 "),
)

# Short labels of the what-if knobs (their help text comes from advisor.knobs.KNOBS).
KNOB_LABELS = {
    "micro_batch": ("마이크로 배치", "micro-batch"),
    "seq_len": ("시퀀스 길이", "seq length"),
    "lora_r": ("LoRA 랭크", "LoRA rank"),
    "grad_ckpt": ("체크포인팅", "grad ckpt"),
    "optimizer": ("옵티마이저", "optimizer"),
    "adaptation": ("적응/양자화", "adaptation"),
    "quant_type": ("4비트 형식", "4-bit type"),
    "gpus": ("GPU 수", "GPUs"),
    "parallel": ("ZeRO/병렬", "ZeRO/parallel"),
}

CATEGORY_LABELS = {
    "parameters": ("파라미터", "parameters"),
    "gradients": ("그래디언트", "gradients"),
    "optimizer": ("옵티마이저", "optimizer"),
    "activations": ("활성값", "activations"),
    "temporaries": ("임시 버퍼", "temporaries"),
    "other": ("기타", "other"),
    "overhead": ("할당기+CUDA", "allocator+CUDA"),
}


# Footer descriptions of the key bindings, by action name.
BINDING_TEXT = {
    "next": "next",
    "back": "back",
    "glossary": "glossary",
    "quit_wizard": "quit",
    "make_fit": "make_fit",
    "save": "save_key",
    "launch": "launch_key",
    "quit_plan": "quit",
    "dismiss": "close",
}


def pick(pair: tuple[str, str], lang: str) -> str:
    return pair[0] if lang == "ko" else pair[1]


def t(key: str, lang: str, **values) -> str:
    text = pick(TEXT[key], lang)
    return text.format(**values) if values else text


def step_name(step: str, lang: str) -> str:
    return pick(STEP_NAMES[step], lang)


def phase_name(phase: str, lang: str) -> str:
    """'backward (top layer)' -> '역전파 (맨 위 층)'; an unknown phase is shown as the estimator names it.
    Gradient accumulation's twins ('backward (loss), micro-steps 2+', estimators/grad_accum.py) keep their suffix."""
    if lang == "en" or not phase:
        return phase
    base, sep, steps = phase.partition(", micro-steps ")
    if sep:
        return f"{phase_name(base, lang)}, 마이크로 스텝 {steps}"
    if phase in PHASE_WORDS:
        return pick(PHASE_WORDS[phase], lang)
    head, _, rest = phase.partition(" (")
    if rest.endswith(")") and head in PHASE_WORDS:
        inner = rest[:-1]
        return f"{pick(PHASE_WORDS[head], lang)} ({pick(PHASE_WORDS.get(inner, (inner, inner)), lang)})"
    return phase


def fix_text(fix, lang: str) -> tuple[str, str]:
    """(label, cost) of a make-it-fit Fix in `lang`. Korean is built from the fix's key parts and its set-up;
    a part without a Korean text keeps the solver's English for that part only."""
    if lang == "en":
        return fix.label, fix.cost
    setup = fix.setup
    values = {
        "micro_batch": setup.micro_batch,
        "grad_accum": setup.grad_accum,
        "seq_len": setup.seq_len,
        "effective": setup.micro_batch * setup.grad_accum * setup.world_size,
        "parallel": setup.parallel,
    }
    en_labels, en_costs = fix.label.split(" + "), fix.cost.split("; ")
    labels, costs = [], []
    for i, part in enumerate(k for k in fix.key.split("+") if k):
        if part == "offload_optimizer" and setup.offload_params:  # FSDP offloads everything (estimators/parallel.py)
            part = "offload_all"
        if part in FIX_TEXT_KO:
            label, cost = FIX_TEXT_KO[part]
            labels.append(label.format(**values))
            costs.append(cost.format(**values))
        else:
            labels.append(en_labels[i] if i < len(en_labels) else part)
            costs.append(en_costs[i] if i < len(en_costs) else "")
    return " + ".join(labels), "; ".join(c for c in costs if c)


def model_source(how: str, lang: str) -> str:
    """Where a model's numbers came from ('shorthand 7b → Llama 2 7B'), in `lang`."""
    if lang == "en":
        return how
    for en, ko in MODEL_SOURCE_KO:
        if how.startswith(en):
            rest = how[len(en) :].replace(" has the architecture of ", "의 구조: ")
            return ko + rest
    return how


def localize_bindings(node, lang: str) -> None:
    """Rewrite the footer descriptions of `node`'s key bindings in `lang` (the keys stay the same)."""
    if lang == "en":
        return
    from textual.binding import Binding

    table = node._bindings.key_to_bindings
    for key, bindings in table.items():
        table[key] = [
            b if b.action not in BINDING_TEXT else Binding(b.key, b.action, t(BINDING_TEXT[b.action], lang), show=b.show, priority=b.priority)
            for b in bindings
        ]
