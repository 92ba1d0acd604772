// Deterministic radix top-k: one pass over HBM, exact total order, index-ordered output.
//
// Compile-time parameters (from the Rust variant): SCORE_T (float / dsa::bf16 / dsa::f16),
// VEC (scores per 16-byte load), THREADS (block size), KMAX (largest k), CAP (buffer entries).
//
// Per row (or per part of a row) one block streams the candidates once, in index order, chunk by
// chunk (THREADS*VEC consecutive positions). Elements that can still be in the top-k (by the
// threshold found so far) are appended to a shared-memory buffer in index order (block prefix
// sums, no atomics), so the buffer is always sorted by index. When the next chunk would not fit,
// the buffer is compacted to its exact top-k: a radix select on the 32-bit order key finds the
// k-th key K and how many of the elements equal to K to keep; the kept equal elements are the
// first (tie small) or last (tie large) ones in index order. Afterwards only keys > K (tie small)
// or >= K (tie large) can enter. The result is a pure function of the row.
//
// With several parts per row (few long rows), SELECT writes each part's top-k (keys and indices,
// index order) to the workspace and MERGE streams the parts of a row in order through the same
// machinery, which gives the same set and order as one block over the whole row.

namespace topk {

struct Params {
  const void* scores;
  const i32* lengths;
  const i32* row_starts;  // may be null
  i32* out;
  u32* ws_keys;           // [rows][parts][KMAX]
  u32* ws_idx;            // [rows][parts][KMAX]
  i32* ws_count;          // [rows][parts]
  const i32* offsets;     // ragged transform: per-row offset
  const i32* page_table;  // paged transform: [num_req][pt_stride]
  const i32* req_map;     // paged: per-row request (null: use cu_seqlens)
  const i32* cu_seqlens;  // paged: [num_req + 1] row boundaries of each request
  i64 stride;             // elements between rows of `scores`
  i64 pt_stride;          // entries between rows of `page_table`
  i32 rows;
  i32 k;
  i32 parts;
  i32 tie_large;          // 0: equal keys prefer the smaller index, 1: the larger
  i32 sorted;             // 0: ascending index, 1: by the total order
  i32 transform;          // 0: none, 1: ragged, 2: paged
  i32 page_log2;          // paged: log2(page size)
  i32 num_req;            // paged: rows of page_table
  i32 pt_cols;            // paged: valid columns per page_table row
  i32 pad_;
};

// Order-preserving key: larger float -> larger key. -0.0 == +0.0; every NaN is one value,
// above +inf (torch.topk's order).
__device__ __forceinline__ u32 order_key(float f) {
  u32 b = __float_as_uint(f);
  if ((b & 0x7fffffffu) > 0x7f800000u) b = 0x7fffffffu;
  if (b == 0x80000000u) b = 0u;
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

constexpr int WARPS = THREADS / 32;
constexpr int RUN = CAP / THREADS;  // buffer entries per thread in compaction
static_assert(CAP % THREADS == 0, "CAP must be a multiple of THREADS");
static_assert(CAP >= KMAX + THREADS * VEC, "buffer must hold k plus one chunk");

struct Shared {
  u32 keys[CAP];
  u32 idx[CAP];
  u32 hist[256];
  u32 warp_tot[WARPS];
  u32 sel_bin, sel_need, sel_eq;
};

// Exclusive block-wide prefix sum of `v` (any u32 packing that does not overflow); returns the
// thread's exclusive prefix and writes the block total. Ends with a barrier, so warp_tot may be
// reused right after.
__device__ __forceinline__ u32 block_scan(Shared& s, u32 v, u32& total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  u32 x = v;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    u32 y = __shfl_up_sync(0xffffffffu, x, o);
    if (lane >= o) x += y;
  }
  if (lane == 31) s.warp_tot[warp] = x;
  __syncthreads();
  if (warp == 0) {
    u32 w = lane < WARPS ? s.warp_tot[lane] : 0u;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      u32 y = __shfl_up_sync(0xffffffffu, w, o);
      if (lane >= o) w += y;
    }
    if (lane < WARPS) s.warp_tot[lane] = w;  // inclusive
  }
  __syncthreads();
  u32 before = (warp > 0 ? s.warp_tot[warp - 1] : 0u) + x - v;
  total = s.warp_tot[WARPS - 1];
  __syncthreads();
  return before;
}

