"""Timing, kernel names, CUDA-graph capture and result rows shared by tools/torch_*.py: CUDA events
around each call, the L2 flushed by a 256 MiB write before each repetition, the median of `reps` after
`warmup` calls; a failing measurement becomes an error row instead of ending the script."""
import statistics

import torch


class Bench:
    def __init__(self, reps, warmup):
        self.reps, self.warmup = reps, warmup
        self.flush = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")
        self.rows = []

    def timed(self, fn):
        for _ in range(self.warmup):
            fn()
        times = []
        for _ in range(self.reps):
            self.flush.zero_()
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b) * 1e-3)
        return statistics.median(times)

    def record(self, kind, shape, seconds, flops=0.0, nbytes=0.0, note="", names=""):
        r = {"kind": kind, "shape": shape, "median_us": seconds * 1e6, "note": note, "kernels": names}
        if flops:
            r["tflops"] = flops / seconds / 1e12
        if nbytes:
            r["tbps"] = nbytes / seconds / 1e12
        self.rows.append(r)

    def safe(self, fn, name=None):
        try:
            fn()
        except Exception as e:  # one failing kernel must not hide the others
            self.rows.append({"kind": "error", "shape": name or fn.__name__, "median_us": 0, "note": repr(e)[:300],
                              "kernels": ""})

    def print_rows(self, width=34):
        for r in self.rows:
            rate = f"{r['tflops']:.0f} TF/s" if "tflops" in r else (f"{r['tbps']:.2f} TB/s" if "tbps" in r else "")
            print(f"{r['kind']:17s} {r['shape']:{width}s} {r['median_us']:10.1f} us {rate:>11s}  {r['note'][:60]}"
                  f"  {r['kernels'][:90]}")


def kernels(fn):
    """Names of the GPU kernels one call runs (torch.profiler)."""
    try:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            fn()
            torch.cuda.synchronize()
        names = [e.name for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        seen = []
        for n in names:
            if n not in seen:
                seen.append(n)
        return " | ".join(x[:70] for x in seen[:4])
    except Exception as e:  # the profiler is a label, not a figure
        return f"profiler: {e!r}"[:80]


def graphed(fn):
    """fn captured in a CUDA graph (after a warm-up on a side stream); returns the replay."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    return g.replay
