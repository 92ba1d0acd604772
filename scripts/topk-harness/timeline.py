#!/usr/bin/env python3
"""Write a copy of topk.cu with phase stamps for the harness's -DTIMELINE build.

    scripts/topk-harness/timeline.py OUT.cu
    KERNEL=OUT.cu scripts/topk-harness/build.sh tl512 512 1 -DTIMELINE

Thread 0 of each CTA stores %globaltimer after a block barrier at each phase boundary (the
barrier makes the stamp the CTA's, not one warp's): TL1 the row's length read, TL2 the scores
loaded (resident) or streamed, TL3 the key range, TL4 the cluster's published counts (P > 1),
TL5 the first digit, TL6 the list gathered, TL7 the remaining digits, TL8 the output offsets,
TL9 the write issued. A stamp's anchor that moved in topk.cu fails loudly.
"""
import pathlib, sys

SRC = pathlib.Path(__file__).resolve().parents[2] / "topk/src/kernels/topk.cu"
HEADER = """#ifdef TIMELINE
__device__ unsigned long long g_tl[65536 * 16];
__device__ __forceinline__ unsigned long long tl_now() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}
#define TL(i) do { __syncthreads(); if (threadIdx.x == 0) g_tl[blockIdx.x * 16 + (i)] = tl_now(); } while (0)
#define TL0(i) do { if (threadIdx.x == 0) g_tl[blockIdx.x * 16 + (i)] = tl_now(); } while (0)
#else
#define TL(i) do {} while (0)
#define TL0(i) do {} while (0)
#endif
"""
# (anchor, stamp inserted after it)
STAMPS = [
    ("  const u32 rank = blockIdx.x & (P - 1);\n", "  TL0(0);\n"),
    ("    return;\n  }\n  if (threadIdx.x == 0) { s.kth = 0; s.list_n = 0; s.map = map; }", "\n  TL(1);"),
    ("  const auto keys = keys_of<FULL>(raw, s0, s1, lo, hi);\n", "  TL(2);\n"),
    ("    if (!guess || st.seen >= (u32)p.k || st.seen == s1 - s0) break;  // else the guess was too high\n  }\n", "  TL(2);\n"),
    ("  bool below = false;\n  block_minmax(s, lo, hi);\n", "  TL(3);\n"),
    ("    if (above >= k && floor > lo) { lo = floor; cands = above; below = true; }\n", "    TL(4);\n"),
    ("  Digits d = start_digits(want, total, lo, hi, below);\n  select_passes(s, src, d, P, chist, 1);\n", "  TL(5);\n"),
    ("      const u32 n = list_prefix(s, src, d, rank, P);\n", "      TL(6);\n"),
    ("      select_passes(s, src, d, P, chist, 3);\n    }\n", "    TL(7);\n"),
    ("    base = __reduce_add_sync(0xffffffffu, lane_slot(s.gt_from, rank, 0u));\n  }\n", "  TL(8);\n"),
    ("    for (u32 j = min(total, k) + threadIdx.x; j < k; j += THREADS) out[j] = -1;\n}\n\n// A floor", None),
]

def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    s = SRC.read_text()
    for anchor, stamp in STAMPS:
        if s.count(anchor) != 1:
            sys.exit(f"timeline.py: anchor not found once in topk.cu: {anchor!r}")
        if stamp is None:  # TL9: before the closing brace of write_above
            s = s.replace(anchor, anchor.replace("-1;\n}\n", "-1;\n  TL(9);\n}\n"))
        else:
            s = s.replace(anchor, anchor + stamp)
    pathlib.Path(sys.argv[1]).write_text(HEADER + s)

if __name__ == "__main__":
    main()
