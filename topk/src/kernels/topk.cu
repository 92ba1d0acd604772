// Deterministic radix top-k: each row is read once, held in registers (short segments) or
// streamed through a running filter into a shared-memory candidate buffer, selected exactly
// with radix digits, and long rows are split over a thread-block cluster.
//
// Compile-time parameters (from the Rust variant): SCORE_T (float / dsa::bf16 / dsa::f16),
// VEC (scores per 16-byte load), THREADS (block size), KMAX (largest k), SEGMENTS_RESIDENT
// (1: the resident form only; 0: the streaming form only; the plan picks from host sizes),
// RESIDENT_KEYS (scores a thread holds in the resident form: 16, or 32 with 256 or 512
// threads).
//
// Keys. A score maps to a 32-bit order key (larger score, larger key; -0.0 == +0.0; NaN above
// +inf). Real keys are >= 0x007fffff (-inf), so key 0 marks "no candidate".
//
// Resident segments. A segment of at most TILE = THREADS * RESIDENT scores is loaded into registers
// at once and selected there: the first digit over the registers, the rest over the chosen
// bin's keys copied to a shared list. When no tie straddles the cut (the common case), the keys
// above a threshold are ranked in index order with one compare a key and one packed block
// scan, staged at their rank in shared memory and stored out in 16-byte vectors (with the
// row's index map); otherwise an out-of-line exact ordered pass writes them.
//
// Streaming. A longer segment is read in chunks of CHUNK = THREADS * 8 scores, the next
// chunk's loads in flight while the current one is filtered. A score enters the buffer (key and
// index, in index order through one packed block scan, no atomics) when it is above the floor
// G, compared as a float (one instruction a score). The first chunk seeds G: for a long segment
// from its expected share of the segment's top k (a guess: when fewer than k scores pass it,
// the segment is streamed again from a safe floor), else from one radix digit over its own
// keys. When the next chunk might not fit, or the buffer holds a few times k, `shrink` selects
// the buffer's exact top-k, compacts it in place to those k and raises G to their k-th key K:
// with tie small a later (larger-index) score must beat K strictly, with tie large it may equal
// it. So the buffer is always a superset of the segment's top-k, and HBM is read once (twice
// after a failed guess).
//
// Clusters. With P > 1 CTAs per row (a cluster, sm_90+), CTA r takes segment r. Each CTA
// publishes its K; every CTA also filters with the largest K of the cluster (a valid bound for
// every segment, entered with >=, as equal keys elsewhere may win on index). The final select
// runs over the union of the candidates: its first digit with cluster-wide histograms in
// distributed shared memory, the rest over the chosen bin's keys gathered into every CTA.
// Resident CTAs first each find a local floor their share of k reaches, so that first digit
// starts from the least of them. Distributed shared memory costs per request (ncu and timers:
// 2048 scalar reads a CTA took 2 us), so exchanges move 16 bytes a request and a warp's
// requests go to one peer.
//
// Final select. Radix select (digits of 11, 11 and 10 bits over the bits where the keys'
// range differs, most significant first) finds the k-th key K and the rank window [lo, hi) of
// the elements equal to K that belong to the set (the first `need` in index order for tie
// small, the last for tie large), or stops early when a digit bin is taken whole. An ordered
// pass writes the set in ascending index order, or gathers it for a bitonic sort by the total
// order. Launch shape and results depend only on host-known sizes and the row itself, never on
// timing, P or THREADS.

namespace topk {

// The fused index transform (Params::transform; launch.rs sets these numbers).
enum MapKind : i32 { MAP_NONE = 0, MAP_RAGGED = 1, MAP_PAGED = 2 };

struct Params {
  const void* scores;
  const i32* lengths;
  const i32* row_starts;  // may be null
  i32* out;
  const i32* offsets;     // ragged transform: per-row offset
  const i32* page_table;  // paged transform: [num_req][pt_stride]
  const i32* req_map;     // paged: per-row request (null: use cu_seqlens)
  const i32* cu_seqlens;  // paged: [num_req + 1] row boundaries of each request
  i64 stride;             // elements between rows of `scores`
  i64 pt_stride;          // entries between rows of `page_table`
  i32 rows;
  i32 k;
  i32 tie_large;          // 0: equal keys prefer the smaller index, 1: the larger
  i32 sorted;             // 0: ascending index, 1: by the total order
  i32 transform;          // a MapKind
  i32 page_log2;          // paged: log2(page size)
  i32 num_req;            // paged: rows of page_table
  i32 pt_cols;            // paged: valid columns per page_table row
  i32 cluster;            // CTAs per row: the launch's cluster size (1 without clusters)
  i32 pad_;
};

constexpr int WARPS = THREADS / 32;
constexpr int PER_THREAD = 8;                  // scores a thread filters per chunk
constexpr int LOADS = PER_THREAD / VEC;        // 16-byte loads per thread per chunk
constexpr int CHUNK = THREADS * PER_THREAD;
constexpr int CAP = KMAX + 2 * CHUNK;          // buffer entries: k kept + room for two chunks
constexpr int RESIDENT = RESIDENT_KEYS;        // scores a thread holds for a resident segment
constexpr int RES_LOADS = RESIDENT / VEC;
constexpr int TILE = THREADS * RESIDENT;       // longest resident segment
constexpr int BINS = 2048;
// Keys a resident select narrows to after a digit (the streaming form's buffer does that job,
// and there shared memory decides how many blocks an SM holds).
constexpr int LIST = SEGMENTS_RESIDENT ? 2048 : 4;
constexpr int MAX_CLUSTER = 16;               // the plan's largest cluster (variant.rs)
constexpr int PAIRS = 2;                       // buffer passes: two-entry groups per thread
constexpr int STRIP = THREADS * PAIRS * 2;     // entries per buffer pass step
// Two blocks per SM (of up to 1024 threads) must fit the register file: 64 registers a thread
// (4 blocks of 256), so that one block's barriers overlap with another's loads. Thirty-two
// resident scores a thread need more: 80 registers at 256 threads (3 blocks an SM, which beat
// 2 of 128 registers: H200, 1024 x 8192, 28.4 vs 31.4 us), 128 at 512 (one block an SM).
constexpr int MIN_BLOCKS = RESIDENT > 16 ? (THREADS == 256 ? 3 : 1) : THREADS >= 512 ? 1024 / THREADS : 4;
static_assert(PER_THREAD % VEC == 0 && RESIDENT % VEC == 0, "whole vectors");
static_assert(RESIDENT == 16 || (RESIDENT == 32 && THREADS <= 512), "16 resident scores a thread, or 32 with <= 512 threads");
static_assert(TILE % CHUNK == 0, "segments are whole chunks");

// Dynamic shared memory: (clusters only) one histogram per radix digit that the cluster's CTAs
// add into, bin b on rank b % P; then the buffer, as long as the launch gives it: CAP entries
// when some segment may stream, else KMAX for the sort (none for index order).
constexpr u32 SMEM_CLUSTER = 3 * BINS * 4;

// Float bits to an unsigned order: negative ~b, else b with the sign bit set.
__device__ __forceinline__ u32 flip_sign(u32 b) { return b ^ ((u32)((i32)b >> 31) | 0x80000000u); }

__device__ __forceinline__ u32 order_key(float f) {
  f = __fadd_rn(f, 0.0f);                                   // -0.0 + 0.0 = +0.0
  return flip_sign(f != f ? 0x7fffffffu : __float_as_uint(f));  // one NaN, above +inf
}

// order_key without the NaN step: a NaN's key is then above +inf's (sign clear) or below
// -inf's (sign set, possibly 0), and `canonical` makes it order_key's.
__device__ __forceinline__ u32 raw_key(float f) { return flip_sign(__float_as_uint(__fadd_rn(f, 0.0f))); }
__device__ __forceinline__ bool is_nan_key(u32 raw) { return raw < 0x007fffffu || raw > 0xff800000u; }
__device__ __forceinline__ u32 canonical(u32 raw) { return is_nan_key(raw) ? 0xffffffffu : raw; }

// The float f with: key(x) > G exactly when x > f, for every non-NaN x; `!(x <= f)` also
// passes NaN, so a filter with it may let in more (never fewer) scores than `key > G`.
__device__ __forceinline__ float floor_value(u32 G) {
  if (G >= 0xff800000u) return __uint_as_float(0x7f800000u);  // +inf: nothing finite is above
  if (G == 0x7fffffffu) G = 0x7ffffffeu;  // the key -0.0 would have: compare to -denorm_min
  // Keys below -inf's give a NaN, which every score passes.
  return __uint_as_float((G & 0x80000000u) ? (G ^ 0x80000000u) : ~G);
}

// ---- distributed shared memory (a plain CTA is a cluster of one) --------------------------

__device__ __forceinline__ u32 smem_addr(const void* p) {
  u32 a;
  asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(a) : "l"(p));
  return a;
}

