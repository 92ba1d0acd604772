// Deterministic radix top-k over register-resident tiles.
//
// Compile-time parameters (from the Rust variant): SCORE_T (float / dsa::bf16 / dsa::f16),
// VEC (scores per 16-byte load), THREADS (block size), KMAX (largest k).
//
// A tile is THREADS * ITEMS consecutive candidates of a row, held in registers as 32-bit order
// keys (ITEMS = 32 per thread, loaded as U = ITEMS / VEC coalesced 16-byte vectors, all in
// flight at once). A slot holding no candidate gets key 0, below every real key (the smallest,
// -inf's, is 0x007fffff), so no validity masks are needed. One block selects the tile's exact
// top-k:
//   1. radix select on the keys (digits of 11, 11 and 10 bits, most significant first; a
//      shared-memory histogram per digit) gives the k-th key K and how many elements equal to K
//      belong to the top-k, or stops early when a digit bin is taken whole;
//   2. one ordered compaction (block prefix sums in index order, no atomics) keeps the elements
//      above K and the first (tie small) or last (tie large) `need` elements equal to K.
// The result is exact and independent of how the row is cut into tiles.
//
// A row longer than a tile is cut into parts of one tile each (SELECT, grid rows x parts); each
// part writes its top-k (keys and indices, in index order) to the workspace. MERGE then reads
// groups of F = THREADS * ITEMS / KMAX consecutive lists as one tile and selects again, level by
// level, until one list per row remains; that level writes the output. The number of levels
// depends only on the row stride, never on device data.

namespace topk {

struct Params {
  const void* scores;
  const i32* lengths;
  const i32* row_starts;  // may be null
  i32* out;
  u32* ws[2];             // two ping-pong buffers: keys then indices, [rows][lists][KMAX] each
  i32* ws_count[2];       // [rows][lists]
  const i32* offsets;     // ragged transform: per-row offset
  const i32* page_table;  // paged transform: [num_req][pt_stride]
  const i32* req_map;     // paged: per-row request (null: use cu_seqlens)
  const i32* cu_seqlens;  // paged: [num_req + 1] row boundaries of each request
  i64 stride;             // elements between rows of `scores`
  i64 pt_stride;          // entries between rows of `page_table`
  i64 ws_lists[2];        // list slots per row in each workspace buffer
  i32 rows;
  i32 k;
  i32 tie_large;          // 0: equal keys prefer the smaller index, 1: the larger
  i32 sorted;             // 0: ascending index, 1: by the total order
  i32 transform;          // 0: none, 1: ragged, 2: paged
  i32 page_log2;          // paged: log2(page size)
  i32 num_req;            // paged: rows of page_table
  i32 pt_cols;            // paged: valid columns per page_table row
};

constexpr int ITEMS = 32;
constexpr int WARPS = THREADS / 32;
constexpr int BINS = 2048;
constexpr int TILE = THREADS * ITEMS;
// Blocks per SM the register budget must allow: 1024 threads per SM (64 registers a thread,
// half the SM's warp slots), enough to overlap one block's barriers with another's work.
constexpr int MIN_BLOCKS = 1024 / THREADS;
static_assert(TILE >= 2 * KMAX, "a merge tile must hold at least two lists");

// Order-preserving key: larger float -> larger key. -0.0 == +0.0; every NaN is one value,
// above +inf (torch.topk's order).
__device__ __forceinline__ u32 order_key(float f) {
  u32 b = __float_as_uint(f);
  if ((b & 0x7fffffffu) > 0x7f800000u) b = 0x7fffffffu;
  if (b == 0x80000000u) b = 0u;
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

struct Shared {
  u32 hist[BINS];
  u32 part[64 * 8];        // per-(slot, warp) partial sums of the tile scan (U * WARPS <= 512)
  u32 warp_tot[WARPS];
  u32 sel_bin, sel_need, sel_eq, total;
  u64 comp[KMAX];          // sorted output: (key, tie) composites
};

// Exclusive block-wide prefix sum; returns the thread's prefix and the block total. Ends with a
// barrier, so `warp_tot` may be reused right after.
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
  const u32 before = (warp > 0 ? s.warp_tot[warp - 1] : 0u) + x - v;
  total = s.warp_tot[WARPS - 1];
  __syncthreads();
  return before;
}

// Exclusive prefix sums over the tile in index order (slot u major, then thread, then the
// element within the vector): `excl[u]` is the count before this thread's slot-u vector.
template <int U>
__device__ __forceinline__ void tile_scan(Shared& s, const u32 (&c)[U], u32 (&excl)[U], u32& total) {
  static_assert(U * WARPS >= 32 && (U * WARPS) % 32 == 0 && U * WARPS <= 512, "scan layout");
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  u32 x[U];
#pragma unroll
  for (int u = 0; u < U; ++u) {
    x[u] = c[u];
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      u32 y = __shfl_up_sync(0xffffffffu, x[u], o);
      if (lane >= o) x[u] += y;
    }
    if (lane == 31) s.part[u * WARPS + warp] = x[u];
  }
  __syncthreads();
  if (warp == 0) {
    constexpr int E = U * WARPS / 32;  // entries per lane, in (slot, warp) order
    u32 v[E], sum = 0;
#pragma unroll
    for (int e = 0; e < E; ++e) { v[e] = s.part[lane * E + e]; sum += v[e]; }
    u32 incl = sum;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      u32 y = __shfl_up_sync(0xffffffffu, incl, o);
      if (lane >= o) incl += y;
    }
    u32 run = incl - sum;
#pragma unroll
    for (int e = 0; e < E; ++e) { s.part[lane * E + e] = run; run += v[e]; }
    if (lane == 31) s.total = incl;
  }
  __syncthreads();
