#!/usr/bin/env python3
"""The kernels of an inference iteration where they differ from training's: decode attention (one or two
query tokens per sequence against a KV cache, grouped-query heads, torch's scaled_dot_product_attention with
whichever backend it picks; the kernels are named), dense and per-expert GEMMs with few rows (weights read
once for a handful of tokens: memory-bound), in BF16 and FP8, and attention through the unfused path
(scores materialised, torch's math backend) beside the fused one at one training shape.
Bytes are what the kernel must move at least (KV cache, weights, activations in and out); TB/s is that over
the time. Timed with CUDA events, L2 flushed (256 MiB write) before each repetition, median of 20 after 3
warm-ups, random data. Writes a JSON list to the path given and prints a table.
"""
import json
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch_bench import Bench, graphed, kernels

bench = Bench(reps=20, warmup=3)
dev = torch.device("cuda")
timed, record, safe = bench.timed, bench.record, bench.safe
bf16, e4m3 = torch.bfloat16, torch.float8_e4m3fn

# Query heads, KV heads, head dimension: GPT-OSS-120B, Qwen3-235B-A22B, Qwen3-30B-A3B.
HEADS = [(64, 8, 64), (64, 4, 128), (32, 4, 128)]


def decode_attention():
    for hq, hkv, d in HEADS:
        for bsz in (1, 8, 32, 128):
            for kv in (1024, 4096, 16384):
                k = torch.randn(bsz, hkv, kv, d, device=dev, dtype=bf16)
                v = torch.randn(bsz, hkv, kv, d, device=dev, dtype=bf16)
                for sq in (1, 2):
                    q = torch.randn(bsz, hq, sq, d, device=dev, dtype=bf16)
                    nbytes = 2.0 * (k.numel() + v.numel() + 2 * q.numel())
                    flops = 4.0 * bsz * hq * sq * kv * d
                    shape = f"b{bsz} h{hq}/{hkv} d{d} kv{kv} q{sq}"

                    def fn():
                        return F.scaled_dot_product_attention(q, k, v, enable_gqa=True)

                    safe(lambda: record("decode_attn", shape, timed(fn), flops=flops, nbytes=nbytes,
                                        names=kernels(fn)), shape)
                del k, v


# Dense projections (n, k): DeepSeek-V3 q/kv down-projection, MLP up and down, GPT-OSS QKV and output.
DENSE = [(2112, 7168), (4096, 7168), (7168, 2048), (5120, 2880), (2880, 4096), (18432, 7168)]


def decode_dense():
    for n, k in DENSE:
        w = torch.randn(n, k, device=dev, dtype=bf16)
        w8 = w.to(e4m3)
        for m in (1, 16, 64, 256, 1024):
            x = torch.randn(m, k, device=dev, dtype=bf16)
            x8 = x.to(e4m3)
            flops = 2.0 * m * n * k
            shape = f"{m}x{n}x{k}"
            f_bf16 = lambda: x @ w.t()
            safe(lambda: record("dense_bf16", shape, timed(f_bf16), flops=flops,
                                nbytes=2.0 * (n * k + m * k + m * n), names=kernels(f_bf16)), shape)
            sa = torch.ones((m, 1), device=dev, dtype=torch.float32)
            sb = torch.ones((1, n), device=dev, dtype=torch.float32)
            f_fp8 = lambda: torch._scaled_mm(x8, w8.t(), scale_a=sa, scale_b=sb, out_dtype=bf16)
            safe(lambda: record("dense_fp8_rowwise", shape, timed(f_fp8), flops=flops,
                                nbytes=1.0 * (n * k + m * k) + 2.0 * m * n, names=kernels(f_fp8)), shape)


# Experts on one GPU, (n, k) of one expert GEMM: DeepSeek-V3 (gate+up, down), GPT-OSS-120B gate+up,
# Qwen3-235B gate+up.
GROUPED = [(8, 4096, 7168), (8, 7168, 2048), (32, 4096, 7168), (16, 5760, 2880), (32, 3072, 4096)]


