#!/usr/bin/env python3
"""The kernel figures of a profiling run, from the profile file `moesim calibrate --measurements` writes
(and, when given, the calibration fitted from it and tools/torch_kernels.py's JSON): the copy ceiling;
per point the router's time, permute, SwiGLU and combine as TB/s and as a share of the copy ceiling, the
expert GEMMs of each backend against the dense cuBLAS GEMM of the same total rows, and the whole layer
against the sum of its kernels; the calibration's held-out errors; PyTorch's kernels beside them.

  tools/kernel_figures.py PROFILE.json [CALIBRATION.json] [TORCH.json]
"""
import json
import statistics
import sys
from collections import defaultdict


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    prof = json.load(open(argv[1]))
    ms = prof["measurements"]
    dev = prof["device"]
    print(f"device: {dev['name']}, {dev['sm_count']} SMs, SM clock {dev.get('sm_clock_mhz', 0)} MHz, "
          f"driver {dev.get('driver_version', '?')}, CUDA {dev.get('cuda_version', '?')}, {dev.get('date', '')}")
    copy = {}
    for m in ms:
        if m["family"] == "copy":
            copy.setdefault(m["variant"], []).append(m["bytes"] / m["median_s"] / 1e12)
    ceiling = max(copy.get("cuda_memcpy", [0]))
    for v, rates in sorted(copy.items()):
        print(f"copy {v:12s} {' '.join(f'{r:.2f}' for r in rates)} TB/s (read + write)")
    print(f"copy ceiling: {ceiling:.2f} TB/s\n")

    by_point = defaultdict(list)
    for m in ms:
        if m.get("point"):
            by_point[m["point"]].append(m)
    print(f"{'point':22s} {'T':>6s} {'router us':>9s} {'permute':>13s} {'swiglu':>13s} {'combine':>13s}")
    for point, pm in by_point.items():
        for t in sorted({m["m"] for m in pm if m["family"] == "router"}):
            # one line per token count (the first skew of that count)
            router = [m for m in pm if m["family"] == "router" and m["m"] == t]
            idx = pm.index(router[0])
            group = pm[idx:idx + 8]  # the kernels measured right after that router
            cells = []
            for fam, variant in (("permute", "ours"), ("swiglu", "ours"), ("combine", "ours")):
                x = next((m for m in group if m["family"] == fam and m["variant"] == variant), None)
                if x is None:
                    cells.append(f"{'-':>13s}")
                    continue
                r = x["bytes"] / x["median_s"] / 1e12
                cells.append(f"{r:5.2f} ({100 * r / ceiling:3.0f}%)")
            print(f"{point:22s} {t:6.0f} {router[0]['median_s'] * 1e6:9.1f} {' '.join(cells)}")

    print("\nexpert GEMMs against the dense cuBLAS GEMM of the same total rows (TFLOP/s; ratio to dense):")
    gemms = [m for m in ms if m["family"] in ("grouped_gemm", "dense_gemm")]
    shapes = defaultdict(dict)
    order = []
    for m in gemms:
        key = (m.get("point", ""), m["m"], m["n"], m["k"], max(m["rows"]) if m["rows"] else None)
        if m["family"] == "dense_gemm":
            # the dense line closes the group of backends measured just before it
            for k in reversed(order):
                if k[:4] == key[:4] and "dense" not in shapes[k]:
                    shapes[k]["dense"] = m
                    break
            continue
        if key not in shapes:
            order.append(key)
        shapes[key][m["variant"]] = m
    backends = ["cublas_per_expert", "cublas_strided_batched", "cublas_grouped"]
    print(f"{'point':22s} {'rows':>7s} {'n':>6s} {'k':>6s} {'max/exp':>7s} " +
          " ".join(f"{b[7:]:>17s}" for b in backends) + f" {'dense':>7s}")
    ratios = defaultdict(list)
    for key in order:
        s = shapes[key]
        d = s.get("dense")
        dense_tf = d["flops"] / d["median_s"] / 1e12 if d else 0
        cells = []
        for b in backends:
            x = s.get(b)
            if x is None or not x["flops"]:
                cells.append(f"{'-':>17s}")
                continue
            tf = x["flops"] / x["median_s"] / 1e12
            if dense_tf:
                ratios[b].append(tf / dense_tf)
            cells.append(f"{tf:6.0f} ({tf / dense_tf if dense_tf else 0:4.2f})   ")
        print(f"{key[0]:22s} {key[1]:7.0f} {key[2]:6.0f} {key[3]:6.0f} {key[4]:7.0f} {' '.join(cells)} {dense_tf:7.0f}")
    for b, r in ratios.items():
        print(f"  {b}: median {statistics.median(r):.2f} of dense (range {min(r):.2f}-{max(r):.2f})")

    print("\nwhole layers (event time, launch gaps and host syncs included) against the sum of their kernels:")
    for layer in prof["layers"]:
        total = sum(ms[i]["median_s"] for i in layer["components"])
        print(f"  {layer['name']:80s} {layer['measured_s'] * 1e6:9.1f} us {total * 1e6:9.1f} us "
              f"x{layer['measured_s'] / total:.2f}")

    if len(argv) > 2 and argv[2]:
        cal = json.load(open(argv[2]))
        print("\nheld-out error per family (median / p95 / max):")
        for fam, e in cal["held_out"]["families"].items():
            if e["count"]:
                print(f"  {fam:13s} {e['count']:3d}  {100 * e['median_rel_error']:5.1f}% {100 * e['p95_rel_error']:5.1f}%"
                      f" {100 * e['max_rel_error']:5.1f}%")
    if len(argv) > 3 and argv[3]:
        t = json.load(open(argv[3]))
        print(f"\nPyTorch {t['torch']} on {t['device']}:")
        for r in t["rows"]:
            rate = f"{r['tflops']:.0f} TF/s" if "tflops" in r else (f"{r['tbps']:.2f} TB/s" if "tbps" in r else "")
            print(f"  {r['kind']:13s} {r['shape']:34s} {r['median_us']:9.1f} us {rate:>10s}  {r['note']}")


main(sys.argv)
