#!/usr/bin/env bash
# Long fuzzing runs as fuzz/README.md records them: each target in turn, one process, from
# the committed seeds plus its growing corpus (fuzz/corpus/<target>, not committed), until
# RUNS executions or SECONDS_PER_TARGET seconds. One summary line per target on stdout.
#   fuzz/run.sh [target ...]      (build first: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz build -s none -a)
set -uo pipefail
cd "$(dirname "$0")"
RUNS=${RUNS:-1000000}
SECONDS_PER_TARGET=${SECONDS_PER_TARGET:-3600}
BIN=target/x86_64-unknown-linux-gnu/release
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(npy safetensors pt_zip rle png_mask manifest train_config sam1_pth image sa1b_json coco_json)
mkdir -p logs
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  "$BIN/$t" "corpus/$t" "seeds/$t" -runs="$RUNS" -max_total_time="$SECONDS_PER_TARGET" \
    -rss_limit_mb=2048 -timeout=1 -max_len=262144 -print_final_stats=1 \
    -artifact_prefix="artifacts/$t/" > "logs/$t.log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "logs/$t.log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "logs/$t.log" | tail -1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "logs/$t.log" | tail -1)
  last=$(grep -E '^#[0-9]+' "logs/$t.log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last"); ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  crashes=$(find "artifacts/$t" -type f | wc -l)
  echo "$t exit=$rc execs=$execs exec/s=$rate cov=$cov ft=$ft peak_rss_mb=$rss findings=$crashes"
done
