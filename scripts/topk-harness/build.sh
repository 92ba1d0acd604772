#!/usr/bin/env bash
# Build one harness binary on the GPU machine (nvcc there; minutes of staging saved):
#
#   scripts/topk-harness/build.sh NAME THREADS RESIDENT [nvcc flags...]
#
# NAME: the binary, $OUT_DIR/NAME (default /tmp/topk-harness); THREADS: 256, 512 or 1024;
# RESIDENT: 1 for the resident form (KMAX 4096), 0 for streaming (KMAX 2048). f32 scores.
# KEYS=32 builds the resident form with 32 scores a thread (default 16). KERNEL=path picks
# another copy of topk.cu (e.g. timeline.py's, built with -DTIMELINE).
# Example (the session-7 figures): build.sh s1024 1024 0 && PAD=2 /tmp/topk-harness/s1024 64 131072 2
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
name=$1 threads=$2 resident=$3
shift 3
kernel=${KERNEL:-$root/topk/src/kernels/topk.cu}
kmax=$([ "$resident" = 1 ] && echo 4096 || echo 2048)
out=${OUT_DIR:-/tmp/topk-harness}
mkdir -p "$out"
"${NVCC:-/usr/local/cuda/bin/nvcc}" -std=c++17 -gencode=arch=compute_90a,code=sm_90a -O3 \
  -I"$root/jit-cache/src" -I"$(dirname "$kernel")" "-DKFILE=\"$(basename "$kernel")\"" \
  -DTHREADS="$threads" -DKMAX="$kmax" -DVEC=4 -DSCORE_T=float -DSEGMENTS_RESIDENT="$resident" -DRESIDENT_KEYS="${KEYS:-16}" \
  -DDSA_ENTRY_TOPK=topk_main "-DTAG=\"$name\"" "$@" -o "$out/$name" "$here/harness.cu"