#if __CUDA_ARCH__ >= 900
// `addr` (this CTA's shared window) as seen in CTA `rank` of the cluster.
__device__ __forceinline__ u32 peer(u32 addr, u32 rank) {
  u32 r;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(r) : "r"(addr), "r"(rank));
  return r;
}
// A value a cluster barrier has settled. No memory clobber, so several loads can be in flight
// at once; being volatile, it stays after the (volatile) barrier it relies on.
__device__ __forceinline__ u32 peer_load(u32 a) {
  u32 v;
  asm volatile("ld.shared::cluster.u32 %0, [%1];" : "=r"(v) : "r"(a));
  return v;
}
// Four settled values at once (16-byte aligned): one request where four would queue.
__device__ __forceinline__ uint4 peer_load4(u32 a) {
  uint4 v;
  asm volatile("ld.shared::cluster.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(a));
  return v;
}
// A value another CTA may be updating (its floor): relaxed, never torn.
__device__ __forceinline__ u32 peer_load_relaxed(u32 a) {
  u32 v;
  asm volatile("ld.relaxed.cluster.shared::cluster.u32 %0, [%1];" : "=r"(v) : "r"(a) : "memory");
  return v;
}
__device__ __forceinline__ void peer_add(u32 a, u32 v) {
  asm volatile("red.relaxed.cluster.shared::cluster.add.u32 [%0], %1;" ::"r"(a), "r"(v) : "memory");
}
__device__ __forceinline__ void peer_store(u32 a, u32 v) {
  asm volatile("st.shared::cluster.u32 [%0], %1;" ::"r"(a), "r"(v) : "memory");
}
__device__ __forceinline__ void peer_store64(u32 a, u64 v) {
  asm volatile("st.shared::cluster.u64 [%0], %1;" ::"r"(a), "l"(v) : "memory");
}
__device__ __forceinline__ void cluster_sync() {
  asm volatile("barrier.cluster.arrive.release.aligned;\n\tbarrier.cluster.wait.acquire.aligned;" ::: "memory");
}
#else
// No clusters before sm_90: the plan always launches P = 1 there.
__device__ __forceinline__ u32 peer(u32 addr, u32) { return addr; }
__device__ __forceinline__ u32 peer_load(u32 a) {
  u32 v;
  asm volatile("ld.shared.u32 %0, [%1];" : "=r"(v) : "r"(a));
  return v;
}
__device__ __forceinline__ uint4 peer_load4(u32 a) {
  uint4 v;
  asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(a));
  return v;
}
__device__ __forceinline__ u32 peer_load_relaxed(u32 a) { return peer_load(a); }
__device__ __forceinline__ void peer_add(u32 a, u32 v) {
  asm volatile("red.shared.add.u32 [%0], %1;" ::"r"(a), "r"(v) : "memory");
}
__device__ __forceinline__ void peer_store(u32 a, u32 v) {
  asm volatile("st.shared.u32 [%0], %1;" ::"r"(a), "r"(v) : "memory");
}
__device__ __forceinline__ void peer_store64(u32 a, u64 v) {
  asm volatile("st.shared.u64 [%0], %1;" ::"r"(a), "l"(v) : "memory");
}
__device__ __forceinline__ void cluster_sync() { __syncthreads(); }
#endif

// For lanes r < n, the u32 at `addr` in CTA r of the cluster, else `none`: the caller reduces
// over the warp, so a value from every CTA costs one round trip.
__device__ __forceinline__ u32 lane_peer(u32 addr, u32 n, u32 none) {
  const u32 lane = threadIdx.x & 31;
  return lane < n ? peer_load(peer(addr, lane)) : none;
}

// Thread q stores `v` in slot `rank` of `slots` of CTA q, for q in [from, P) (only after a
// cluster barrier: every peer has started). After the next cluster barrier a CTA reads its
// peers' values from its own memory (lane r: slot r), so nothing is read remotely after that
// barrier: no round trip, and no CTA has to wait for its peers again before it exits.
__device__ __forceinline__ void push_to(u32* slots, u32 v, u32 rank, u32 from, u32 P) {
  if (threadIdx.x >= from && threadIdx.x < P) peer_store(peer(smem_addr(slots + rank), threadIdx.x), v);
}
// Lane r < n: slot r of `slots` (filled by push_to), else `none`.
__device__ __forceinline__ u32 lane_slot(const u32* slots, u32 n, u32 none) {
  const u32 lane = threadIdx.x & 31;
  return lane < n ? slots[lane] : none;
}

// Barrier over the CTAs of a row.
__device__ __forceinline__ void row_sync(u32 P) {
  if (P > 1) cluster_sync(); else __syncthreads();
}

// The fused index transform of one row: -1 stays -1, and an index the page table cannot map
// becomes -1. Its per-row inputs are read when the row starts (the select hides their latency)
// and kept in shared memory until the write (registers stay free). Page-table entries are read
// through the read-only path, so that a thread's lookups can all be in flight before its first
// store (a plain load would wait for every earlier store to `out`, which it might alias).
struct IndexMap {
  i32 kind;       // a MapKind
  i32 offset;     // ragged: the row's offset (0 for the other kinds)
  const i32* pt;  // paged: the row's request's page-table row (null: the row has no request)
  i32 cols;       // paged: valid entries of `pt`
  i32 log2;       // paged: log2(page size)
  __device__ __forceinline__ i32 operator()(i32 idx) const {
    if (idx < 0 || kind == MAP_NONE) return idx;
    if (kind == MAP_RAGGED) return idx + offset;
    return paged(idx, entry(idx));
  }
  // Paged, in two steps, so that a thread's lookups are all issued before any is used: the
  // page-table entry of an index (-1 where there is none), then the index it maps to.
  __device__ __forceinline__ i32 entry(i32 idx) const {
    const i32 page = idx >> log2;
    return pt && idx >= 0 && page < cols ? __ldg(pt + page) : -1;
  }
  __device__ __forceinline__ i32 paged(i32 idx, i32 entry) const {
    return idx < 0 || entry < 0 ? -1 : (entry << log2) + (idx & ((1 << log2) - 1));
  }
};

enum { PUB_N, PUB_LO, PUB_HI, PUB_FLOOR };

struct Shared {
  union {
    alignas(16) u32 hist[2][BINS];  // a select's digit histograms by pass parity: one counts, one is cleared
    // After the select: the positions this CTA writes, staged at their output rank (from the
    // output's lead_of on, so that 16-byte stores line up with the output), then copied out.
    alignas(16) u32 stage[2 * BINS + 4];
  };
  u32 bin_sums[2][32];  // find_bin's per-warp sums, by pass parity
  u32 sel[2][3];        // find_bin's result (bin, need, eq), by pass parity
  alignas(16) u32 list[LIST];  // keys of a resident segment in the bin its first digit chose
  u32 list_n;
  u32 sink[32];         // per-lane targets of histogram increments that count nothing
  u32 part[2 * 64];   // scan partials per (group, warp): at most PAIRS * 32 = 128
  u32 warp_sums[2][32];  // group_offsets' packed warp counts, by the parity of its call
  u32 warp_tot[32];
  u32 total;
  u32 kth;            // this CTA's floor for the cluster (>=: keys below it never win); 0 none
  u32 wmin[32], wmax[32];
  // For the peers (finish): this CTA's key count and range, its local floor (PUB_* order, one
  // 16-byte request), and its keys at or above that floor.
  alignas(16) u32 pub[4];
  u32 above_pub;
  u32 gt_from[MAX_CLUSTER], eq_from[MAX_CLUSTER];  // earlier CTAs' counts of the cut (push_to)
  IndexMap map;  // the row's transform
};

// Block-wide min and max (every thread gets both).
__device__ __forceinline__ void block_minmax(Shared& s, u32& lo, u32& hi) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  lo = __reduce_min_sync(0xffffffffu, lo);
  hi = __reduce_max_sync(0xffffffffu, hi);
  if (lane == 0) { s.wmin[warp] = lo; s.wmax[warp] = hi; }
  __syncthreads();
  lo = lane < WARPS ? s.wmin[lane] : 0xffffffffu;
  hi = lane < WARPS ? s.wmax[lane] : 0u;
  lo = __reduce_min_sync(0xffffffffu, lo);
  hi = __reduce_max_sync(0xffffffffu, hi);
  __syncthreads();
}

// ---- block scans ---------------------------------------------------------------------------

// Exclusive block-wide prefix sum of one value per thread, and the total.
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

// Exclusive prefix sums in index order over U groups per thread, laid out group-major (group u
// of thread t comes after group u of every thread before t and after all of group u - 1).
template <int U>
__device__ __forceinline__ void ordered_scan(Shared& s, const u32 (&c)[U], u32 (&excl)[U], u32& total) {
  constexpr int N = U * WARPS, PER = (N + 31) / 32;
  static_assert(N <= 128, "scan layout");
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
    u32 v[PER], sum = 0;
#pragma unroll
    for (int e = 0; e < PER; ++e) {
      const int i = lane * PER + e;
      v[e] = i < N ? s.part[i] : 0u;
      sum += v[e];
    }
    u32 incl = sum;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      u32 y = __shfl_up_sync(0xffffffffu, incl, o);
      if (lane >= o) incl += y;
    }
    u32 run = incl - sum;
#pragma unroll
    for (int e = 0; e < PER; ++e) {
      const int i = lane * PER + e;
      if (i < N) s.part[i] = run;
      run += v[e];
    }
    if (lane == 31) s.total = incl;
  }
  __syncthreads();