// The selection state of one block: buffer fill and the admission bound.
struct State {
  int n;      // entries in the buffer
  u64 admit;  // only keys >= admit can still be in the top-k (0: admit everything)
};

__device__ __forceinline__ bool admits(const State& st, u32 key) { return (u64)key >= st.admit; }

// The k-th largest key of the buffer, found by radix select (8-bit digits, most significant
// first). Either exact: K, with `need` of the `eq` elements equal to K in the top-k; or, when a
// digit bin is taken whole, a bound `low` such that exactly k elements have key >= low.
struct Kth {
  bool exact;
  u32 K, need, eq;
  u64 low;
};

__device__ Kth select_kth(Shared& s, int n, int k) {
  u32 prefix = 0, mask = 0, want = (u32)k, eq = 0;
  const int lane = threadIdx.x & 31;
#pragma unroll 1
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = threadIdx.x; b < 256; b += THREADS) s.hist[b] = 0;
    __syncthreads();
    // Warp-aggregated counting: lanes with the same digit add once (data concentrated in a
    // few bins would otherwise serialise on one shared-memory address).
    for (int base = 0; base < n; base += THREADS) {
      const int i = base + threadIdx.x;
      const u32 key = i < n ? s.keys[i] : 0u;
      const bool act = i < n && ((key ^ prefix) & mask) == 0;
      const u32 digit = (key >> shift) & 255u;
      const u32 peers = __match_any_sync(0xffffffffu, act ? digit : (0x100u | lane));
      if (act && (__ffs(peers) - 1) == lane) atomicAdd(&s.hist[digit], __popc(peers));
    }
    __syncthreads();
    if (threadIdx.x < 32) {
      // Lane l owns bins 255-8l .. 248-8l (descending); find the bin where the running count
      // from the top reaches `want`.
      u32 c[8], sum = 0;
#pragma unroll
      for (int j = 0; j < 8; ++j) { c[j] = s.hist[255 - 8 * lane - j]; sum += c[j]; }
      u32 incl = sum;
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {
        u32 y = __shfl_up_sync(0xffffffffu, incl, o);
        if (lane >= o) incl += y;
      }
      u32 above = incl - sum;
      if (above < want && want <= incl) {
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          if (above < want && want <= above + c[j]) {
            s.sel_bin = 255 - 8 * lane - j;
            s.sel_need = want - above;
            s.sel_eq = c[j];
          }
          above += c[j];
        }
      }
    }
    __syncthreads();
    const u32 bin = s.sel_bin, need = s.sel_need;
    eq = s.sel_eq;
    __syncthreads();  // everyone has read sel_* before the next pass may overwrite them
    prefix |= bin << shift;
    mask |= 255u << shift;
    want = need;
    if (need == eq && shift > 0) return Kth{false, 0u, 0u, 0u, (u64)prefix};  // bin taken whole
  }
  return Kth{true, prefix, want, eq, 0ull};
}

