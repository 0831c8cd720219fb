#!/usr/bin/env python3
"""PyTorch's kernels at the MoE shapes moesim's profiler measures, for comparison with its own kernels
and cuBLAS calls: device-to-device copy, dense bf16 GEMMs, a grouped GEMM over experts (torch._grouped_mm
where this torch has it, else one matmul per expert), router scoring + top-k, and the permute gather.
Timed with CUDA events around each launch, the L2 flushed by a 256 MiB write before each repetition,
median of 25 after 3 warm-ups; random data. Writes a JSON list to the path given and prints a table.
"""
import json
import sys

import torch
from torch_bench import Bench

bench = Bench(reps=25, warmup=3)
dev = torch.device("cuda")
timed, record = bench.timed, bench.record


def copy():
    for n in (512 << 20, 2048 << 20):
        src = torch.rand(n // 4, device=dev)
        dst = torch.empty_like(src)
        record("copy", f"{n >> 20} MiB", timed(lambda: dst.copy_(src)), nbytes=2 * n)


def dense():
    for m, n, k in ((65536, 4096, 7168), (65536, 7168, 2048), (131072, 1536, 2048), (32768, 28672, 4096),
                    (8192, 5760, 2880), (2048, 4096, 7168)):
        a = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
        b = torch.randn(k, n, device=dev, dtype=torch.bfloat16)
        record("dense_gemm", f"{m}x{n}x{k}", timed(lambda: a @ b), flops=2.0 * m * n * k)


def grouped():
    for tokens, e, top_k, h, f in ((8192, 256, 8, 7168, 2048), (16384, 128, 8, 2048, 768)):
        rows = tokens * top_k
        x = torch.randn(rows, h, device=dev, dtype=torch.bfloat16)
        w = torch.randn(e, h, 2 * f, device=dev, dtype=torch.bfloat16)
        per = rows // e
        offs = torch.arange(per, rows + 1, per, device=dev, dtype=torch.int32)
        flops = 2.0 * rows * h * 2 * f
        if hasattr(torch, "_grouped_mm"):
            record("grouped_gemm", f"E{e} {rows}x{2 * f}x{h} balanced",
                   timed(lambda: torch._grouped_mm(x, w, offs=offs)), flops=flops, note="torch._grouped_mm")
        xs = x.split(per)
        record("grouped_gemm", f"E{e} {rows}x{2 * f}x{h} balanced",
               timed(lambda: [xi @ w[i] for i, xi in enumerate(xs)]), flops=flops, note="matmul per expert")


def router():
    for tokens, e, top_k, sigmoid in ((8192, 256, 8, True), (16384, 128, 8, False), (4096, 8, 2, False)):
        logits = torch.randn(tokens, e, device=dev)

        def run():
            s = logits.sigmoid() if sigmoid else logits.softmax(-1)
            w, i = s.topk(top_k, dim=-1)
            return w / w.sum(-1, keepdim=True), i

        record("router", f"T{tokens} E{e} K{top_k} {'sigmoid' if sigmoid else 'softmax'}", timed(run),
               nbytes=4.0 * tokens * e + 8.0 * tokens * top_k, note="ungrouped top-k")


def permute():
    for tokens, top_k, h in ((8192, 8, 7168), (16384, 8, 2048)):
        x = torch.randn(tokens, h, device=dev, dtype=torch.bfloat16)
        idx = torch.randint(0, tokens, (tokens * top_k,), device=dev)
        record("permute", f"T{tokens} K{top_k} H{h}", timed(lambda: x.index_select(0, idx)),
               nbytes=2.0 * tokens * top_k * h * 2, note="index_select gather")


for f in (copy, dense, grouped, router, permute):
    bench.safe(f)
with open(sys.argv[1] if len(sys.argv) > 1 else "torch.json", "w") as fh:
    json.dump({"torch": torch.__version__, "device": torch.cuda.get_device_name(), "rows": bench.rows}, fh,
              indent=1)
print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}")
bench.print_rows()