#pragma unroll
  for (int u = 0; u < U; ++u) excl[u] = s.part[u * WARPS + warp] + x[u] - c[u];
  total = s.total;
  __syncthreads();
}

// Index-order offsets of L groups a thread (group u of thread t comes after group u of every
// thread before t and after all of group u - 1) from counts packed one group to 32 / L bits
// (a warp's count of one group must fit its field). Sets at[u] to the offset of this thread's
// first element of group u and returns the CTA's total. One barrier: a warp scans its packed
// counts, then every warp scans the warp totals itself, two groups a word of 16-bit fields.
// `sums` (WARPS words) may be written again only after one more barrier (alternate two).
template <int L>
__device__ __forceinline__ u32 group_offsets(u32* sums, u32 mine, u32 (&at)[L]) {
  constexpr int FB = 32 / L, W = (L + 1) / 2;
  constexpr u32 FMASK = FB == 32 ? 0xffffffffu : (1u << (FB & 31)) - 1u;
  static_assert(L == 1 || L == 2 || L == 4, "one, two or four groups a thread");
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  u32 x = mine;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const u32 y = __shfl_up_sync(0xffffffffu, x, o);
    if (lane >= o) x += y;
  }
  if (lane == 31) sums[warp] = x;
  __syncthreads();
  const u32 w = lane < WARPS ? sums[lane] : 0u;
  u32 before[W], tot[W];
#pragma unroll
  for (int j = 0; j < W; ++j) {
    const u32 a = FB != 8 ? w : __byte_perm(w, 0u, j == 0 ? 0x4140 : 0x4342);
    u32 t = a;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const u32 y = __shfl_up_sync(0xffffffffu, t, o);
      if (lane >= o) t += y;
    }
    tot[j] = __shfl_sync(0xffffffffu, t, 31);
    before[j] = __shfl_sync(0xffffffffu, t - a, warp);
  }
  const u32 lane_before = x - mine;
  u32 run = 0;
#pragma unroll
  for (int u = 0; u < L; ++u) {
    const int sh = 16 * (u & 1);
    at[u] = run + ((before[u / 2] >> sh) & 0xffffu) + ((lane_before >> ((FB * u) & 31)) & FMASK);
    run += (tot[u / 2] >> sh) & 0xffffu;
  }
  return run;
}

// ---- radix select over the candidates -----------------------------------------------------

// Which elements a select keeps: key > T, or key == K (K != 0) with rank in [lo, hi) among the
// elements equal to K in index order.
struct Cut {
  u32 T, K, lo, hi;
  bool all;  // every element equal to K is in: the cut is the threshold `key > above()`
  // With `all` or K = 0, the cut keeps exactly the keys above this.
  __device__ __forceinline__ u32 above() const { return K != 0 ? K - 1 : T; }
  __device__ __forceinline__ bool is_threshold() const { return K == 0 || all; }
  // An equal-key rank clamped to the window.
  __device__ __forceinline__ u32 clamp(u32 r) const { return min(max(r, lo), hi); }
};

// The bin of histogram `h` (bins above first) where the running count reaches `want`. Two
// barriers: the buffers it writes alternate with `h`, and two passes apart are always
// separated by barriers.
__device__ __forceinline__ void find_bin(Shared& s, int h, u32 want, u32& bin, u32& need, u32& eq) {
  constexpr int PER = BINS / THREADS;
  static_assert(PER * THREADS == BINS, "bins split evenly");
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  u32 c[PER], sum = 0;
#pragma unroll
  for (int j = 0; j < PER; ++j) {
    c[j] = s.hist[h][BINS - 1 - (threadIdx.x * PER + j)];
    sum += c[j];
  }
  u32 x = sum;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const u32 y = __shfl_up_sync(0xffffffffu, x, o);
    if (lane >= o) x += y;
  }
  if (lane == 31) s.bin_sums[h][warp] = x;
  __syncthreads();
  const u32 w = lane < warp ? s.bin_sums[h][lane] : 0u;
  u32 above = __reduce_add_sync(0xffffffffu, w) + x - sum;
  if (above < want && want <= above + sum) {
#pragma unroll
    for (int j = 0; j < PER; ++j) {
      if (above < want && want <= above + c[j]) {
        s.sel[h][0] = (u32)(BINS - 1 - (threadIdx.x * PER + j));
        s.sel[h][1] = want - above;
        s.sel[h][2] = c[j];
      }
      above += c[j];
    }
  }
  __syncthreads();
  bin = s.sel[h][0];
  need = s.sel[h][1];
  eq = s.sel[h][2];
}

// Zero a histogram, 16 bytes a store.
__device__ __forceinline__ void clear_bins(u32 (&h)[BINS]) {
  constexpr int N = BINS / 4;
#pragma unroll
  for (int r = 0; r < (N + THREADS - 1) / THREADS; ++r) {
    const int i = r * THREADS + threadIdx.x;
    if (N % THREADS == 0 || i < N) reinterpret_cast<uint4*>(h)[i] = make_uint4(0u, 0u, 0u, 0u);
  }
}

// Add 1 to the shared counter at `addr` when `p`, else to this lane's slot of `sink`: always
// one reduction, never a branch around it (ptxas turns a predicated one into a branch).
__device__ __forceinline__ void shared_inc(u32 addr, bool p, u32 sink) {
  asm volatile("red.shared.add.u32 [%0], 1;" ::"r"(p ? addr : sink + 4 * (threadIdx.x & 31))
               : "memory");
}

// A radix select in progress over the P sources of a row. The digits cover only the bits where
// the keys' range [lo, hi] differs, most significant first, 11 at a time, so that keys bunched
// in a narrow range (the buffer above a floor) still spread over the bins.
struct Digits {
  int bits;        // low bits not yet resolved
  u32 mask, prefix;  // resolved high bits
  u32 want;        // elements still wanted from keys with this prefix
  u32 need, eq;    // of the chosen bin: elements wanted, elements there
  int pass;        // digits done: histogram parity and the cluster's sum slot
  bool whole;      // the chosen bin is taken whole: exactly the keys >= prefix are in
  bool below;      // some keys lie below the range: the first digit checks the prefix too
};

// Selecting the `want` largest of `total` keys in [lo, hi] (every key of the sources, or with
// `below` only those: all of the want largest are there, and the keys under lo lose).
__device__ __forceinline__ Digits start_digits(u32 want, u32 total, u32 lo, u32 hi,
                                               bool below = false) {
  const int bits = lo == hi ? 0 : 32 - __clz(lo ^ hi);
  const u32 mask = bits == 32 ? 0u : ~((1u << bits) - 1u);
  return Digits{bits, mask, lo & mask, want, want, total, 0, false, below};
}

// Resolve digits of `d` over `src` until `until` passes are done or the cut is known. With
// P > 1 every CTA of the cluster resolves the same digits. Histogram 0 is zero on entry and on
// return (the kernel clears it before its first barrier), and a barrier separates calls.
template <class Src>
__device__ void select_passes(Shared& s, const Src& src, Digits& d, u32 P, u32* chist,
                              int until) {
#pragma unroll 1
  while (d.bits > 0 && !d.whole && d.pass < until) {
    const int h = d.pass & 1;
    const int width = d.bits < 11 ? d.bits : 11, shift = d.bits - width;
    const u32 nb = 1u << width;
    // The other histogram's last reader (the previous pass's find_bin) is behind a barrier.
    clear_bins(s.hist[h ^ 1]);
    const u32 hist = smem_addr(s.hist[h]), sink = smem_addr(s.sink);
    const auto addr = [&](u32 key) { return hist + 4 * ((key >> shift) & (nb - 1)); };
    if (d.pass == 0 && !d.below)  // every key is in [lo, hi], so every key has the prefix
      src.each([&](u32 key, bool valid) { shared_inc(addr(key), valid, sink); });
    else
      src.each([&](u32 key, bool valid) {
        shared_inc(addr(key), valid && ((key ^ d.prefix) & d.mask) == 0, sink);
      });
    __syncthreads();
    if (P > 1) {
      // The bins are summed in P contiguous spans, span r on rank r, so no CTA takes every
      // peer's additions and a warp's requests go to one peer. The sums are read back all at
      // once, 16 bytes a request (distributed shared memory is slow per request).
      const u32 span = nb >= P ? nb / P : 1u;
      const u32 sum = smem_addr(chist + d.pass * BINS);
      for (u32 b = threadIdx.x; b < nb; b += THREADS)
        if (s.hist[h][b]) peer_add(peer(sum + 4 * b, b / span), s.hist[h][b]);
      cluster_sync();
      if (span % 4 == 0) {
        for (u32 q = threadIdx.x; 4 * q < nb; q += THREADS)
          reinterpret_cast<uint4*>(s.hist[h])[q] = peer_load4(peer(sum + 16 * q, 4 * q / span));
      } else {  // a narrow last digit
        for (u32 b = threadIdx.x; b < nb; b += THREADS)
          s.hist[h][b] = peer_load(peer(sum + 4 * b, b / span));
      }
      __syncthreads();
    }
    u32 bin;
    find_bin(s, h, d.want, bin, d.need, d.eq);
    d.prefix |= bin << shift;
    d.mask |= (nb - 1) << shift;
    d.want = d.need;
    d.bits = shift;
    ++d.pass;
    // (A chosen bin is never empty, so its prefix is at least the key of -inf, never 0.)
    d.whole = d.need == d.eq && d.bits > 0;
  }
  if (d.pass > 0 && ((d.pass - 1) & 1) == 0)  // the last pass counted in histogram 0
    clear_bins(s.hist[0]);
}

