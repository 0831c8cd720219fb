#!/usr/bin/env bash
# Seeds the fuzz corpora from the repository's own files: bash fuzz/seed.sh [CORPUS_DIR]
# (default build/fuzz/corpus), one folder per fuzz target. Seeds are copied, never committed twice;
# inputs the fuzzer already kept in a folder stay there.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/build/fuzz/corpus}"

# seed TARGET FILE...: copies every FILE into TARGET's folder, named after its path in the repository.
seed() {
  local target=$1 f rel
  shift
  mkdir -p "$out/$target"
  for f in "$@"; do
    rel=${f#"$root"/}
    cp "$f" "$out/$target/${rel//\//_}"
  done
}

seed scenario_fuzz "$root"/scenarios/examples/*.json "$root"/tests/data/des/*.json
seed hf_import_fuzz "$root"/tests/data/hf/*.json
seed calibration_fuzz "$root"/fuzz/seeds/calibration/*.json
seed trace_fuzz "$root"/traces/data/*.jsonl "$root"/fuzz/seeds/trace/*.jsonl
seed placement_weights_fuzz "$root"/fuzz/seeds/placement_weights/*.json
seed request_trace_fuzz "$root"/fuzz/seeds/requests/*.bin

# Megatron router traces (fuzz/megatron_fuzz.cpp): one byte of --experts, then the rank files
# separated by NUL bytes. The test folders' READMEs give their experts.
megatron() {
  local name=$1 experts=$2 dir=$3 first=1 f
  mkdir -p "$out/megatron_fuzz"
  {
    printf "\\x$(printf %02x "$experts")"
    for f in "$dir"/router_trace_rank*.jsonl; do
      ((first)) || printf '\0'
      first=0
      cat "$f"
    done
  } >"$out/megatron_fuzz/$name"
}
megatron tests_data_traces_megatron 4 "$root/tests/data/traces/megatron"
megatron tests_data_traces_megatron-moe-layers 16 "$root/tests/data/traces/megatron-moe-layers"

# Expert-count tables (fuzz/count_table_fuzz.cpp): a first line MODEL,KIND,DOMAIN,EXPERTS,TOP_K, then
# the CSV: the whole table once, then for a few selections the header and the selected rows only.
table="$root/tests/data/reference/olmoe_mixtral_expert_counts.csv"
mkdir -p "$out/count_table_fuzz"
{ echo olmoe,expert_counts,arxiv,64,8; cat "$table"; } >"$out/count_table_fuzz/whole-table"
for q in olmoe,expert_counts,arxiv,64,8 mistral,expert_counts,c4,8,2 olmoe,expert_counts_top1,book,64,1; do
  sel=${q%,*,*}
  { echo "$q"; grep -v '^#' "$table" | grep -E "^(model,|$sel,)"; } >"$out/count_table_fuzz/rows-${sel//,/-}"
done
echo "fuzz/seed.sh: seeded $(find "$out" -type f | wc -l) files under $out" >&2