#pragma unroll
  for (int u = 0; u < U; ++u) excl[u] = s.part[u * WARPS + warp] + x[u] - c[u];
  total = s.total;
  __syncthreads();
}

// The threshold of a tile's top-k. Exact: keys > K are in, and of the `eq` elements equal to K
// the first (tie small) or last (tie large) `need` in index order. Otherwise (a digit bin taken
// whole) exactly the keys >= low are in.
struct Threshold {
  bool exact;
  u32 K, need, eq;
  u64 low;
};

// Radix select of the k-th largest valid key (k < number of valid keys).
template <int U, int V>
__device__ Threshold select_kth(Shared& s, const u32 (&key)[U][V], int k) {
  constexpr int PER = BINS / THREADS > 0 ? BINS / THREADS : 1;
  u32 prefix = 0, mask = 0, want = (u32)k, eq = 0;
#pragma unroll 1
  for (int pass = 0; pass < 3; ++pass) {
    const int shift = pass == 0 ? 21 : (pass == 1 ? 10 : 0);
    const u32 nbins = pass == 2 ? 1024u : 2048u;
    for (int b = threadIdx.x; b < BINS; b += THREADS) s.hist[b] = 0;
    __syncthreads();
#pragma unroll
    for (int u = 0; u < U; ++u)
#pragma unroll
      for (int v = 0; v < V; ++v)
        if (((key[u][v] ^ prefix) & mask) == 0)  // empty slots (key 0) land in bin 0: never selected
          atomicAdd(&s.hist[(key[u][v] >> shift) & (nbins - 1)], 1u);
    __syncthreads();
    // Thread t owns PER consecutive bins from the top; find where the running count from the
    // top reaches `want`.
    u32 c[PER], sum = 0;
#pragma unroll
    for (int j = 0; j < PER; ++j) {
      const int b = BINS - 1 - (threadIdx.x * PER + j);
      c[j] = (threadIdx.x * PER + j < BINS) ? s.hist[b] : 0u;
      sum += c[j];
    }
    u32 total;
    u32 above = block_scan(s, sum, total);
    if (above < want && want <= above + sum) {
#pragma unroll
      for (int j = 0; j < PER; ++j) {
        if (above < want && want <= above + c[j]) {
          // Bin index within the 2048 owned slots; pass 2 uses only the low 1024.
          s.sel_bin = (u32)(BINS - 1 - (threadIdx.x * PER + j));
          s.sel_need = want - above;
          s.sel_eq = c[j];
        }
        above += c[j];
      }
    }
    __syncthreads();
    const u32 bin = s.sel_bin, need = s.sel_need;
    eq = s.sel_eq;
    __syncthreads();  // all have read sel_* before the next pass may overwrite them
    prefix |= bin << shift;
    mask |= (nbins - 1) << shift;
    want = need;
    if (need == eq && pass < 2) return Threshold{false, 0u, 0u, 0u, (u64)prefix};
  }
  return Threshold{true, prefix, want, eq, 0ull};
}