// Keep exactly the top-k of the buffer, in index order, and raise the admission bound.
__device__ void compact(Shared& s, State& st, int k, bool tie_large) {
  const Kth t = select_kth(s, st.n, k);
  // Kept: key >= gt_from, plus (exact only) the window [lo, hi) of the elements equal to K in
  // index order: the first `need` (tie small) or the last `need` (tie large).
  const u64 gt_from = t.exact ? (u64)t.K + 1 : t.low;
  const u32 lo = t.exact && tie_large ? t.eq - t.need : 0u;
  const u32 hi = t.exact ? (tie_large ? t.eq : t.need) : 0u;
  u32 kr[RUN], ir[RUN];
  u32 gt = 0, e = 0;
  const int base = threadIdx.x * RUN;
#pragma unroll
  for (int j = 0; j < RUN; ++j) {
    const int i = base + j;
    kr[j] = i < st.n ? s.keys[i] : 0u;
    ir[j] = i < st.n ? s.idx[i] : 0u;
    gt += (i < st.n && (u64)kr[j] >= gt_from);
    e += (i < st.n && t.exact && kr[j] == t.K);
  }
  u32 total;
  const u32 before = block_scan(s, gt | (e << 16), total);  // also the barrier after reads
  u32 gt_before = before & 0xffffu, eq_before = before >> 16;
#pragma unroll
  for (int j = 0; j < RUN; ++j) {
    const int i = base + j;
    if (i < st.n) {
      const bool is_gt = (u64)kr[j] >= gt_from, is_eq = t.exact && kr[j] == t.K;
      if (is_gt || (is_eq && eq_before >= lo && eq_before < hi)) {
        const u32 pos = gt_before + (min(max(eq_before, lo), hi) - lo);
        s.keys[pos] = kr[j];
        s.idx[pos] = ir[j];
      }
      gt_before += is_gt;
      eq_before += is_eq;
    }
  }
  __syncthreads();
  st.n = k;
  // Exact: later elements (larger indices) beat the k-th only with a larger key, or an equal
  // one under tie large. Bound: anything below `low` cannot enter.
  st.admit = t.exact ? (u64)t.K + (tie_large ? 0 : 1) : t.low;
}

// Append this thread's admitted elements (bit v of `mask`) in index order; compacts first when
// the chunk would overflow the buffer. `keys`/`pos` hold the thread's VEC candidates.
__device__ __forceinline__ void append(Shared& s, State& st, int k, bool tie_large,
                                       const u32 (&keys)[VEC], const u32 (&pos)[VEC], u32 valid) {
  u32 mask = 0;
#pragma unroll
  for (int v = 0; v < VEC; ++v)
    if (((valid >> v) & 1u) && admits(st, keys[v])) mask |= 1u << v;
  u32 total;
  u32 before = block_scan(s, __popc(mask), total);
  if (st.n + (int)total > CAP) {
    compact(s, st, k, tie_large);
    mask = 0;
#pragma unroll
    for (int v = 0; v < VEC; ++v)
      if (((valid >> v) & 1u) && admits(st, keys[v])) mask |= 1u << v;
    before = block_scan(s, __popc(mask), total);
  }
  u32 at = st.n + before;
#pragma unroll
  for (int v = 0; v < VEC; ++v) {
    if ((mask >> v) & 1u) {
      s.keys[at] = keys[v];
      s.idx[at] = pos[v];
      ++at;
    }
  }
  st.n += (int)total;
  __syncthreads();
}

// Load VEC scores at positions [p0, p0+VEC) of a row, keeping those in [lo, hi).
__device__ __forceinline__ void load_scores(const SCORE_T* row, i64 p0, i64 lo, i64 hi,
                                            u32 (&keys)[VEC], u32 (&pos)[VEC], u32& valid) {
  valid = 0;
  if (p0 >= lo && p0 + VEC <= hi && ((reinterpret_cast<u64>(row + p0) & 15u) == 0)) {
    union { uint4 v; SCORE_T s[VEC]; } u;
    u.v = __ldg(reinterpret_cast<const uint4*>(row + p0));
#pragma unroll
    for (int v = 0; v < VEC; ++v) keys[v] = order_key(dsa::to_float(u.s[v]));
    valid = (1u << VEC) - 1u;
  } else {
#pragma unroll
    for (int v = 0; v < VEC; ++v) {
      i64 p = p0 + v;
      keys[v] = 0;
      if (p >= lo && p < hi) {
        keys[v] = order_key(dsa::to_float(row[p]));
        valid |= 1u << v;
      }
    }
  }
#pragma unroll
  for (int v = 0; v < VEC; ++v) pos[v] = (u32)(p0 + v);
}