// The cut of a select: exact once every digit is resolved; a floor (at least `want` keys above
// T) when a bin was taken whole or the passes stopped early.
__device__ __forceinline__ Cut cut_of(const Digits& d, bool tie_large) {
  if (d.bits > 0) return Cut{d.prefix - 1, 0u, 0u, 0u, false};
  const u32 first = tie_large ? d.eq - d.need : 0u;
  return Cut{d.prefix, d.prefix, first, first + d.need, d.need == d.eq};
}

// The cut keeping the `want` largest of the P sources of a row (`want` < `total`, their size;
// every key in [lo, hi]); after `passes` digits only a floor.
template <class Src>
__device__ Cut select_cut(Shared& s, const Src& src, u32 want, u32 total, u32 lo, u32 hi,
                          bool tie_large, u32 P, u32* chist, int passes = 3) {
  Digits d = start_digits(want, total, lo, hi);
  select_passes(s, src, d, P, chist, passes);
  return cut_of(d, tie_large);
}

// Elements of a source above the cut and equal to its K.
template <class Src>
__device__ __forceinline__ void count_cut(Shared& s, const Src& src, const Cut& c, u32& gt,
                                          u32& eq) {
  u32 g = 0, e = 0;
  src.each([&](u32 key, bool) {  // an empty slot (key 0) is neither above T nor K
    g += key > c.T;
    e += c.K != 0 && key == c.K;
  });
  u32 both;
  block_scan(s, g | (e << 16), both);  // both totals stay below 2^16 (a source holds <= CAP)
  gt = both & 0xffffu;
  eq = both >> 16;
}

// One ordered step of `keep_cut` over U groups of E entries a thread (key in the high word, 0
// for none), laid out as `ordered_scan` expects; `gt_run`/`eq_run` count the row's elements
// above the cut / equal to K before the step.
template <int U, int E, class Entry, class Emit>
__device__ __forceinline__ void keep_step(Shared& s, Entry entry, const Cut& c, u32 base,
                                          u32& gt_run, u32& eq_run, Emit emit) {
  u32 cnt[U], excl[U], total;
#pragma unroll
  for (int u = 0; u < U; ++u) {
    u32 g = 0, q = 0;
#pragma unroll
    for (int v = 0; v < E; ++v) {
      const u32 key = (u32)(entry(u, v) >> 32);
      g += key > c.T;
      q += c.K != 0 && key == c.K;
    }
    cnt[u] = g | (q << 16);
  }
  ordered_scan<U>(s, cnt, excl, total);
#pragma unroll
  for (int u = 0; u < U; ++u) {
    u32 gb = gt_run + (excl[u] & 0xffffu), qb = eq_run + (excl[u] >> 16);
#pragma unroll
    for (int v = 0; v < E; ++v) {
      const u64 e = entry(u, v);
      const u32 key = (u32)(e >> 32);
      const bool is_gt = key > c.T, is_eq = c.K != 0 && key == c.K;
      if (is_gt || (is_eq && qb >= c.lo && qb < c.hi)) emit(gb + c.clamp(qb) - c.lo - base, e);
      gb += is_gt;
      qb += is_eq;
    }
  }
  gt_run += total & 0xffffu;
  eq_run += total >> 16;
}

// High word of buffer entry i: its key.
__device__ __forceinline__ u32 key_at(const u64* buf, u32 i) {
  return reinterpret_cast<const u32*>(buf)[2 * i + 1];
}

// Output positions of the keys above a threshold: `at[u]` for this thread's first one in
// vector u; `total` in the CTA.
template <int L>
struct Ranks {
  u32 at[L];
  u32 total;
};
// A buffer's ranks come strip by strip; only the CTA's total is known up front.
template <>
struct Ranks<0> {
  u32 total;
};

// Candidates in the shared-memory buffer: entries (key << 32 | position) in index order.
struct BufferKeys {
  static constexpr bool IN_REGISTERS = false;
  const u64* buf;
  u32 n;
  template <class F>
  __device__ __forceinline__ void each(F f) const {
#pragma unroll 4
    for (u32 i = threadIdx.x; i < n; i += THREADS) f(key_at(buf, i), true);
  }
  // This thread's entries of the strip at `strip`: two pairs, laid out as ordered_scan and
  // group_offsets expect (0 past the end).
  __device__ __forceinline__ void load_strip(u32 strip, u64 (&e)[PAIRS][2]) const {
#pragma unroll
    for (int u = 0; u < PAIRS; ++u) {
      const u32 i = strip + (u * THREADS + threadIdx.x) * 2;
      e[u][0] = i < n ? buf[i] : 0ull;
      e[u][1] = i + 1 < n ? buf[i + 1] : 0ull;
    }
  }
  template <class Emit>
  __device__ __forceinline__ void keep_steps(Shared& s, const Cut& c, u32 base, u32& gt_run,
                                             u32& eq_run, Emit emit) const {
#pragma unroll 1
    for (u32 strip = 0; strip < n; strip += STRIP) {
      u64 e[PAIRS][2];
      load_strip(strip, e);
      keep_step<PAIRS, 2>(s, [&](int u, int v) { return e[u][v]; }, c, base, gt_run, eq_run,
                          emit);
    }
  }
  // The CTA's count of keys above `thr`, needed (and counted) only with P > 1.
  __device__ __forceinline__ Ranks<0> rank_above(Shared& s, u32 thr, u32 P) const {
    Ranks<0> r{0u};
    if (P > 1) {
      u32 c = 0;
      each([&](u32 key, bool) { c += key > thr; });
      block_scan(s, c, r.total);
    }
    return r;
  }
  // out[j] = map(position) for each entry above `thr`, j its rank in buffer (index) order:
  // strips of two pairs a thread, one packed block scan a strip. Paged: a strip's page-table
  // entries are read before any is used. (Staging these in shared memory, as the registers'
  // keys are, made paged streaming rows slower: 256 x 32768 and prefill 16384.)
  __device__ __forceinline__ void put_above(Shared& s, u32 thr, i32* out,
                                            const IndexMap& map) const {
    u32 run = 0, parity = 0;
#pragma unroll 1
    for (u32 strip = 0; strip < n; strip += STRIP, parity ^= 1) {
      u64 e[PAIRS][2];
      load_strip(strip, e);
      u32 mine = 0;
#pragma unroll
      for (int u = 0; u < PAIRS; ++u)
        mine += ((u32)((u32)(e[u][0] >> 32) > thr) + (u32)((u32)(e[u][1] >> 32) > thr))
                << ((32 / PAIRS) * u);
      u32 at[PAIRS];
      const u32 total = group_offsets<PAIRS>(s.warp_sums[parity], mine, at);
      i32 m[PAIRS][2];
#pragma unroll
      for (int u = 0; u < PAIRS; ++u)
#pragma unroll
        for (int v = 0; v < 2; ++v)
          m[u][v] = (u32)(e[u][v] >> 32) > thr ? (i32)(u32)e[u][v] : -1;
      if (map.kind == MAP_PAGED) {
        i32 ent[PAIRS][2];
#pragma unroll
        for (int u = 0; u < PAIRS; ++u)
#pragma unroll
          for (int v = 0; v < 2; ++v) ent[u][v] = map.entry(m[u][v]);
#pragma unroll
        for (int u = 0; u < PAIRS; ++u)
#pragma unroll
          for (int v = 0; v < 2; ++v)
            if (m[u][v] >= 0) out[run + at[u]++] = map.paged(m[u][v], ent[u][v]);
      } else {
#pragma unroll
        for (int u = 0; u < PAIRS; ++u)
#pragma unroll
          for (int v = 0; v < 2; ++v)
            if (m[u][v] >= 0) out[run + at[u]++] = map(m[u][v]);
      }
      run += total;
    }
  }
};

// Keys copied out of a resident segment (only the select needs them, not their positions).
struct ListKeys {
  const u32* keys;
  u32 n;
  template <class F>
  __device__ __forceinline__ void each(F f) const {
#pragma unroll 4
    for (u32 i = threadIdx.x; i < n; i += THREADS) f(keys[i], true);
  }
};