// Select the tile's top-k (all candidates when there are at most k) and hand each kept element
// to `emit(position, key, u, v)` in index order. Returns the number kept.
template <int U, int V, class Emit>
__device__ u32 select_tile(Shared& s, const u32 (&key)[U][V], u32 n_valid, int k, bool tie_large,
                           Emit emit) {
  // Kept: key > T, plus (exact only) the window [lo, hi) of the elements equal to K in index
  // order. With at most k candidates T = 0 keeps every candidate and no empty slot.
  Threshold t{false, 0u, 0u, 0u, 1ull};
  if (n_valid > (u32)k) t = select_kth<U, V>(s, key, k);
  const u32 T = t.exact ? t.K : (u32)(t.low - 1);  // low >= 1: bin 0 is never selected
  const u32 lo = t.exact && tie_large ? t.eq - t.need : 0u;
  const u32 hi = t.exact ? (tie_large ? t.eq : t.need) : 0u;
  // Per slot: elements above the threshold (low 16 bits) and equal to K (high 16 bits).
  u32 c[U], excl[U], total;
#pragma unroll
  for (int u = 0; u < U; ++u) {
    u32 gt = 0, e = 0;
#pragma unroll
    for (int v = 0; v < V; ++v) {
      gt += key[u][v] > T;
      e += t.exact && key[u][v] == t.K;
    }
    c[u] = gt | (e << 16);
  }
  tile_scan<U>(s, c, excl, total);
#pragma unroll
  for (int u = 0; u < U; ++u) {
    u32 gt_before = excl[u] & 0xffffu, eq_before = excl[u] >> 16;
#pragma unroll
    for (int v = 0; v < V; ++v) {
      const bool is_gt = key[u][v] > T, is_eq = t.exact && key[u][v] == t.K;
      if (is_gt || (is_eq && eq_before >= lo && eq_before < hi))
        emit(gt_before + (min(max(eq_before, lo), hi) - lo), key[u][v], u, v);
      gt_before += is_gt;
      eq_before += is_eq;
    }
  }
  return (total & 0xffffu) + (min(total >> 16, hi) - lo);
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

// Where a tile's kept elements go: the output row (last level) or a workspace list.
struct Sink {
  i32* out;   // final: the output row
  u32* keys;  // intermediate: the list's keys (indices follow KMAX * lists later)
  u32* idx;
  int req;    // paged transform's request
};

// Bitonic sort of s.comp[0..n) descending, then write the output row in that order.
__device__ void emit_sorted(Shared& s, const Params& p, int row, int req, u32 n, bool tie_large) {
  int N = 2;
  while (N < (int)n) N <<= 1;
  for (int i = n + threadIdx.x; i < N; i += THREADS) s.comp[i] = 0ull;  // below every key
  __syncthreads();
  for (int size = 2; size <= N; size <<= 1) {
    for (int half = size >> 1; half > 0; half >>= 1) {
      for (int t = threadIdx.x; t < N / 2; t += THREADS) {
        const int i = 2 * t - (t & (half - 1)), j = i + half;
        const bool desc = (i & size) == 0;
        const u64 a = s.comp[i], b = s.comp[j];
        if ((a < b) == desc) { s.comp[i] = b; s.comp[j] = a; }
      }
      __syncthreads();
    }
  }
  i32* out = p.out + (i64)row * p.k;
  for (int j = threadIdx.x; j < p.k; j += THREADS) {
    i32 idx = -1;
    if (j < (int)n) {
      const u32 low = (u32)s.comp[j];
      idx = (i32)(tie_large ? low : ~low);
    }
    out[j] = transform_index(p, row, req, idx);
  }
}

// Select a tile and deliver it: to the output row (`final`) or to workspace list `slot`.
template <int U, int V, class IdxOf>
__device__ void finish_tile(Shared& s, const Params& p, int row, bool final, int buf, i64 slot,
                            const u32 (&key)[U][V], u32 n_valid, IdxOf idx_of) {
  const bool tie_large = p.tie_large != 0;
  if (!final) {
    u32* keys = p.ws[buf] + slot * KMAX;
    u32* idx = p.ws[buf] + (i64)p.rows * p.ws_lists[buf] * KMAX + slot * KMAX;
    const u32 n = select_tile<U, V>(s, key, n_valid, p.k, tie_large,
                                    [&](u32 pos, u32 kk, int u, int v) {
                                      keys[pos] = kk;
                                      idx[pos] = idx_of(u, v);
                                    });
    if (threadIdx.x == 0) p.ws_count[buf][slot] = (i32)n;
    return;
  }
  const int req = p.transform == 2 ? find_request(p, row) : -1;
  if (p.sorted) {
    const u32 n = select_tile<U, V>(s, key, n_valid, p.k, tie_large,
                                    [&](u32 pos, u32 kk, int u, int v) {
                                      const u32 i = idx_of(u, v);
                                      s.comp[pos] = ((u64)kk << 32) | (tie_large ? i : ~i);
                                    });
    __syncthreads();
    emit_sorted(s, p, row, req, n, tie_large);
    return;
  }
  i32* out = p.out + (i64)row * p.k;
  const u32 n = select_tile<U, V>(s, key, n_valid, p.k, tie_large,
                                  [&](u32 pos, u32, int u, int v) {
                                    out[pos] = transform_index(p, row, req, (i32)idx_of(u, v));
                                  });
  for (int j = n + threadIdx.x; j < p.k; j += THREADS) out[j] = -1;
}

}  // namespace topk