// The row's candidate window after clamping what the host cannot see: start in [0, stride],
// length in [0, stride - start].
__device__ __forceinline__ void row_window(const Params& p, int row, i64& start, i64& len) {
  start = p.row_starts ? (i64)p.row_starts[row] : 0;
  start = start < 0 ? 0 : (start > p.stride ? p.stride : start);
  len = (i64)p.lengths[row];
  len = len < 0 ? 0 : (len > p.stride - start ? p.stride - start : len);
}

__device__ __forceinline__ int find_request(const Params& p, int row) {
  if (p.req_map) return p.req_map[row];
  int lo = 0, hi = p.num_req;  // largest r with cu_seqlens[r] <= row
  while (hi - lo > 1) {
    int mid = (lo + hi) >> 1;
    if (p.cu_seqlens[mid] <= row) lo = mid; else hi = mid;
  }
  return (p.num_req > 0 && p.cu_seqlens[lo] <= row && row < p.cu_seqlens[p.num_req]) ? lo : -1;
}

// The fused index transform; -1 stays -1, and an index the page table cannot map becomes -1.
__device__ __forceinline__ i32 transform_index(const Params& p, int row, int req, i32 idx) {
  if (idx < 0 || p.transform == 0) return idx;
  if (p.transform == 1) return idx + p.offsets[row];
  const i32 page = idx >> p.page_log2;
  if (req < 0 || req >= p.num_req || page >= p.pt_cols) return -1;
  const i32 entry = p.page_table[(i64)req * p.pt_stride + page];
  return entry < 0 ? -1 : (entry << p.page_log2) + (idx & ((1 << p.page_log2) - 1));
}

// Bitonic sort of the buffer by the total order (descending), for `sorted` output.
__device__ void sort_by_order(Shared& s, int n, bool tie_large) {
  u64* comp = reinterpret_cast<u64*>(s.keys);  // spans keys and idx (CAP*8 bytes)
  int N = 2;
  while (N < n) N <<= 1;
  constexpr int PER = (KMAX + THREADS - 1) / THREADS;
  u64 r[PER];
#pragma unroll
  for (int j = 0; j < PER; ++j) {
    int i = threadIdx.x + j * THREADS;
    u32 tie = i < n ? (tie_large ? s.idx[i] : ~s.idx[i]) : 0u;
    r[j] = i < n ? (((u64)s.keys[i] << 32) | tie) : 0ull;
  }
  __syncthreads();
#pragma unroll
  for (int j = 0; j < PER; ++j) {
    int i = threadIdx.x + j * THREADS;
    if (i < N) comp[i] = r[j];
  }
  __syncthreads();
  for (int size = 2; size <= N; size <<= 1) {
    for (int half = size >> 1; half > 0; half >>= 1) {
      for (int t = threadIdx.x; t < N / 2; t += THREADS) {
        int i = 2 * t - (t & (half - 1));
        int j = i + half;
        bool desc = (i & size) == 0;
        u64 a = comp[i], b = comp[j];
        if ((a < b) == desc) { comp[i] = b; comp[j] = a; }
      }
      __syncthreads();
    }
  }
}

// Write the final k outputs of `row` from the buffer.
__device__ void emit(Shared& s, const Params& p, const State& st, int row) {
  const bool tie_large = p.tie_large != 0;
  const int n = st.n;
  const int req = p.transform == 2 ? find_request(p, row) : -1;
  i32* out = p.out + (i64)row * p.k;
  if (p.sorted) {
    sort_by_order(s, n, tie_large);
    const u64* comp = reinterpret_cast<const u64*>(s.keys);
    for (int j = threadIdx.x; j < p.k; j += THREADS) {
      i32 idx = -1;
      if (j < n) {
        u32 lo = (u32)comp[j];
        idx = (i32)(tie_large ? lo : ~lo);
      }
      out[j] = transform_index(p, row, req, idx);
    }
  } else {
    for (int j = threadIdx.x; j < p.k; j += THREADS)
      out[j] = transform_index(p, row, req, j < n ? (i32)s.idx[j] : -1);
  }
}

}  // namespace topk