// Candidates in registers: L vectors of VEC keys a thread, vector u of thread t at positions
// s0 + (u * THREADS + t) * VEC + [0, VEC); key 0 for a slot past the segment's end (FULL: the
// segment fills every slot).
template <int L, bool FULL>
struct RegisterKeys {
  static constexpr bool IN_REGISTERS = true;
  u32 key[L][VEC];
  u32 s0;
  template <class F>
  __device__ __forceinline__ void each(F f) const {
#pragma unroll
    for (int u = 0; u < L; ++u)
#pragma unroll
      for (int v = 0; v < VEC; ++v)
        f(key[u][v], FULL || key[u][v] != 0);
  }
  __device__ __forceinline__ u32 position(int u, int v) const {
    return s0 + (u * THREADS + threadIdx.x) * VEC + v;
  }
  // Index-order ranks of the keys above `thr`: one barrier for each word of packed counts
  // (a field holds a warp's count of one vector, up to 32 * VEC; a CTA's stays below 2^16).
  __device__ __forceinline__ Ranks<L> rank_above(Shared& s, u32 thr, u32) const {
    constexpr int H = L % 4 == 0 && 32 * VEC < 256 ? 4 : L % 2 == 0 ? 2 : 1;  // vectors a word
    static_assert(L % H == 0 && 32 * VEC < (1 << (32 / H)) && THREADS * VEC < (1 << 16), "fields never carry");
    Ranks<L> r;
    r.total = 0;
#pragma unroll
    for (int h = 0; h < L / H; ++h) {
      u32 mine = 0;
#pragma unroll
      for (int u = 0; u < H; ++u)
#pragma unroll
        for (int v = 0; v < VEC; ++v) mine += (u32)(key[h * H + u][v] > thr) << ((32 / H) * u);
      u32 at[H];
      const u32 total = group_offsets<H>(s.warp_sums[h & 1], mine, at);
#pragma unroll
      for (int u = 0; u < H; ++u) r.at[h * H + u] = r.total + at[u];
      r.total += total;
    }
    return r;
  }
  // out[rank] = position + offset for each key above `thr` (`r` from rank_above): straight to
  // the output for the unpaged maps (ragged adds the row's offset, plain 0), or to the stage.
  template <class T>
  __device__ __forceinline__ void scatter_above(const Ranks<L>& r, u32 thr, T* out,
                                                T offset) const {
    const T p0 = (T)(s0 + threadIdx.x * VEC) + offset;
#pragma unroll
    for (int u = 0; u < L; ++u) {
      T* o = out + r.at[u];
#pragma unroll
      for (int v = 0; v < VEC; ++v)
        if (key[u][v] > thr) *o++ = p0 + (T)(u * THREADS * VEC + v);
    }
  }
  // Stage the position of each key above `thr` at its rank (`r` from rank_above); returns the
  // CTA's count.
  __device__ __forceinline__ u32 stage_above(Shared&, const Ranks<L>& r, u32 thr,
                                             u32* stage) const {
    scatter_above(r, thr, stage, 0u);
    return r.total;
  }
  template <class Emit>
  __device__ __forceinline__ void keep_steps(Shared& s, const Cut& c, u32 base, u32& gt_run,
                                             u32& eq_run, Emit emit) const {
    keep_step<L, VEC>(
        s,
        [&](int u, int v) { return ((u64)key[u][v] << 32) | position(u, v); },
        c, base, gt_run, eq_run, emit);
  }
};

// Copy the keys of the row's sources that have the prefix of `d` (at most d.eq <= LIST of them
// in the cluster: the chosen bin's count) into `s.list` of every CTA, in no particular order
// (the select counts, it does not place), and return how many. This CTA's own come first (a
// count, a warp scan and one shared atomic a warp, then the copy); with P > 1 the peers'
// follow, read from their lists, so that the remaining digits need no cluster exchange.
template <class Src>
__device__ u32 list_prefix(Shared& s, const Src& src, const Digits& d, u32 rank, u32 P) {
  const u32 lane = threadIdx.x & 31;
  const auto in = [&](u32 key, bool valid) { return valid && ((key ^ d.prefix) & d.mask) == 0; };
  u32 c = 0;
  src.each([&](u32 key, bool valid) { c += in(key, valid); });
  u32 x = c;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const u32 y = __shfl_up_sync(0xffffffffu, x, o);
    if (lane >= o) x += y;
  }
  u32 base = 0;
  if (lane == 31 && x) base = atomicAdd(&s.list_n, x);
  u32 at = __shfl_sync(0xffffffffu, base, 31) + x - c;
  src.each([&](u32 key, bool valid) {
    if (in(key, valid)) s.list[at++] = key;
  });
  __syncthreads();
  const u32 own = s.list_n;
  if (P == 1) return own;
  cluster_sync();  // every CTA's list and count are final; a CTA appends only past its own
  // Lane r: CTA r's count and where its keys go here (after ours and the other peers' before r).
  const u32 cnt = lane_peer(smem_addr(&s.list_n), P, 0u), mine = lane == rank ? 0u : cnt;
  u32 end = mine;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const u32 y = __shfl_up_sync(0xffffffffu, end, o);
    if (lane >= o) end += y;
  }
  // Warp w copies peer w's keys (warps w + WARPS, ... with more peers than warps), so the
  // peers' reads are in flight together, 16 bytes a request (a peer's count's last few one at
  // a time: never read past it, where the peer is writing its own copies).
  const u32 list = smem_addr(s.list), warp = threadIdx.x >> 5;
  for (u32 r = warp; r < P; r += WARPS) {
    const u32 n = __shfl_sync(0xffffffffu, mine, r);
    const u32 to = own + __shfl_sync(0xffffffffu, end, r) - n;
    for (u32 i = 4 * lane; i < n; i += 4 * 32) {
      if (i + 4 <= n) {
        const uint4 v = peer_load4(peer(list + 4 * i, r));
        s.list[to + i] = v.x;
        s.list[to + i + 1] = v.y;
        s.list[to + i + 2] = v.z;
        s.list[to + i + 3] = v.w;
      } else {
        for (u32 j = i; j < n; ++j) s.list[to + j] = peer_load(peer(list + 4 * j, r));
      }
    }
  }
  __syncthreads();
  return own + __shfl_sync(0xffffffffu, end, 31);
}

// The cut keeping the `want` largest of the row's keys (`total` in the P sources of the
// cluster in [lo, hi], and with `below` others under lo that lose): the first digit over all
// of them, the rest over the few in its chosen bin, gathered in every CTA's list (or over all
// again if they do not fit).
template <class Src>
__device__ Cut row_cut(Shared& s, const Src& src, u32 want, u32 total, u32 lo, u32 hi,
                       bool below, bool tie_large, u32 rank, u32 P, u32* chist) {
  Digits d = start_digits(want, total, lo, hi, below);
  select_passes(s, src, d, P, chist, 1);
  if (d.bits > 0 && !d.whole) {
    // A buffer's keys are few already: copying them out would cost the streaming loop
    // registers (ptxas spills in it), so a buffer's digits all run over the buffer.
    if (Src::IN_REGISTERS && d.eq <= LIST) {  // the chosen bin's keys (of the cluster) fit
      const u32 n = list_prefix(s, src, d, rank, P);
      select_passes(s, ListKeys{s.list, n}, d, 1, chist, 3);
    } else {
      select_passes(s, src, d, P, chist, 3);
    }
  }
  return cut_of(d, tie_large);
}

// Pass over a source in index order handing each element of the cut to emit(position, entry);
// positions are `base`-relative where the row's earlier CTAs contribute `gt_base` elements above
// the cut and `eq_base` equal to K. In place in the buffer is safe: an element never moves to a
// later slot. Returns how many this CTA keeps.
template <class Src, class Emit>
__device__ u32 keep_cut(Shared& s, const Src& src, const Cut& c, u32 gt_base, u32 eq_base,
                        Emit emit) {
  const u32 base = gt_base + c.clamp(eq_base) - c.lo;
  u32 gt_run = gt_base, eq_run = eq_base;
  src.keep_steps(s, c, base, gt_run, eq_run, emit);
  return gt_run - gt_base + c.clamp(eq_run) - c.clamp(eq_base);
}

// ---- the row's window, requests and the fused transform -----------------------------------

// CTA `rank`'s segment [s0, s1) of a row span of `span` split over the P = 2^plog CTAs of its
// cluster: whole chunks, so every vector load of an aligned row stays aligned.
__device__ __forceinline__ void segment(i64 span, u32 P, int plog, u32 rank, u32& s0, u32& s1) {
  const i64 seg = (((span + P - 1) >> plog) + CHUNK - 1) / CHUNK * CHUNK;
  s0 = (u32)min(span, (i64)rank * seg);
  s1 = (u32)min(span, (i64)s0 + seg);
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
  if (p.req_map) return __ldg(p.req_map + row);
  int lo = 0, hi = p.num_req;  // largest r with cu_seqlens[r] <= row
  while (hi - lo > 1) {
    int mid = (lo + hi) >> 1;
    if (p.cu_seqlens[mid] <= row) lo = mid; else hi = mid;
  }
  return (p.num_req > 0 && p.cu_seqlens[lo] <= row && row < p.cu_seqlens[p.num_req]) ? lo : -1;
}

__device__ __forceinline__ IndexMap index_map(const Params& p, int row) {
  IndexMap m{p.transform, 0, nullptr, p.pt_cols, p.page_log2};
  if (p.transform == MAP_RAGGED) m.offset = __ldg(p.offsets + row);
  if (p.transform == MAP_PAGED) {
    const int req = find_request(p, row);
    if (req >= 0 && req < p.num_req) m.pt = p.page_table + (i64)req * p.pt_stride;
  }
  return m;
}