using namespace topk;

// Grid (rows, parts): part `blockIdx.y` of each row is one tile. `parts == 1`: writes the output;
// otherwise writes workspace buffer 0.
extern "C" __global__ void __launch_bounds__(THREADS, MIN_BLOCKS) DSA_ENTRY_SELECT(const Params p, int parts) {
  __shared__ Shared s;
  const int row = blockIdx.x, part = blockIdx.y;
  i64 start, len;
  row_window(p, row, start, len);
  const bool final = parts == 1;
  if (final && !p.sorted && len <= p.k) {
    // Every candidate is in the set and the order is by index: no score needs reading.
    const int req = p.transform == 2 ? find_request(p, row) : -1;
    for (int j = threadIdx.x; j < p.k; j += THREADS)
      p.out[(i64)row * p.k + j] = transform_index(p, row, req, j < len ? j : -1);
    return;
  }
  // Tile `part` holds candidates [part * TILE, part * TILE + TILE). A vector whose address is
  // 16-byte aligned and whose positions are all candidates is one load; others (a misaligned
  // row start, the row's end) load element by element.
  const SCORE_T* rowp = reinterpret_cast<const SCORE_T*>(p.scores) + (i64)row * p.stride + start;
  const bool aligned = (reinterpret_cast<u64>(rowp) & 15u) == 0;
  constexpr int U = ITEMS / VEC;
  const i64 tile0 = (i64)part * TILE;
  u32 key[U][VEC];
#pragma unroll
  for (int u = 0; u < U; ++u) {
    const i64 q0 = tile0 + ((i64)u * THREADS + threadIdx.x) * VEC;
    if (aligned && q0 + VEC <= len) {
      union { uint4 v; SCORE_T e[VEC]; } x;
      x.v = __ldg(reinterpret_cast<const uint4*>(rowp + q0));
#pragma unroll
      for (int v = 0; v < VEC; ++v) key[u][v] = order_key(dsa::to_float(x.e[v]));
    } else {
#pragma unroll
      for (int v = 0; v < VEC; ++v)
        key[u][v] = q0 + v < len ? order_key(dsa::to_float(rowp[q0 + v])) : 0u;
    }
  }
  const i64 in_tile = len - tile0;
  const u32 n_valid = in_tile <= 0 ? 0u : (in_tile >= TILE ? (u32)TILE : (u32)in_tile);
  const i64 slot = (i64)row * p.ws_lists[0] + part;
  finish_tile<U, VEC>(s, p, row, final, 0, slot, key, n_valid, [&](int u, int v) {
    return (u32)(tile0 + ((i64)u * THREADS + threadIdx.x) * VEC + v);
  });
}

