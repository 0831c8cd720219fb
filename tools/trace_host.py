#!/usr/bin/env python3
"""Host (CPU) time of a training step as a PyTorch Profiler trace recorded it, per annotated section,
and what a host floor at those rates would do to moesim's predictions.

  tools/trace_host.py TRACE.json                      # per section: host time and kernel launches
  tools/trace_host.py TRACE.json --floor F_US BW_US SCENARIO.json...
                                                      # per scenario: its layers' passes held to the host's pace

Per section (a `user_annotation` event, e.g. DeepSeek's attn(F), mlp(B), dispatch(F)): its wall time on
the thread that issued it; the host time, which is the wall time less the idle gaps longer than 1 ms on
the busiest thread in the section (the host waiting for the GPU, e.g. for the received-token count of an
expert dispatch, not issuing anything); the kernel launches it made (cudaLaunchKernel, cudaLaunchKernelExC,
cuLaunchKernel) and the host time per launch; the mean over the section's occurrences after the first
(the first is warm-up). The profiler's own cost per recorded event is included: an upper bound.

--floor: runs `moesim run SCENARIO --ops --format json` (build/dev/cli/moesim unless MOESIM names
another binary) and, for every pipeline rank, layer and pass (forward; backward-input and weight together),
compares the summed op seconds with the op count times the host time per op given (µs, forward and
backward). Prints per scenario the busiest rank's op seconds per step and what a floor max(GPU, host) per
layer pass adds to them. An estimate of the floor's size, not a schedule: overlap and the bubble are left
as they are.
"""
import json
import os
import statistics
import subprocess
import sys
from collections import defaultdict

LAUNCHES = ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx")
WAIT_GAP_US = 1000.0


def sections(path):
    trace = json.load(open(path))
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    spans = [e for e in events if e.get("ph") == "X" and "dur" in e]
    host = [e for e in spans if e.get("cat") in ("cpu_op", "cuda_runtime", "cuda_driver")]
    marks = [e for e in spans if e.get("cat") == "user_annotation" and not e["name"].startswith("ProfilerStep")]
    # Outermost annotations only hold others (e.g. a whole schedule); keep the innermost ones.
    inner = [m for m in marks
             if not any(o is not m and m["ts"] <= o["ts"] and o["ts"] + o["dur"] <= m["ts"] + m["dur"]
                        for o in marks)]
    by_thread = defaultdict(list)
    for e in host:
        by_thread[(e["pid"], e["tid"])].append(e)
    for v in by_thread.values():
        v.sort(key=lambda e: e["ts"])
    rows = defaultdict(list)
    for m in sorted(inner, key=lambda e: e["ts"]):
        s, f = m["ts"], m["ts"] + m["dur"]
        busiest, best = None, -1.0
        for key, evs in by_thread.items():
            busy = sum(min(e["ts"] + e["dur"], f) - e["ts"] for e in evs if s <= e["ts"] < f)
            if busy > best:
                busiest, best = key, busy
        evs = [e for e in by_thread[busiest] if s <= e["ts"] < f] if busiest else []
        points = sorted([s, f] + [x for e in evs for x in (e["ts"], min(e["ts"] + e["dur"], f))])
        waits = sum(b - a for a, b in zip(points, points[1:]) if b - a > WAIT_GAP_US)
        launches = sum(1 for e in evs if e["name"] in LAUNCHES)
        rows[m["name"]].append((m["dur"], m["dur"] - waits, launches))
    return rows


def print_sections(rows):
    print(f"{'section':16s} {'n':>3s} {'wall us':>9s} {'host us':>9s} {'launches':>9s} {'host us/launch':>15s}")
    for name, occ in rows.items():
        use = occ[1:] if len(occ) > 1 else occ
        wall = statistics.mean(o[0] for o in use)
        hostt = statistics.mean(o[1] for o in use)
        launches = statistics.mean(o[2] for o in use)
        per = f"{hostt / launches:15.1f}" if launches else f"{'-':>15s}"
        print(f"{name:16s} {len(occ):3d} {wall:9.0f} {hostt:9.0f} {launches:9.1f} {per}")


def floor(f_us, bw_us, scenarios):
    binary = os.environ.get("MOESIM", "build/dev/cli/moesim")
    print(f"host per op: forward {f_us:g} us, backward {bw_us:g} us")
    for path in scenarios:
        out = subprocess.run([binary, "run", path, "--ops", "--format", "json"], capture_output=True, text=True)
        try:
            ops = json.loads(out.stdout)
        except json.JSONDecodeError:
            print(f"{path}: no op table ({out.stderr.strip()[:120]})")
            continue
        if not isinstance(ops, list) or not ops or "pp_rank" not in ops[0]:
            print(f"{path}: not a training scenario")
            continue
        passes = defaultdict(lambda: [0.0, 0, 0.0])
        for r in ops:
            k = (r["pp_rank"], r["layer"], "F" if r["pass"] == "F" else "BW")
            passes[k][0] += r["seconds"]
            passes[k][1] += 1
            passes[k][2] = r["count"]
        gpu, extra = defaultdict(float), defaultdict(float)
        for (rank, _, p), (sec, n, count) in passes.items():
            host = n * (f_us if p == "F" else bw_us) * 1e-6
            gpu[rank] += sec * count
            extra[rank] += max(0.0, host - sec) * count
        rank = max(gpu, key=gpu.get)
        name = os.path.basename(path).removesuffix(".json")
        print(f"{name:46s} op seconds {gpu[rank]:8.2f}  host floor adds {extra[rank]:6.2f} "
              f"(+{100 * extra[rank] / gpu[rank]:.0f} %)")


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    print_sections(sections(argv[1]))
    if len(argv) > 2 and argv[2] == "--floor":
        if len(argv) < 6:
            sys.exit(__doc__)
        floor(float(argv[3]), float(argv[4]), argv[5:])


if __name__ == "__main__":
    main(sys.argv)