using namespace topk;

// Grid (rows, parts): one block per part of a row. With parts == 1 it writes the final output.
extern "C" __global__ void __launch_bounds__(THREADS) DSA_ENTRY_SELECT(const Params p) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  Shared& s = *reinterpret_cast<Shared*>(smem_raw);
  const int row = blockIdx.x, part = blockIdx.y;
  const bool tie_large = p.tie_large != 0;
  i64 start, len;
  row_window(p, row, start, len);
  // This part's slice of the row, in candidate positions.
  const i64 lo = len * part / p.parts, hi = len * (part + 1) / p.parts;
  const SCORE_T* rowp = reinterpret_cast<const SCORE_T*>(p.scores) + (i64)row * p.stride + start;
  State st{0, 0ull};
  if (p.parts == 1 && !p.sorted && len <= p.k) {
    // Every candidate is in the set and the order is by index: no score needs reading.
    const int req = p.transform == 2 ? find_request(p, row) : -1;
    for (int j = threadIdx.x; j < p.k; j += THREADS)
      p.out[(i64)row * p.k + j] = transform_index(p, row, req, j < len ? j : -1);
    return;
  }
  if (hi - lo > 0) {
    // Chunks are aligned to 16 bytes in memory, so vector loads stay aligned whatever the
    // row's start; positions outside [lo, hi) are masked.
    const i64 align = (i64)((reinterpret_cast<u64>(rowp) & 15u) / sizeof(SCORE_T));
    i64 first = ((lo + align) / VEC) * VEC - align;
    for (i64 c = first; c < hi; c += (i64)THREADS * VEC) {
      u32 keys[VEC], pos[VEC], valid;
      load_scores(rowp, c + (i64)threadIdx.x * VEC, lo, hi, keys, pos, valid);
      append(s, st, p.k, tie_large, keys, pos, valid);
    }
  }
  if (st.n > p.k) compact(s, st, p.k, tie_large);
  if (p.parts == 1) {
    emit(s, p, st, row);
    return;
  }
  const i64 slot = ((i64)row * p.parts + part);
  for (int j = threadIdx.x; j < st.n; j += THREADS) {
    p.ws_keys[slot * KMAX + j] = s.keys[j];
    p.ws_idx[slot * KMAX + j] = s.idx[j];
  }
  if (threadIdx.x == 0) p.ws_count[slot] = st.n;
}

// One block per row: stream the parts' survivors in part order (= index order) and finish.
extern "C" __global__ void __launch_bounds__(THREADS) DSA_ENTRY_MERGE(const Params p) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  Shared& s = *reinterpret_cast<Shared*>(smem_raw);
  const int row = blockIdx.x;
  const bool tie_large = p.tie_large != 0;
  State st{0, 0ull};
  for (int part = 0; part < p.parts; ++part) {
    const i64 slot = ((i64)row * p.parts + part);
    const int cnt = p.ws_count[slot];
    for (int c = 0; c < cnt; c += THREADS * VEC) {
      u32 keys[VEC], pos[VEC], valid = 0;
#pragma unroll
      for (int v = 0; v < VEC; ++v) {
        int j = c + threadIdx.x * VEC + v;
        keys[v] = j < cnt ? p.ws_keys[slot * KMAX + j] : 0u;
        pos[v] = j < cnt ? p.ws_idx[slot * KMAX + j] : 0u;
        valid |= (u32)(j < cnt) << v;
      }
      append(s, st, p.k, tie_large, keys, pos, valid);
    }
  }
  if (st.n > p.k) compact(s, st, p.k, tie_large);
  emit(s, p, st, row);
}