// A merge touches a small share of the data; it gets the registers it wants rather than the
// tiles' occupancy bound.
// Grid (rows, groups): group `blockIdx.y` merges lists [g*F, g*F + F) of the previous level
// (`lists_in` per row, in buffer `in_buf`) as one tile. `groups == 1`: writes the output;
// otherwise writes buffer 1 - in_buf.
extern "C" __global__ void __launch_bounds__(THREADS) DSA_ENTRY_MERGE(const Params p, int lists_in,
                                                                       int in_buf, int groups) {
  __shared__ Shared s;
  constexpr int MV = 4, U = ITEMS / MV, F = TILE / KMAX;
  const int row = blockIdx.x, group = blockIdx.y;
  const u32* keys_in = p.ws[in_buf];
  const u32* idx_in = p.ws[in_buf] + (i64)p.rows * p.ws_lists[in_buf] * KMAX;
  u32 key[U][MV];
  u32 n_valid = 0;
  for (int l = 0; l < F; ++l) {
    const int list = group * F + l;
    if (list < lists_in) n_valid += (u32)p.ws_count[in_buf][(i64)row * p.ws_lists[in_buf] + list];
  }
#pragma unroll
  for (int u = 0; u < U; ++u) {
    const int f = (u * THREADS + threadIdx.x) * MV;  // flat position in the tile
    const int list = group * F + f / KMAX, j = f % KMAX;
    const i64 slot = (i64)row * p.ws_lists[in_buf] + list;
    const int cnt = list < lists_in ? p.ws_count[in_buf][slot] : 0;
    uint4 kv = make_uint4(0u, 0u, 0u, 0u);
    if (j < cnt) kv = *reinterpret_cast<const uint4*>(keys_in + slot * KMAX + j);
    key[u][0] = j < cnt ? kv.x : 0u;
    key[u][1] = j + 1 < cnt ? kv.y : 0u;
    key[u][2] = j + 2 < cnt ? kv.z : 0u;
    key[u][3] = j + 3 < cnt ? kv.w : 0u;
  }
  const bool final = groups == 1;
  const i64 slot = (i64)row * p.ws_lists[1 - in_buf] + group;
  // Indices are read only for the kept elements.
  finish_tile<U, MV>(s, p, row, final, 1 - in_buf, slot, key, n_valid, [&](int u, int v) {
    const int f = (u * THREADS + threadIdx.x) * MV + v;
    return idx_in[((i64)row * p.ws_lists[in_buf] + group * F + f / KMAX) * KMAX + f % KMAX];
  });
}
