#!/usr/bin/env python3
"""FP8 GEMMs with per-tensor and row-wise scales (torch._scaled_mm: cuBLASLt), the casts and amax
reductions of FP8 current scaling, and attention forward and backward (torch's scaled_dot_product_attention,
whichever fused backend it picks; the kernels are named), each beside BF16 at the same shape. Kernel-level
figures for the FP8 recipes that run cuBLAS per-tensor GEMMs and for attention's backward/forward ratio.
Timed with CUDA events, L2 flushed (256 MiB write) before each repetition, median of 20 after 3 warm-ups,
random data. Writes a JSON list to the path given and prints a table.
"""
import json
import sys

import torch
import torch.nn.functional as F
from torch_bench import Bench, graphed, kernels

bench = Bench(reps=20, warmup=3)
dev = torch.device("cuda")
timed, record, safe = bench.timed, bench.record, bench.safe


GEMMS = [(4096, 7168, 7168), (16384, 7168, 7168), (16384, 4096, 7168), (16384, 7168, 2048), (8192, 2112, 7168),
         (16384, 24576, 1536), (8192, 4096, 4096), (32768, 1536, 2048), (4096, 2880, 2880), (2048, 4096, 7168)]


def fp8_gemms():
    e4m3 = torch.float8_e4m3fn
    for m, n, k in GEMMS:
        a = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
        b = torch.randn(n, k, device=dev, dtype=torch.bfloat16)
        flops = 2.0 * m * n * k
        shape = f"{m}x{n}x{k}"
        f_bf16 = lambda: a @ b.t()
        record("gemm_bf16", shape, timed(f_bf16), flops=flops, names=kernels(f_bf16))
        a8, b8 = a.to(e4m3), b.to(e4m3)
        one = torch.ones((), device=dev, dtype=torch.float32)
        f_tensor = lambda: torch._scaled_mm(a8, b8.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
        record("gemm_fp8_tensor", shape, timed(f_tensor), flops=flops, note="per-tensor scales",
               names=kernels(f_tensor))
        sa = torch.ones((m, 1), device=dev, dtype=torch.float32)
        sb = torch.ones((1, n), device=dev, dtype=torch.float32)
        f_row = lambda: torch._scaled_mm(a8, b8.t(), scale_a=sa, scale_b=sb, out_dtype=torch.bfloat16)
        safe(lambda: record("gemm_fp8_rowwise", shape, timed(f_row), flops=flops, note="row-wise scales",
                            names=kernels(f_row)), f"rowwise {shape}")


# Expert GEMMs as Transformer Engine's grouped linear runs them under per-tensor FP8 recipes: one cuBLASLt
# GEMM per local expert. The loop is captured in a CUDA graph and replayed, so Python's launch cost is not
# timed (the graph keeps the GPU-side gaps between launches). Local experts, rows per expert, n, k.
GROUPED = [(16, 2048, 3072, 4096), (16, 2048, 4096, 1536), (8, 2048, 1536, 2048), (8, 2048, 2048, 768),
           (4, 4096, 4096, 7168), (4, 4096, 7168, 2048), (16, 512, 3072, 4096), (8, 512, 1536, 2048),
           (32, 1024, 4096, 7168), (32, 256, 4096, 7168)]


def fp8_grouped():
    e4m3 = torch.float8_e4m3fn
    one = torch.ones((), device=dev, dtype=torch.float32)
    for e, rows, n, k in GROUPED:
        xs = [torch.randn(rows, k, device=dev, dtype=torch.bfloat16) for _ in range(e)]
        ws = [torch.randn(n, k, device=dev, dtype=torch.bfloat16) for _ in range(e)]
        x8, w8 = [x.to(e4m3) for x in xs], [w.to(e4m3) for w in ws]
        flops = 2.0 * e * rows * n * k
        shape = f"E{e} {rows}x{n}x{k}"

        def loop_fp8():
            for x, w in zip(x8, w8):
                torch._scaled_mm(x, w.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16)

        def loop_bf16():
            for x, w in zip(xs, ws):
                x @ w.t()

        safe(lambda: record("grouped_fp8_tensor", shape, timed(graphed(loop_fp8)), flops=flops,
                            note="per-expert cuBLASLt loop, CUDA graph", names=kernels(loop_fp8)), f"fp8 {shape}")
        safe(lambda: record("grouped_bf16", shape, timed(graphed(loop_bf16)), flops=flops,
                            note="per-expert cuBLAS loop, CUDA graph", names=kernels(loop_bf16)), f"bf16 {shape}")


def fp8_casts():
    e4m3 = torch.float8_e4m3fn
    for n in (16384 * 7168, 65536 * 2048):
        x = torch.randn(n, device=dev, dtype=torch.bfloat16)
        record("amax", f"{n} bf16", timed(lambda: x.abs().amax()), nbytes=2.0 * n, note="x.abs().amax()")
        record("cast_fp8", f"{n} bf16", timed(lambda: x.to(e4m3)), nbytes=3.0 * n, note="bf16 read, fp8 written")


ATTN = [  # batch, heads, seq, qk dim, v dim, causal
    (2, 32, 4096, 128, 128, True), (1, 32, 8192, 128, 128, True), (2, 32, 4096, 64, 64, True),
    (2, 16, 4096, 256, 256, True), (2, 64, 4096, 128, 128, False), (1, 128, 4096, 192, 128, True),
    (4, 64, 4096, 128, 128, True)]


def attention():
    for bsz, h, s, dqk, dv, causal in ATTN:
        q = torch.randn(bsz, h, s, dqk, device=dev, dtype=torch.bfloat16, requires_grad=True)
        k = torch.randn(bsz, h, s, dqk, device=dev, dtype=torch.bfloat16, requires_grad=True)
        v = torch.randn(bsz, h, s, dv, device=dev, dtype=torch.bfloat16, requires_grad=True)
        g = torch.randn(bsz, h, s, dv, device=dev, dtype=torch.bfloat16)
        scores = bsz * h * s * s * (0.5 if causal else 1.0)
        fwd_flops = 2.0 * scores * (dqk + dv)
        shape = f"b{bsz} h{h} s{s} d{dqk}/{dv} {'causal' if causal else 'full'}"

        def fwd():
            with torch.no_grad():
                return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

        def fwd_bwd():
            out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            out.backward(g)

        t_f = timed(fwd)
        t_fb = timed(fwd_bwd)
        record("attn_fwd", shape, t_f, flops=fwd_flops, names=kernels(fwd))
        record("attn_bwd", shape, t_fb - t_f, flops=2.5 * fwd_flops,
               note=f"fwd+bwd {t_fb * 1e6:.1f} us minus fwd; bwd/fwd time {(t_fb - t_f) / t_f:.2f}",
               names=kernels(fwd_bwd))


for f in (fp8_gemms, fp8_grouped, fp8_casts, attention):
    safe(f)
with open(sys.argv[1] if len(sys.argv) > 1 else "fp8_attention.json", "w") as fh:
    json.dump({"torch": torch.__version__, "device": torch.cuda.get_device_name(),
               "cudnn": torch.backends.cudnn.version(), "rows": bench.rows}, fh, indent=1)
print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}, cuDNN {torch.backends.cudnn.version()}")
bench.print_rows()
