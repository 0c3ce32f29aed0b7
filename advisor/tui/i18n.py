"""The wizard's own words (step names, buttons, status lines) in Korean and English.

Question texts are NOT here: they come from `advisor.questions` (the same declarations the CLI flags use).
Rule texts come from `rules/*.toml` through `advisor.rules`. What is left is the chrome around them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

LANGS = ("ko", "en")

STEP_NAMES = {
    "goal": ("목표", "Goal"),
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
    "gpu_typed": ("또는 메모리 입력 (예: 24GB)", "or type its memory (e.g. 24GB)"),
    "gpu_other": ("직접 입력한 메모리", "typed memory"),
    "model_resolving": ("모델 찾는 중…", "looking the model up…"),
    "model_params": ("{name}: 파라미터 {params}개", "{name}: {params} parameters"),
    "model_from": ("출처: {how}", "from {how}"),
    "thinking": ("추천을 계산하는 중…", "working out the advice…"),
    "recommend_head": ("추천: {method} + {adaptation}", "Recommended: {method} + {adaptation}"),
    "stages": ("단계", "Stages"),
    "why": ("이유 (원문 규칙)", "Why (the document's rules)"),
    "alternatives": ("다른 선택지와 고르지 않은 이유", "Alternatives and why not"),
    "warnings": ("주의", "Warnings"),
    "compare": ("RLHF vs DPO (원문 §6 비교표)", "RLHF vs DPO (the document's §6 comparison)"),
    "compare_item": ("항목", "Item"),
    "estimate_line": ("예상 메모리 (GPU 한 장): {gib:.1f} GiB / {cap:.1f} GiB", "Estimated memory per GPU: {gib:.1f} GiB of {cap:.1f} GiB"),
    "glossary_hint": ("Ctrl+G: 용어집", "Ctrl+G: glossary"),
    "stage": ("단계", "Stage"),
    "fits": ("{gpu}에 들어갑니다: {gib:.1f} GiB 여유", "fits on {gpu}: {gib:.1f} GiB to spare"),
    "no_fit": ("{gpu}에 들어가지 않습니다: {gib:.1f} GiB 초과", "does not fit on {gpu}: {gib:.1f} GiB over"),
    "bar_scale": ("카드 메모리 {cap:.1f} GiB (│ 표시) · 필요 {need:.1f} GiB · 단계 {phase}", "card {cap:.1f} GiB (at │) · needs {need:.1f} GiB · peak in {phase}"),
    "whatif": ("만약에… (바꾸면 바로 다시 계산)", "What if… (changes re-estimate at once)"),
    "fitting": ("맞추는 방법 찾는 중…", "looking for the cheapest fix…"),
    "fit_applied": ("적용함: {label} ({cost})", "applied: {label} ({cost})"),
    "fit_none": ("아는 변경으로는 맞출 수 없습니다: 더 작은 모델이나 큰 GPU를 고르세요", "no change the advisor knows makes it fit: pick a smaller model or a larger GPU"),
    "fit_already": ("이미 들어갑니다", "it already fits"),
    "files": ("생성될 파일", "Files that will be written"),
    "write_to": ("저장 위치", "Written to"),
    "rendering": ("스크립트 생성 중…", "generating the scripts…"),
    "no_scriptgen": ("스크립트 생성기가 아직 없습니다", "the script generator is not available"),
    "finish_head": ("무엇을 할까요?", "What now?"),
    "save": ("실행 폴더 저장", "Save the run directory"),
    "launch": ("저장하고 지금 실행", "Save and launch now"),
    "quit_plan": ("저장하지 않고 종료", "Quit without saving"),
    "overwrite": ("이미 있으면 덮어쓰기", "overwrite if it exists"),
    "saved": ("저장함: {path}  (실행: advisor launch {path})", "saved: {path}  (run it: advisor launch {path})"),
    "summary": ("{method} + {adaptation} · {model} · {gpu} × {count}", "{method} + {adaptation} · {model} · {gpu} × {count}"),
    "loading": ("불러오는 중…", "loading…"),
    "save_key": ("저장", "Save"),
    "launch_key": ("실행", "Launch"),
    "none": ("없음", "none"),
    "yes": ("예", "yes"),
    "no": ("아니오", "no"),
}

# Short labels of the what-if knobs (their help text comes from advisor.knobs.KNOBS).
KNOB_LABELS = {
    "micro_batch": ("마이크로 배치", "micro-batch"),
    "seq_len": ("시퀀스 길이", "seq length"),
    "lora_r": ("LoRA 랭크", "LoRA rank"),
    "grad_ckpt": ("체크포인팅", "grad ckpt"),
    "optimizer": ("옵티마이저", "optimizer"),
    "method": ("적응/양자화", "adaptation"),
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
BINDING_TEXT = {"next": "next", "back": "back", "glossary": "glossary", "quit_wizard": "quit", "make_fit": "make_fit",
                "save": "save_key", "launch": "launch_key", "quit_plan": "quit", "dismiss": "close"}


def pick(pair: tuple[str, str], lang: str) -> str:
    return pair[0] if lang == "ko" else pair[1]


def t(key: str, lang: str, **values) -> str:
    text = pick(TEXT[key], lang)
    return text.format(**values) if values else text


def step_name(step: str, lang: str) -> str:
    return pick(STEP_NAMES[step], lang)


def default_lang(environ: Mapping[str, str] | None = None) -> str:
    """Korean when the locale says so (LC_ALL, LC_MESSAGES, LANG, in POSIX order), else English."""
    env = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        value = env.get(name, "")
        if value:
            return "ko" if value.lower().startswith("ko") else "en"
    return "en"


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
