#!/usr/bin/env bash
# A/B of kernel copies on the goal shapes, in one device call (nvcc there):
#
#   [TRANSFORMS="0 2"] [ITERS=100] [ROUNDS=1] [SHAPES=...] scripts/topk-harness/ab.sh A.cu B.cu [C.cu ...]
#
# Each copy of topk.cu is built (in parallel) as the variant the plan takes for each shape
# below, then every shape runs with each copy in turn (interleaved, so clock and thermal drift
# hit them alike), once per transform in TRANSFORMS (0 plain, 1 ragged, 2 paged) and round.
# Every run also checks sampled rows against the CPU (the harness prints "ok" or the mismatch);
# DATA=1 (NaN, +-inf, +-0 mixed in) or DATA=2 (ties) passes to the harness.
# SHAPES replaces the shape list, one shape a line: "THREADS RESIDENT KEYS ROWS LEN P K CAUSAL".
# A copy is named by its file name without .cu. Example, the committed kernel against an edit:
#   git show HEAD:topk/src/kernels/topk.cu > .devbin/extra/base.cu
#   cp topk/src/kernels/topk.cu .devbin/extra/new.cu
#   scripts/topk-harness/ab.sh .devbin/extra/base.cu .devbin/extra/new.cu
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT_DIR:-/tmp/topk-ab}
mkdir -p "$out"
# shape: variant (threads, resident, keys a thread) and harness arguments (rows len P k causal)
shapes=(
  "256 1 32 1024 8192 1 2048 0"
  "256 1 16 4096 4096 1 2048 1"
  "512 1 16 1 8192 1 2048 0"
  "512 1 16 1 131072 16 2048 0"
  "512 1 32 8 131072 8 2048 0"
  "1024 0 16 64 131072 2 2048 0"
  "512 0 16 256 131072 1 2048 0"
)
[ -n "${SHAPES:-}" ] && mapfile -t shapes <<<"$SHAPES"
name() { basename "$1" .cu; }
kernels=("$@")
declare -A building
for k in "${kernels[@]}"; do
  for s in "${shapes[@]}"; do
    read -r threads resident keys _ <<<"$s"
    bin="$(name "$k")_${threads}_${resident}_$keys"
    [ -n "${building[$bin]:-}" ] && continue
    building[$bin]=1
    KEYS=$keys KERNEL=$(realpath "$k") OUT_DIR=$out "$here/build.sh" "$bin" "$threads" "$resident" \
      >"$out/$bin.log" 2>&1 || echo "build failed: $bin ($out/$bin.log)" &
  done
done
wait
for round in $(seq "${ROUNDS:-1}"); do
  for s in "${shapes[@]}"; do
    read -r threads resident keys rows len P k causal <<<"$s"
    for t in ${TRANSFORMS:-0 2}; do
      for kern in "${kernels[@]}"; do
        printf '%-10s ' "$(name "$kern")"
        TRANSFORM=$t "$out/$(name "$kern")_${threads}_${resident}_$keys" "$rows" "$len" "$P" "$k" \
          "$causal" "${ITERS:-100}" | tail -1
      done
    done
  done
done