// Paged: pull the page-table entries of candidates [s0, s1) into L2 while the scores load, so
// that the write's lookups do not each wait for HBM. Only when they are at most 4k (a segment
// short next to k): then most of their sectors are read by the lookups anyway, where a long
// segment's k lookups touch a small share of its entries.
__device__ __forceinline__ void prefetch_pages(const IndexMap& m, u32 s0, u32 s1, u32 k) {
  if (m.kind != MAP_PAGED || !m.pt || s0 >= s1 || m.cols <= 0) return;
  const u32 first = s0 >> m.log2, last = min((s1 - 1) >> m.log2, (u32)m.cols - 1);
  if (first > last || last - first >= 4 * k) return;
  const u64 end = reinterpret_cast<u64>(m.pt + last + 1);
  for (u64 line = (reinterpret_cast<u64>(m.pt + first) & ~127ull) + 128 * threadIdx.x; line < end;
       line += 128 * THREADS)
    asm volatile("prefetch.global.L2 [%0];" ::"l"(line));
}

// ---- loading and streaming ------------------------------------------------------------------

// Raw 16-byte vectors, L a thread; slots outside [c0, end) are filled with zeros and masked
// when keyed. Vector u of thread t holds positions c0 + (u * THREADS + t) * VEC + [0, VEC).
// Positions are 32-bit: a row is at most 2^31 - 1 long.
template <int L>
struct Vecs {
  uint4 v[L];
};

// FULL: the row is aligned and [c0, end) covers every slot.
template <int L, bool FULL = false>
__device__ __forceinline__ void load_vecs(Vecs<L>& ch, const SCORE_T* rowp, bool aligned, u32 c0,
                                          u32 end) {
#pragma unroll
  for (int u = 0; u < L; ++u) {
    const u32 q0 = c0 + (u * THREADS + threadIdx.x) * VEC;
    if (FULL || (aligned && q0 + VEC <= end)) {
      ch.v[u] = __ldg(reinterpret_cast<const uint4*>(rowp + q0));
    } else {
      union { uint4 v; SCORE_T e[VEC]; } x;
      x.v = make_uint4(0u, 0u, 0u, 0u);
#pragma unroll
      for (int v = 0; v < VEC; ++v)
        if (q0 + v < end) x.e[v] = rowp[q0 + v];
      ch.v[u] = x.v;
    }
  }
}

__device__ __forceinline__ bool is_aligned(const SCORE_T* rowp) {
  return (reinterpret_cast<u64>(rowp) & 15u) == 0;
}

// The score in slot v of vector u.
template <int L>
__device__ __forceinline__ float score_at(const Vecs<L>& ch, int u, int v) {
  union { uint4 v; SCORE_T e[VEC]; } x;
  x.v = ch.v[u];
  return dsa::to_float(x.e[v]);
}

// The keys of loaded vectors (0 past `end`); widens [lo, hi] to cover them. RAW: NaNs keep
// their raw keys (raw_key); the caller checks the block's [lo, hi] for one and then makes
// the keys canonical (`resident`).
template <bool FULL, bool RAW = false, int L>
__device__ __forceinline__ RegisterKeys<L, FULL> keys_of(const Vecs<L>& ch, u32 c0, u32 end,
                                                         u32& lo, u32& hi) {
  RegisterKeys<L, FULL> r;
  r.s0 = c0;
#pragma unroll
  for (int u = 0; u < L; ++u)
#pragma unroll
    for (int v = 0; v < VEC; ++v) {
      const bool in = FULL || c0 + (u * THREADS + threadIdx.x) * VEC + v < end;
      const float f = score_at(ch, u, v);
      const u32 key = in ? (RAW ? raw_key(f) : order_key(f)) : 0u;
      r.key[u][v] = key;
      if (in) { lo = min(lo, key); hi = max(hi, key); }
    }
  return r;
}

// The floors the CTAs of the cluster published, one peer a lane: read a chunk before they are
// used (cluster_floor), so the distributed-shared-memory latency hides under a chunk's work.
__device__ __forceinline__ u32 read_floors(Shared& s, u32 P) {
  const u32 lane = threadIdx.x & 31;
  return lane < P ? peer_load_relaxed(peer(smem_addr(&s.kth), lane)) : 0u;
}

// The largest of the floors `read_floors` returned, as a strict bound (a key must be above it).
__device__ __forceinline__ u32 cluster_floor(u32 floors) {
  const u32 m = __reduce_max_sync(0xffffffffu, floors);
  return m > 0 ? m - 1 : 0u;
}

// The buffer's count and a range [lo, hi] holding all its keys (each thread tracks the keys it
// appended; lo is raised to the floor at every shrink).
struct Stream {
  u32 n, lo, hi;
  u32 seen;  // entries ever appended
};

// The least key that may still win after cutting the first `k` of some of the segment's
// scores with `c`: K after an exact cut, else T + 1. Published to the cluster, whose other CTAs
// then need key >= it (equal keys elsewhere may win on index).
__device__ __forceinline__ u32 publish_floor(Shared& s, const Cut& c) {
  const u32 least = c.K != 0 ? c.K : c.T + 1;
  if (threadIdx.x == 0) atomicMax(&s.kth, least);
  return least;
}

// Cut the buffer down to its top k and raise the floor G.
__device__ __forceinline__ void shrink(Shared& s, u64* buf, Stream& st, u32 k, bool tie_large,
                                       u32& G) {
  u32 lo = st.lo, hi = st.hi;
  block_minmax(s, lo, hi);
  const BufferKeys src{buf, st.n};
  const Cut c = select_cut(s, src, k, st.n, lo, hi, tie_large, 1, nullptr);
  st.n = keep_cut(s, src, c, 0, 0, [&](u32 pos, u64 e) { buf[pos] = e; });
  __syncthreads();
  // Later scores of this segment need key > K with tie small (they lose to the kept equal
  // ones), >= K with tie large, and key > T after a bin cut.
  G = max(G, c.K != 0 ? (tie_large ? c.K - 1 : c.K) : c.T);
  st.lo = max(st.lo, publish_floor(s, c));
}

// Stream positions [s0, s1) of the row into the buffer. With `guess`, a long segment seeds
// its floor from the first chunk's expected share of the segment's top k (5/4 of it, plus 48:
// six standard deviations of that rank's estimate for scores alike along the row),
// which may be too high: the caller streams again without `guess` when fewer than k scores
// passed it.
__device__ Stream stream_pass(Shared& s, u64* buf, const SCORE_T* rowp, u32 s0, u32 s1, u32 k,
                              bool tie_large, u32 P, bool guess) {
  const bool aligned = is_aligned(rowp);
  Stream st{0u, 0xffffffffu, 0u, 0u};
  u32 G = 0, chunk = 0, floors = 0;
  Vecs<LOADS> cur, nxt = {};
  if (s0 < s1) load_vecs(cur, rowp, aligned, s0, s1);
#pragma unroll 1
  for (u32 c0 = s0; c0 < s1; c0 += CHUNK) {
    if (c0 + CHUNK < s1) load_vecs(nxt, rowp, aligned, c0 + CHUNK, s1);
    const bool whole = c0 + CHUNK <= s1;  // only the last chunk of a segment checks positions
    if (c0 == s0 && whole && (u32)CHUNK > k) {
      // Seed G with one digit over the first chunk's keys: at least k of them are above it.
      u32 lo = 0xffffffffu, hi = 0u;
      const RegisterKeys<LOADS, true> first = keys_of<true>(cur, c0, s1, lo, hi);
      block_minmax(s, lo, hi);
      // The chunk itself is filtered next, so its own keys equal to the floor must pass. A
      // guessed floor is this CTA's alone: only a floor that k scores pass is published.
      const u32 share = (u32)min((u64)k, 5ull * k * CHUNK / (4ull * (s1 - s0)) + 48);
      if (guess && share < k) {
        const Cut c = select_cut(s, first, share, CHUNK, lo, hi, tie_large, 1, nullptr, 2);
        G = max(G, (c.K != 0 ? c.K : c.T + 1) - 1);
      } else {
        const Cut c = select_cut(s, first, k, CHUNK, lo, hi, tie_large, 1, nullptr, 1);
        G = max(G, publish_floor(s, c) - 1);
      }
    }
    // Shrink when the next chunk might not fit, and early once the buffer holds a few times k:
    // the floor then rises to the k-th key seen so far (and is published to the cluster), so
    // later chunks pass fewer scores than a guessed or first-chunk floor lets through.
    if (st.n + CHUNK > CAP || st.n >= max(3 * k, (u32)CHUNK)) shrink(s, buf, st, k, tie_large, G);
    if (P > 1) {
      G = max(G, cluster_floor(floors));
      floors = read_floors(s, P);  // for the next chunk
    }
    // One bit a passing slot (slot j: vector j / VEC, lane j % VEC) and counts packed by vector;
    // the append then visits only the passing slots.
    const float Gf = floor_value(G);
    constexpr int FB = 32 / LOADS;
    float f[PER_THREAD];
    u32 m = 0;
#pragma unroll
    for (int j = 0; j < PER_THREAD; ++j) {
      const int u = j / VEC, v = j % VEC;
      f[j] = score_at(cur, u, v);
      if (!(f[j] <= Gf)) m |= 1u << j;
    }
    if (!whole)  // the last chunk: slots past the segment's end never pass
#pragma unroll
      for (int j = 0; j < PER_THREAD; ++j)
        if (c0 + ((j / VEC) * THREADS + threadIdx.x) * VEC + j % VEC >= s1) m &= ~(1u << j);
    u32 packed = 0;
#pragma unroll
    for (int u = 0; u < LOADS; ++u) packed += (u32)__popc((m >> (u * VEC)) & ((1u << VEC) - 1u)) << (FB * u);
    u32 at[LOADS];
    const u32 total = group_offsets<LOADS>(s.warp_sums[chunk & 1], packed, at);
    if (total) {
      while (m) {
        const int j = __ffs(m) - 1;
        m &= m - 1;
        float x = f[0];
#pragma unroll
        for (int jj = 1; jj < PER_THREAD; ++jj) x = j == jj ? f[jj] : x;
        const int u = LOADS == 1 ? 0 : j / VEC;
        const u32 key = order_key(x);
        const u32 slot = st.n + (u == 0 ? at[0]++ : at[LOADS - 1]++);
        buf[slot] = ((u64)key << 32) | (c0 + (u * THREADS + threadIdx.x) * VEC + j % VEC);
        st.lo = min(st.lo, key);
        st.hi = max(st.hi, key);
      }
      st.n += total;
      st.seen += total;
    }
    ++chunk;
    cur = nxt;
  }
  __syncthreads();
  return st;
}

