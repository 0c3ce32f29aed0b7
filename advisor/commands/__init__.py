"""Subcommands, one module each: NAME, EXAMPLES, add_arguments(parser), run(args) -> exit code.

Their one-line summaries live here, in the order `advisor --help` lists them: the top-level help and the
"invalid choice" error then import no command module (most pull advisor.knobs and so the estimator)."""

SUMMARIES = {
    "wizard": "the interactive wizard: goal, data, resources -> recommendation, memory (with what-ifs), script, launch",
    "advise": "recommend a fine-tuning method (SFT, RLHF, DPO; full, LoRA, QLoRA) that fits your GPU, with reasons",
    "estimate": "GPU memory a fine-tuning run needs, term by term, and the GPUs it fits on",
    "fit": "make it fit: the largest batch and sequence for a GPU, and the cheapest changes when the run does not fit",
    "generate": "write ready-to-run training scripts (TRL), an accelerate config and a README for a plan",
    "launch": "run the training scripts `advisor generate` wrote, stage by stage, with live progress and resume",
    "measure": "measure a training step's GPU memory: a fake-tensor trace on CPU, or a real run on a CUDA GPU",
    "accuracy": (
        "compare the memory estimate with the traced and published measurements (refits the device model and its "
        "error bands, writes docs/accuracy.md)"
    ),
    "models": "list the bundled model catalog (exact parameter counts) and the size shorthands",
    "gpus": "list the GPUs the advisor knows, with the memory a training process can use",
    "data": "check your training data: type, column mapping, problems, token lengths, the sequence length to plan with",
}
