#!/usr/bin/env bash
# `moesim report` opened in a real browser: headless Chromium (Debian's chromium) loads the report of a
# run (analytic), a run (discrete-event: timeline and links), a merged sweep, a plan, a comparison, a replay, the
# accuracy suite and two serving runs (analytic; discrete-event with per-request latencies), each offline from its one file; every chart must have drawn (its container reaches
# data-state="drawn" with marks in its SVG), the page must log no error and no warning, and the table
# beside each chart must hold rows. A screenshot of each report is kept in WORK_DIR.
#   bash tests/report_browser_test.sh MOESIM SOURCE_DIR WORK_DIR
set -euo pipefail
moesim=$1 src=$2 work=$3
fail() { echo "report_browser_test: $*" >&2; exit 1; }
browser=$(command -v chromium || command -v chromium-browser || true)
[[ -n $browser ]] || fail "needs chromium (bash tools/setup.sh installs it), or leave this test out with ctest -LE browser"

rm -rf "$work"
mkdir -p "$work"
run() { "$@" >"$work/last.out" 2>"$work/last.err" || { cat "$work/last.err" >&2; fail "failed: $*"; }; }

# The folders: each written by the command users run.
run "$moesim" run "$src/scenarios/examples/mixtral-8x7b-64xH100.json" --out "$work/run" --report
run "$moesim" run "$src/scenarios/examples/olmoe-1b-7b-16xA100.json" --engine des --out "$work/des"
run "$moesim" report "$work/des"
run "$moesim" sweep "$src/scenarios/sweeps/olmoe-ep-batch.json" --out "$work/sweep" -j 2
run "$moesim" report merge "$work/sweep"
run "$moesim" report "$work/sweep"
# plan, compare and accuracy write their JSON and the page with --report.
run "$moesim" plan "$src/scenarios/plans/qwen3-30b-h100.json" --confirm 0 --report "$work/plan"
run "$moesim" compare "$src/scenarios/examples/mixtral-8x7b-64xH100.json" --report "$work/compare"
run "$moesim" accuracy --engine analytic --report "$work/accuracy"
run "$moesim" run "$src/scenarios/examples/serving/deepseek-v3-h800-disaggregated.json" --out "$work/serving" --report
run "$moesim" run "$src/scenarios/examples/serving/qwen3-30b-a3b-h100-colocated.json" --out "$work/serving-des" --report
run "$moesim" replay "$src/traces/data/olmoe-1b-7b-arxiv.jsonl" "$src/scenarios/examples/olmoe-arxiv-replay-16xH100.json" \
  --report "$work/replay"

# Charts each report must show (ids), beyond which any extra chart must also draw.
declare -A want=(
  [run]="breakdown phases layers expert-load gpu-load node-traffic ops"
  [des]="breakdown phases layers expert-load gpu-load node-traffic ops links timeline"
  [sweep]="sweep sweep-points"
  [plan]="plans pareto pareto-energy tornado"
  [compare]="compare"
  [replay]="replay-steps replay-layers"
  [accuracy]="accuracy"
  [serving]="serving-latency serving-iteration serving-ops"
  [serving-des]="serving-latency serving-iteration serving-kv serving-expert-load serving-requests")
for kind in run des sweep plan compare replay accuracy serving serving-des; do
  page="$work/$kind/report.html"
  [[ -s $page ]] || fail "$kind: no report.html"
  for id in ${want[$kind]}; do
    [[ -s "$work/$kind/report-specs/$id.vl.json" ]] || fail "$kind: no report-specs/$id.vl.json"
  done
  timeout 180 "$browser" --headless --no-sandbox --disable-gpu --virtual-time-budget=20000 \
    --dump-dom "file://$page" >"$work/$kind.dom" 2>"$work/$kind.browser.log" ||
    fail "$kind: chromium failed (log: $work/$kind.browser.log)"
  python3 - "$work/$kind.dom" "$kind" ${want[$kind]} <<'PY' || fail "$kind: see above"
import re, sys
dom, kind, want = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3:]
body = re.search(r"<body([^>]*)>", dom)
assert body, f"{kind}: no body in the DOM"
attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(1)))
errors = int(attrs.get("console-errors", "-1")); warnings = int(attrs.get("console-warnings", "-1"))
ok = True
if errors != 0 or warnings != 0:
    print(f"{kind}: console errors {errors}, warnings {warnings}: {attrs.get('last-error', '')} {attrs.get('last-warning', '')}")
    ok = False
charts = {}
for a in re.findall(r"<div ([^>]*\bid=\"chart-[^\"]+\"[^>]*)>", dom):
    d = dict(re.findall(r'([a-z-]+)="([^"]*)"', a))
    charts[d["id"][len("chart-"):]] = d
for c in want:
    if c not in charts:
        print(f"{kind}: chart {c} missing"); ok = False
for c, d in charts.items():
    if d.get("data-state") != "drawn" or int(d.get("data-marks", "0")) < 1:
        print(f"{kind}: chart {c} not drawn: state {d.get('data-state')}, marks {d.get('data-marks')}, {d.get('data-error', '')}")
        ok = False
tables = re.findall(r"<tbody>(.*?)</tbody>", dom, re.S)
if len(tables) != len(charts) or any("<tr>" not in t for t in tables):
    print(f"{kind}: {len(tables)} tables for {len(charts)} charts, or an empty one"); ok = False
print(f"{kind}: {len(charts)} charts drawn: " + ", ".join(f"{c} ({d.get('data-marks')} marks)" for c, d in charts.items()))
sys.exit(0 if ok else 1)
PY
  timeout 180 "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --virtual-time-budget=20000 \
    --window-size=1200,2400 --screenshot="$work/$kind.png" "file://$page" >/dev/null 2>>"$work/$kind.browser.log" ||
    fail "$kind: screenshot failed"
  [[ -s "$work/$kind.png" ]] || fail "$kind: empty screenshot"
done
echo "report_browser_test: every chart of nine reports drawn; screenshots in $work"