// Bitonic sort of buf[0, n) by the total order (descending composite), then write the row.
__device__ void write_sorted(const Params& p, const Shared& s, u64* buf, u32 n, int row,
                             bool tie_large) {
  const IndexMap map = s.map;
  u32 N = 2;
  while (N < n) N <<= 1;
  for (u32 i = threadIdx.x; i < N; i += THREADS) {
    if (i < n) {
      const u64 e = buf[i];
      const u32 idx = (u32)e;
      buf[i] = (e & 0xffffffff00000000ull) | (tie_large ? idx : ~idx);
    } else {
      buf[i] = 0ull;  // below every element
    }
  }
  __syncthreads();
  for (u32 size = 2; size <= N; size <<= 1) {
    for (u32 half = size >> 1; half > 0; half >>= 1) {
      for (u32 t = threadIdx.x; t < N / 2; t += THREADS) {
        const u32 i = 2 * t - (t & (half - 1)), j = i + half;
        const bool desc = (i & size) == 0;
        const u64 a = buf[i], b = buf[j];
        if ((a < b) == desc) { buf[i] = b; buf[j] = a; }
      }
      __syncthreads();
    }
  }
  i32* out = p.out + (i64)row * p.k;
  for (int j = threadIdx.x; j < p.k; j += THREADS) {
    i32 idx = -1;
    if (j < (int)n) {
      const u32 low = (u32)buf[j];
      idx = (i32)(tie_large ? low : ~low);
    }
    out[j] = map(idx);
  }
}

// Write the set of cut `c` of the row (the union of the P sources holds `total` keys): in
// index order through ordered scans, or gathered on rank 0 and sorted.
template <class Src>
__device__ __forceinline__ void write_cut(const Params& p, Shared& s, u64* buf, const Src& src,
                                          const Cut& c, u32 total, int row, u32 rank,
                                          u32 P) {
  const u32 k = (u32)p.k, kept_all = min(total, k);
  i32* out = p.out + (i64)row * p.k;
  u32 gt_base = 0, eq_base = 0;
  if (P > 1) {
    u32 gt, eq;
    count_cut(s, src, c, gt, eq);
    push_to(s.gt_from, gt, rank, rank + 1, P);
    push_to(s.eq_from, eq, rank, rank + 1, P);
    cluster_sync();
    gt_base = __reduce_add_sync(0xffffffffu, lane_slot(s.gt_from, rank, 0u));
    eq_base = __reduce_add_sync(0xffffffffu, lane_slot(s.eq_from, rank, 0u));
  }
  const u32 out_base = gt_base + c.clamp(eq_base) - c.lo;
  if (!p.sorted) {
    const IndexMap map = s.map;
    keep_cut(s, src, c, gt_base, eq_base, [&](u32 pos, u64 e) {
      out[out_base + pos] = map((i32)(u32)e);
    });
    if (rank == 0)
      for (u32 j = kept_all + threadIdx.x; j < k; j += THREADS) out[j] = -1;
    return;
  }
  const u32 kept = keep_cut(s, src, c, gt_base, eq_base, [&](u32 pos, u64 e) { buf[pos] = e; });
  __syncthreads();
  if (P > 1) {
    // Gather the set on rank 0 (each CTA's share lands at its output offset), sort there.
    cluster_sync();
    if (rank > 0) {
      const u32 dst = peer(smem_addr(buf + out_base), 0);
      for (u32 j = threadIdx.x; j < kept; j += THREADS) peer_store64(dst + 8 * j, buf[j]);
    }
    cluster_sync();
    if (rank > 0) return;
  }
  write_sorted(p, s, buf, kept_all, row, p.tie_large != 0);
}

// write_cut for keys in registers, out of line: the rare cuts (a tie across the cut, sorted
// output) then take their registers and spills for themselves, not from the common path. The
// keys come by value, so the common path never stores them to local memory.
template <int L, bool FULL>
__device__ __noinline__ void write_cut_out_of_line(const Params& p, Shared& s, u64* buf,
                                                   const RegisterKeys<L, FULL> src, Cut c,
                                                   u32 total, int row, u32 rank, u32 P) {
  write_cut(p, s, buf, src, c, total, row, rank, P);
}

// out[j] = map(x_j) for j in [0, n), where out - lead is 16-byte aligned and vals(q) gives
// x_j for the four j in [4q - lead, 4q - lead + 4): a whole vector with one store, a partial
// first or last one element by element. Paged: a vector's four page-table entries are read
// before any is used.
template <class Vals>
__device__ __forceinline__ void store_mapped(i32* out, u32 lead, u32 n, const IndexMap& map,
                                             Vals vals) {
  i32* line = out - lead;
  const u32 end = lead + n;
  for (u32 q = threadIdx.x; 4 * q < end; q += THREADS) {
    const uint4 raw = vals(q);
    const u32 x[4] = {raw.x, raw.y, raw.z, raw.w};
    i32 m[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) m[i] = 4 * q + i >= lead && 4 * q + i < end ? (i32)x[i] : -1;
    if (map.kind == MAP_PAGED) {
      i32 ent[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) ent[i] = map.entry(m[i]);
#pragma unroll
      for (int i = 0; i < 4; ++i) m[i] = map.paged(m[i], ent[i]);
    } else {
#pragma unroll
      for (int i = 0; i < 4; ++i) m[i] = map(m[i]);
    }
    if (4 * q >= lead && 4 * q + 4 <= end) {
      reinterpret_cast<int4*>(line)[q] = make_int4(m[0], m[1], m[2], m[3]);
    } else {
#pragma unroll
      for (int i = 0; i < 4; ++i)
        if (4 * q + i >= lead && 4 * q + i < end) line[4 * q + i] = m[i];
    }
  }
}

// Elements of `out` before its 16-byte line.
__device__ __forceinline__ u32 lead_of(const i32* out) {
  return (u32)(reinterpret_cast<u64>(out) >> 2) & 3u;
}

// Copy the n positions staged from stage[lead] (lead = lead_of(out)) to out[0, n), mapped.
// Out of line: inlined, it cost the streaming loop spills (ptxas).
__device__ __noinline__ void flush_stage(const u32* stage, u32 lead, u32 n, i32* out,
                                         const IndexMap map) {
  static_assert(KMAX + 3 <= 2 * BINS + 4, "a row's positions fit the stage");
  store_mapped(out, lead, n, map,
               [&](u32 q) { return reinterpret_cast<const uint4*>(stage)[q]; });
}

// A row whose len <= k candidates are all in the set, in index order: out[j] = map(j) for
// j < len, -1 after.
__device__ __forceinline__ void write_all(i32* out, u32 len, u32 k, const IndexMap& map) {
  const u32 lead = lead_of(out);
  store_mapped(out, lead, k, map, [&](u32 q) {
    u32 x[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const u32 j = 4 * q + i - lead;  // wraps for the slots before out (not stored)
      x[i] = j < len ? j : 0xffffffffu;
    }
    return make_uint4(x[0], x[1], x[2], x[3]);
  });
}

// The keys of a source above a threshold cut, written in index order: one compare a key and
// one block scan (a strip of the buffer, or all of a CTA's registers).
template <class Src>
__device__ __forceinline__ void write_above(const Params& p, Shared& s, const Src& src, u32 thr,
                                            u32 total, int row, u32 rank, u32 P) {
  const u32 k = (u32)p.k;
  i32* out = p.out + (i64)row * p.k;
  const auto r = src.rank_above(s, thr, P);
  u32 base = 0;
  if (P > 1) {
    push_to(s.gt_from, r.total, rank, rank + 1, P);
    cluster_sync();
    base = __reduce_add_sync(0xffffffffu, lane_slot(s.gt_from, rank, 0u));
  }
  if constexpr (Src::IN_REGISTERS) {
    const IndexMap map = s.map;
    if (map.kind == MAP_PAGED) {
      // Paged: staged in shared memory first, so that a thread's page-table lookups are all
      // in flight together and the output takes whole 16-byte stores.
      i32* to = out + base;
      const u32 lead = lead_of(to);
      const u32 n = src.stage_above(s, r, thr, s.stage + lead);
      __syncthreads();
      flush_stage(s.stage, lead, n, to, map);
    } else {
      src.scatter_above(r, thr, out + base, map.offset);
    }
  } else {
    src.put_above(s, thr, out + base, s.map);
  }
  if (rank == 0)
    for (u32 j = min(total, k) + threadIdx.x; j < k; j += THREADS) out[j] = -1;
}

