#!/usr/bin/env python3
"""Host (CPU) time of PyTorch eager operations on a CUDA device: the microseconds the CPU spends issuing
one call (Python, the dispatcher, autograd recording, the kernel launch), and beside it the GPU time of
the same call. These are the inputs a host-side floor per layer needs: training frameworks built on
eager PyTorch (Megatron-Core without CUDA graphs) issue a few hundred such calls per MoE layer, and a
layer whose kernels take less GPU time than its calls take CPU time runs at the CPU's pace.

Method: tiny tensors (the GPU finishes each kernel in a few microseconds), 200 calls issued back to back
after a synchronisation and timed on the CPU (time.perf_counter_ns) without waiting for the GPU; 200
launches stay far below the launch queue's depth, so the CPU never waits on the GPU and the time is the
issuing cost alone. Median over 30 repetitions after 20 warm-up calls. The GPU side: CUDA events around the
same 200 calls, after the queue has drained, divided by 200 (the larger of the host and GPU times per call
is what a stream of such calls sustains). Backward: a chain of N recorded operations, loss.backward()
timed on the CPU the same way, per node. Writes a JSON document to the path given and prints a table.
"""
import json
import platform
import statistics
import sys
import time

import torch
import torch.nn.functional as F

CALLS, REPS, WARMUP = 200, 30, 20
dev = torch.device("cuda")
bf16 = torch.bfloat16


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def host_us(fn, calls=CALLS):
    """Median CPU microseconds per call of `calls` back-to-back calls, the GPU drained before each batch."""
    for _ in range(WARMUP):
        fn()
    torch.cuda.synchronize()
    samples = []
    for _ in range(REPS):
        torch.cuda.synchronize()
        t0 = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        t1 = time.perf_counter_ns()
        samples.append((t1 - t0) / calls / 1e3)
        torch.cuda.synchronize()
    return statistics.median(samples)


def gpu_us(fn):
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    samples = []
    for _ in range(5):
        torch.cuda.synchronize()
        start.record()
        for _ in range(CALLS):
            fn()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end) * 1e3 / CALLS)
    return statistics.median(samples)


def kernels_per_call(fn):
    # Kernels one call launches, from the profiler (0 when the profiler is unavailable).
    try:
        from torch.profiler import ProfilerActivity, profile
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(10):
                fn()
            torch.cuda.synchronize()
        n = sum(e.count for e in prof.key_averages() if e.device_type == torch.autograd.DeviceType.CUDA)
        return n / 10
    except Exception:  # noqa: BLE001 - a missing profiler leaves the count unknown, not the timing
        return 0.0


rows = []


def record(name, fn, note=""):
    try:
        h, g, k = host_us(fn), gpu_us(fn), kernels_per_call(fn)
        rows.append({"op": name, "host_us": h, "gpu_us": g, "kernels": k, "note": note})
        print(f"{name:34s} host {h:8.2f} us  gpu {g:8.2f} us  kernels {k:5.1f}  {note}", flush=True)
    except Exception as e:  # noqa: BLE001 - one op's failure is reported, the others still run
        rows.append({"op": name, "error": repr(e)})
        print(f"{name:34s} failed: {e!r}", flush=True)


x = torch.randn(16, 256, device=dev, dtype=bf16)
y = torch.randn(16, 256, device=dev, dtype=bf16)
w = torch.randn(256, 256, device=dev, dtype=bf16)
xg = x.clone().requires_grad_(True)
wg = w.clone().requires_grad_(True)
idx = torch.randint(0, 16, (32,), device=dev)
logits = torch.randn(16, 128, device=dev, dtype=torch.float32)

record("add", lambda: x + y, "elementwise, no autograd")
record("add_autograd", lambda: xg + y, "elementwise, recorded for backward")
record("mul_autograd", lambda: xg * y)
record("linear", lambda: F.linear(x, w), "cuBLAS GEMM 16x256x256")
record("linear_autograd", lambda: F.linear(xg, wg))
record("index_select_autograd", lambda: xg.index_select(0, idx), "permute-like gather")
record("topk", lambda: torch.topk(logits, 8, dim=-1), "router top-k")
record("softmax", lambda: torch.softmax(logits, dim=-1))
record("to_float", lambda: x.float(), "dtype cast")
lin = torch.nn.Linear(256, 256, device=dev, dtype=bf16)
record("nn_linear_module_autograd", lambda: lin(xg), "module call (hooks machinery)")
ev = torch.cuda.Event()
side = torch.cuda.Stream()
record("event_record_wait", lambda: (ev.record(), side.wait_event(ev)), "cross-stream sync, as combined 1F1B uses")
if hasattr(torch, "_grouped_mm"):
    a = torch.randn(64, 256, device=dev, dtype=bf16)
    b = torch.randn(4, 256, 256, device=dev, dtype=bf16).transpose(-2, -1)
    offs = torch.tensor([16, 32, 48, 64], device=dev, dtype=torch.int32)
    record("grouped_mm", lambda: torch._grouped_mm(a, b, offs=offs, out_dtype=bf16), "torch._grouped_mm, 4 groups")


def backward_chain(n):
    def run():
        h = xg
        for i in range(n):
            h = F.linear(h, wg) if i % 2 == 0 else h * y
        h.float().sum().backward()
    return run


for n in (10, 40):
    per_op = host_us(backward_chain(n), calls=1) / (n + 2)
    rows.append({"op": f"forward_backward_chain_{n}", "host_us_per_op": per_op, "ops": n + 2,
                 "note": "forward of n recorded ops (linear and mul alternating) + sum, then backward"})
    print(f"forward_backward_chain_{n:<14d} host {per_op:8.2f} us per op (forward and backward)", flush=True)

doc = {
    "tool": "tools/torch_host.py",
    "torch": torch.__version__,
    "cuda": torch.version.cuda,
    "device": torch.cuda.get_device_name(0),
    "cpu": cpu_model(),
    "python": platform.python_version(),
    "calls_per_repetition": CALLS,
    "repetitions": REPS,
    "rows": rows,
}
with open(sys.argv[1] if len(sys.argv) > 1 else "torch_host.json", "w") as f:
    json.dump(doc, f, indent=1)