def decode_grouped():
    for e, n, k in GROUPED:
        w = torch.randn(e, n, k, device=dev, dtype=bf16)
        for rows in (1, 8, 32, 128, 512):
            x = torch.randn(e * rows, k, device=dev, dtype=bf16)
            offs = torch.arange(rows, e * rows + 1, rows, device=dev, dtype=torch.int32)
            flops = 2.0 * e * rows * n * k
            nbytes = 2.0 * (e * n * k + e * rows * (k + n))
            shape = f"E{e} {rows}x{n}x{k}"
            xs = list(x.split(rows))

            def loop():
                for i in range(e):
                    xs[i] @ w[i].t()

            safe(lambda: record("grouped_bf16_loop", shape, timed(graphed(loop)), flops=flops, nbytes=nbytes,
                                note="one cuBLAS GEMM per expert, CUDA graph", names=kernels(loop)), shape)
            if hasattr(torch, "_grouped_mm"):
                wt = w.transpose(1, 2)
                f_grouped = lambda: torch._grouped_mm(x, wt, offs=offs, out_dtype=bf16)
                safe(lambda: record("grouped_bf16", shape, timed(f_grouped), flops=flops, nbytes=nbytes,
                                    note="torch._grouped_mm", names=kernels(f_grouped)), shape)
            if hasattr(torch, "_scaled_grouped_mm"):
                x8 = x.to(e4m3)
                w8t = w.to(e4m3).transpose(1, 2)
                sx = torch.ones(e * rows, device=dev, dtype=torch.float32)
                sw = torch.ones(e, n, device=dev, dtype=torch.float32)
                f_fp8 = lambda: torch._scaled_grouped_mm(x8, w8t, sx, sw, offs=offs, out_dtype=bf16)
                safe(lambda: record("grouped_fp8_rowwise", shape, timed(f_fp8), flops=flops,
                                    nbytes=1.0 * (e * n * k + e * rows * k) + 2.0 * e * rows * n,
                                    note="torch._scaled_grouped_mm", names=kernels(f_fp8)), shape)
        del w


def unfused_attention():
    for bsz, h, s, d in ((1, 64, 4096, 64), (1, 32, 4096, 128)):
        q = torch.randn(bsz, h, s, d, device=dev, dtype=bf16, requires_grad=True)
        k = torch.randn(bsz, h, s, d, device=dev, dtype=bf16, requires_grad=True)
        v = torch.randn(bsz, h, s, d, device=dev, dtype=bf16, requires_grad=True)
        g = torch.randn(bsz, h, s, d, device=dev, dtype=bf16)
        fwd_flops = 2.0 * bsz * h * s * s * 0.5 * 2 * d
        shape = f"b{bsz} h{h} s{s} d{d} causal"
        for name, backend in (("fused", None), ("unfused", SDPBackend.MATH)):
            def fwd():
                with torch.no_grad():
                    return F.scaled_dot_product_attention(q, k, v, is_causal=True)

            def fwd_bwd():
                F.scaled_dot_product_attention(q, k, v, is_causal=True).backward(g)

            def both():
                if backend is None:
                    return timed(fwd), timed(fwd_bwd), kernels(fwd)
                with sdpa_kernel(backend):
                    return timed(fwd), timed(fwd_bwd), kernels(fwd)

            def run():
                t_f, t_fb, names = both()
                record(f"attn_fwd_{name}", shape, t_f, flops=fwd_flops, names=names)
                record(f"attn_bwd_{name}", shape, t_fb - t_f, flops=2.5 * fwd_flops,
                       note=f"fwd+bwd {t_fb * 1e6:.1f} us minus fwd")

            safe(run, f"{name} {shape}")


for f in (decode_attention, decode_dense, decode_grouped, unfused_attention):
    safe(f)
with open(sys.argv[1] if len(sys.argv) > 1 else "serving.json", "w") as fh:
    json.dump({"torch": torch.__version__, "device": torch.cuda.get_device_name(),
               "cudnn": torch.backends.cudnn.version(), "rows": bench.rows}, fh, indent=1)
print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}, cuDNN {torch.backends.cudnn.version()}")
bench.print_rows(width=36)
