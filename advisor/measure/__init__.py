"""`advisor measure`: the measuring side of the memory model. The only package besides generated scripts that
imports torch, transformers, peft and bitsandbytes; nothing imports it from the fast path.

    trace.trace(spec, setup)        fake-tensor trace at full size on CPU (no weights, no memory)
    trace.trace(spec, setup, real=True)   the same step on real CPU tensors (tests the tracer)
    cuda.measure_cuda(spec, setup)  real run on a GPU: max_memory_allocated / reserved / device used per phase
    record.row(...)                 a JSONL row with provenance for estimators/calibration/traces.jsonl
"""