// A floor under which this CTA's keys (n of them, in [lo, hi]) cannot reach the row's top
// `share` of them: the least key of the bin of one local digit where the count from the top
// reaches `share` (all of them if n <= share), and how many keys are at or above it.
template <class Src>
__device__ __forceinline__ void local_floor(Shared& s, const Src& src, u32 n, u32 lo, u32 hi,
                                            u32 share, u32& floor, u32& at_or_above) {
  floor = lo;
  at_or_above = n;
  if (n <= share) return;
  Digits d = start_digits(share, n, lo, hi);
  select_passes(s, src, d, 1, nullptr, 1);
  floor = d.prefix;
  at_or_above = share - d.need + d.eq;
}

// Select the row's top-k over the P sources of its cluster (this CTA's holds n keys in
// [lo, hi], block-wide, or none with lo > hi) and write it.
template <class Src>
__device__ void finish(const Params& p, Shared& s, u64* buf, u32* chist, const Src& src, u32 n,
                       u32 lo, u32 hi, int row, u32 rank, u32 P) {
  const u32 k = (u32)p.k;
  // The union's size decides whether anything must be cut; its key range sets the digits.
  u32 total = n, cands = n;
  bool below = false;
  if (P > 1) {
    // Keys held in registers are many: each CTA first finds a floor its share of k reaches,
    // and the row's select starts from the least of those floors when the keys above them
    // add up to k. Its first (cluster-wide) digit then spreads only the row's likely winners
    // over the bins, so its chosen bin fits the list, where a digit over the whole key range
    // often takes several cluster-wide digits.
    u32 floor = lo, above = n;
    if constexpr (Src::IN_REGISTERS) local_floor(s, src, n, lo, hi, (k + P - 1) / P, floor, above);
    // Published and pulled: in the resident form this barrier is the cluster's first, so no
    // peer may be written before it (it may not have started).
    if (threadIdx.x == 0) {
      s.pub[PUB_N] = n; s.pub[PUB_LO] = lo; s.pub[PUB_HI] = hi;
      s.pub[PUB_FLOOR] = floor; s.above_pub = above;
    }
    cluster_sync();
    const u32 lane = threadIdx.x & 31, at = smem_addr(s.pub);
    const uint4 a = lane < P ? peer_load4(peer(at, lane)) : make_uint4(0u, ~0u, 0u, ~0u);
    total = __reduce_add_sync(0xffffffffu, a.x);
    lo = __reduce_min_sync(0xffffffffu, a.y);
    hi = __reduce_max_sync(0xffffffffu, a.z);
    floor = __reduce_min_sync(0xffffffffu, a.w);
    above = __reduce_add_sync(0xffffffffu, lane_peer(smem_addr(&s.above_pub), P, 0u));
    // Every CTA holds at least its `above` keys at or over its floor, so at least the sum of
    // them over the row's least floor.
    if (above >= k && floor > lo) { lo = floor; cands = above; below = true; }
  }
  const Cut c = total > k ? row_cut(s, src, k, below ? cands : total, lo, hi, below,
                                    p.tie_large != 0, rank, P, chist)
                          : Cut{0u, 0u, 0u, 0u, false};
  if (!p.sorted && c.is_threshold())
    write_above(p, s, src, c.above(), total, row, rank, P);
  else if constexpr (Src::IN_REGISTERS)
    write_cut_out_of_line(p, s, buf, src, c, total, row, rank, P);
  else
    write_cut(p, s, buf, src, c, total, row, rank, P);
}

// Select and write a row whose candidates [s0, s1) are loaded in `raw` (a segment load_vecs
// read from s0; slots past s1 are masked).
template <bool FULL>
__device__ __forceinline__ void resident(const Params& p, Shared& s, u64* buf, u32* chist,
                                         const Vecs<RES_LOADS>& raw, u32 s0, u32 s1, int row,
                                         u32 rank, u32 P) {
  u32 lo = 0xffffffffu, hi = 0u;
  auto keys = keys_of<FULL, true>(raw, s0, s1, lo, hi);
  block_minmax(s, lo, hi);
  if (lo <= hi && (is_nan_key(lo) || is_nan_key(hi))) {  // rare: a NaN, its raw key at an end of the range
    lo = 0xffffffffu;
    hi = 0u;
#pragma unroll
    for (int u = 0; u < RES_LOADS; ++u)
#pragma unroll
      for (int v = 0; v < VEC; ++v)
        if (FULL || keys.position(u, v) < s1) {
          keys.key[u][v] = canonical(keys.key[u][v]);
          lo = min(lo, keys.key[u][v]);
          hi = max(hi, keys.key[u][v]);
        }
    block_minmax(s, lo, hi);
  }
  finish(p, s, buf, chist, keys, s1 - s0, lo, hi, row, rank, P);
}

}  // namespace topk

using namespace topk;

// Grid (rows * P): CTAs [row * P, row * P + P) form one cluster and share row `row`.
extern "C" __global__ void __launch_bounds__(THREADS, MIN_BLOCKS) DSA_ENTRY_TOPK(const __grid_constant__ Params p) {
  __shared__ Shared s;
  extern __shared__ uint4 dyn_smem[];
  const u32 P = (u32)p.cluster;
  u32* chist = reinterpret_cast<u32*>(dyn_smem);
  u64* buf = reinterpret_cast<u64*>(reinterpret_cast<char*>(dyn_smem) + (P > 1 ? SMEM_CLUSTER : 0));
  const int plog = __ffs(P) - 1;  // P is a power of two
  const int row = blockIdx.x >> plog;
  const u32 rank = blockIdx.x & (P - 1);
  i64 start, len;
  row_window(p, row, start, len);
  const auto row_ptr = [&] {
    return reinterpret_cast<const SCORE_T*>(p.scores) + (i64)row * p.stride + start;
  };
  u32 s0, s1;
#if SEGMENTS_RESIDENT
  // With P > 1 and no row starts the window starts at 0 and the segments split the stride, so
  // a CTA's loads need no device data and leave before the row's length arrives (the part past
  // the length is read, in bounds, and masked). Every CTA of a cluster sees the same split.
  const bool early = P > 1 && !p.row_starts;
  segment(early ? p.stride : len, P, plog, rank, s0, s1);
  const SCORE_T* rowp = row_ptr();
  const bool full = s1 - s0 == (u32)TILE && is_aligned(rowp);
  Vecs<RES_LOADS> raw;
  const auto load = [&] {
    if (full) load_vecs<RES_LOADS, true>(raw, rowp, true, s0, s1);
    else load_vecs<RES_LOADS>(raw, rowp, is_aligned(rowp), s0, s1);
  };
  if (early) load();
#endif
  const IndexMap map = index_map(p, row);
  if (!p.sorted && len <= (i64)p.k) {
    // Every candidate is in the set and the order is by index: no score needs reading. The
    // whole cluster takes this branch, so no cluster barrier is skipped by some of it.
    i32* out = p.out + (i64)row * p.k;
    if (rank == 0) write_all(out, (u32)len, (u32)p.k, map);
    return;
  }
  if (threadIdx.x == 0) { s.kth = 0; s.list_n = 0; s.map = map; }
  clear_bins(s.hist[0]);
  if (P > 1)
    for (int i = threadIdx.x; i < 3 * BINS; i += THREADS) chist[i] = 0;
#if SEGMENTS_RESIDENT
  // A row of one CTA is loaded only when its scores are needed (many prefill rows are not).
  if (!early) load();
  // The plan launches this form only when every segment (at most the stride's share) fits a
  // tile. finish's first barrier covers the zeroing above (no peer is read before it).
  const u32 e1 = (u32)min((i64)s1, len), e0 = min(s0, e1);  // the candidates among the loads
  prefetch_pages(map, e0, e1, (u32)p.k);
  if (full && e1 == s1)
    resident<true>(p, s, buf, chist, raw, s0, s1, row, rank, P);
  else
    resident<false>(p, s, buf, chist, raw, e0, e1, row, rank, P);
#else
  segment(len, P, plog, rank, s0, s1);
  prefetch_pages(map, s0, s1, (u32)p.k);
  const SCORE_T* rowp = row_ptr();
  row_sync(P);  // peers have started, floors and cluster histograms are zero
  const bool tie_large = p.tie_large != 0;
  Stream st;
#pragma unroll 1
  for (bool guess = true;; guess = false) {
    st = stream_pass(s, buf, rowp, s0, s1, (u32)p.k, tie_large, P, guess);
    if (!guess || st.seen >= (u32)p.k || st.seen == s1 - s0) break;  // else the guess was too high
  }
  block_minmax(s, st.lo, st.hi);
  finish(p, s, buf, chist, BufferKeys{buf, st.n}, st.n, st.lo, st.hi, row, rank, P);
#endif
}
