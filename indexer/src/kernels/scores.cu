// Indexer scores: logit[t, s] = sum_h w'[t,h] * relu(dot(q8[t,h], k8[s]) * k_scale[s]).
//
// One warp scores one query token against 8 keys per tile with FP8 tensor-core MMA
// (m16n8k32, e4m3 x e4m3 -> f32): A = the token's [H, D] query (heads are M, kept in
// registers), B = 8 keys (N). The K dimension is permuted identically in A and B (the dot
// product does not care), so each thread loads D/4 contiguous bytes of one head or key:
// logical (k-step j, k = c*4 + i) is byte c*D/4 + 8j + i, (j, 16 + c*4 + i) is byte
// c*D/4 + 8j + 4 + i, where c = lane % 4. sm_80 has no FP8 MMA: there the same fragments go
// through a shuffle-based scalar emulation (correct, slow; for portability only).
//
// Defines: H (heads, multiple of 16), D (64 or 128), DWARPS (warps per decode block),
// DSTAGES (shared-memory stages of the decode pipeline), DMINB (decode blocks per SM the
// register budget is sized for), PWARPS (tokens per prefill block, register path), BN (keys
// per prefill shared-memory tile, register path), PTOK (tokens per prefill block, sm_90a),
// PSTAGES (key stages of the sm_90a prefill pipeline), PMINB (sm_90a prefill blocks per SM the
// register budget is sized for).

#define MT (H / 16)
#define KT (D / 32)
#define KW (D / 16)
#define PART (D / 4)
#define KPITCH (D >= 128 ? D + 16 : D)
#define FULL_MASK 0xffffffffu

namespace sc {

__device__ __forceinline__ float neg_inf() { return __int_as_float(0xff800000); }

// c += A(16x32, row) * B(32x8, col), e4m3 inputs, f32 accumulators (PTX fragment layouts).
__device__ __forceinline__ void mma_e4m3(float c[4], const u32 a[4], u32 b0, u32 b1) {
#if __CUDA_ARCH__ >= 890
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
  const int lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
  for (int src = 0; src < 4; ++src) {
    const int la = g * 4 + src, n0 = (2 * q) * 4 + src, n1 = (2 * q + 1) * 4 + src;
    const u32 a0 = __shfl_sync(FULL_MASK, a[0], la), a1 = __shfl_sync(FULL_MASK, a[1], la);
    const u32 a2 = __shfl_sync(FULL_MASK, a[2], la), a3 = __shfl_sync(FULL_MASK, a[3], la);
    const u32 b00 = __shfl_sync(FULL_MASK, b0, n0), b10 = __shfl_sync(FULL_MASK, b1, n0);
    const u32 b01 = __shfl_sync(FULL_MASK, b0, n1), b11 = __shfl_sync(FULL_MASK, b1, n1);
    for (int i = 0; i < 4; ++i) {
      const int sh = 8 * i;
#define E4(w) dsa::to_float(dsa::fp8e4m3{(u8)((w) >> sh)})
      c[0] += E4(a0) * E4(b00) + E4(a2) * E4(b10);
      c[1] += E4(a0) * E4(b01) + E4(a2) * E4(b11);
      c[2] += E4(a1) * E4(b00) + E4(a3) * E4(b10);
      c[3] += E4(a1) * E4(b01) + E4(a3) * E4(b11);
#undef E4
    }
  }
#endif
}

// D/4 bytes at p (16-byte aligned, global or shared) as KW words.
__device__ __forceinline__ void load_part(const u8* p, u32 w[KW]) {
#pragma unroll
  for (int v = 0; v < KW / 4; ++v) {
    const uint4 q = reinterpret_cast<const uint4*>(p)[v];
    w[4 * v] = q.x;
    w[4 * v + 1] = q.y;
    w[4 * v + 2] = q.z;
    w[4 * v + 3] = q.w;
  }
}

// Mirrors `PagedParams` in scores.rs field for field.
struct PagedParams {
  u64 q8;            // [batch, H, D] u8
  u64 wq;            // [batch, H] f32
  u64 cache;         // paged index-key cache
  u64 block_table;   // [batch, bt_stride] i32
  u64 context_lens;  // [batch] i32
  u64 logits;        // [batch, stride] f32
  u64 row_map;       // [batch] i32 written with the identity (top-k's request map), or 0
  i64 stride;
  i64 bt_stride;
  i64 num_pages;
  i32 batch;
  i32 bt_cols;
  i32 page_log2;
  i32 cols_per_split;
};

// Mirrors `RaggedParams` in scores.rs field for field.
struct RaggedParams {
  u64 q8;           // [tokens, H, D] u8
  u64 wq;           // [tokens, H] f32
  u64 k8;           // [num_keys, D] u8
  u64 kscale;       // [num_keys] f32
  u64 ks;           // [tokens] i32 first key
  u64 ke;           // [tokens] i32 end key
  u64 logits;       // [tokens, stride] f32
  u64 starts_out;   // [tokens] i32 clamped ks, or 0
  u64 lengths_out;  // [tokens] i32 clamped ke - ks, or 0
  i64 stride;
  i32 tokens;
  i32 num_keys;
  i32 cols_per_split;
  i32 pad;
};

}  // namespace sc

// Decode. Block (b, y) scores request b's columns [y*cps, (y+1)*cps) through its block table;
// columns at or beyond the context length (and keys on invalid pages) get -inf.
//
// The block streams its columns in tiles of DKEYS = 16 * DWARPS keys through a DSTAGES-deep
// ring of shared-memory stages filled by cp.async (16-byte chunks gathered through the block
// table, zero-filled for keys past the context or on invalid pages), one commit group per tile,
// so (DSTAGES - 1) tiles are in flight while one is scored. The block-table entries of a tile
// are loaded one tile ahead (lane l of each warp holds the tile's l-th page) and handed to the
// copying threads by shuffle. The query [H, D] arrives in shared memory with the first tile and
// then lives in registers for the whole block.
//
// Scoring swaps the roles of the prefill kernel: keys are the MMA's M (warp w owns keys
// 16w..16w+15 of a tile: rows g and g+8 of its A fragment) and heads are N (H/8 column tiles of
// 8 heads). A thread's accumulators hold heads 8n+2c, 8n+2c+1 of keys g and g+8, so the
// weighted ReLU sum over heads needs one 4-lane reduction per 16 keys. With the K permutation
// above each thread reads D/4 contiguous bytes of a key row; the rows are stored with their
// 16-byte chunks XOR-swizzled by the row index, which makes both the cp.async writes and the
// fragment reads free of bank conflicts.
//
// On sm_90a the tile is one warpgroup MMA instead (the block is one warpgroup): wgmma
// m64nNk32 e4m3 reads keys (A, 64 x D) and the query (B, H x D) straight from shared memory
// through descriptors; the XOR swizzle above is the hardware's 128-byte (D = 128) or 64-byte
// (D = 64) swizzle, so the same stages feed both paths. Hopper has no native FP8 mma.sync (it
// is lowered to f16 conversions and HMMA), which is what made the register path slow there.
//
// When every key scale of the warp's 16 keys is positive and finite (what the key path
// writes), relu(x * s) = s * relu(x) and the scale is applied once per key; otherwise the
// literal per-head form runs.

#define DKEYS (DWARPS * 16)
#define CPK (D / 16)
#define NT (H / 8)
#define DTHREADS (DWARPS * 32)
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define DSA_SM90A 1  // wgmma helpers; the prefill kernel's wgmma path
#endif
#if defined(DSA_SM90A) && DWARPS == 4
#define DSA_WGMMA 1  // the decode kernel's wgmma path
#define DBLOCKS DMINB_WG
#else
#define DBLOCKS DMINB
#endif

namespace sc {

__device__ __forceinline__ u32 smem_u32(const void* p) {
  return (u32)__cvta_generic_to_shared(p);
}

// 16 bytes global -> shared, bypassing L1; `bytes` < 16 zero-fills the rest (0: no read).
__device__ __forceinline__ void cp_async16(u32 dst, const void* src, u32 bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(bytes)
               : "memory");
}
// 4 bytes global -> shared (through L1, the only form for 4 bytes); `bytes` 0 writes a zero.
__device__ __forceinline__ void cp_async4(u32 dst, const void* src, u32 bytes) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// Byte offset of 16-byte chunk `ch` of row `r` in a swizzled [rows, D] shared-memory array.
// The chunk index is XORed with bits 7.. of the row's byte offset: the 128-byte (D = 128) and
// 64-byte (D = 64) swizzle modes of wgmma, and free of bank conflicts for the register path.
__device__ __forceinline__ int swz(int r, int ch) {
  return r * D + ((ch ^ ((r * D >> 7) & (CPK - 1))) << 4);
}

// This thread's D/4 bytes (c = lane % 4) of row `r` of a swizzled array, as KW words.
__device__ __forceinline__ void load_part_swz(const u8* base, int r, int c, u32 w[KW]) {
#pragma unroll
  for (int v = 0; v < CPK / 4; ++v) {
    const uint4 x = *reinterpret_cast<const uint4*>(base + swz(r, c * (CPK / 4) + v));
    w[4 * v] = x.x;
    w[4 * v + 1] = x.y;
    w[4 * v + 2] = x.z;
    w[4 * v + 3] = x.w;
  }
}

// Every array starts on a multiple of 1024 bytes from the (1024-aligned) base: the swizzle
// atoms of wgmma must be aligned.
struct DecodeSmem {
  u8 keys[DSTAGES][DKEYS * D];  // swizzled key rows
  u8 q[H * D];                  // swizzled query rows
  float scale[DSTAGES][DKEYS];
  int ok[DSTAGES][DKEYS / 4];  // page valid, per group of 4 keys (always on one page)
};

// Lane l's block-table entry for the tile starting at column s0: its l-th page, or -1 past the
// tile's pages or the context (a tile never spans more than 32 pages: P >= 4).
__device__ __forceinline__ int tile_page(const i32* table, i64 s0, i64 end, int plog, int lane) {
  const int pages = ((i64)1 << plog) >= DKEYS ? 1 : DKEYS >> plog;
  const i64 pi = (s0 >> plog) + lane;
  return (lane < pages && (pi << plog) < end) ? __ldg(table + pi) : -1;
}

// Issues the copies of the tile at column s0 into stage `st` (every thread; no commit).
__device__ __forceinline__ void issue_tile(DecodeSmem& sm, int st, i64 s0, i64 end, int pg,
                                           const PagedParams& p, int tid) {
  const int plog = p.page_log2;
  const i64 pmask = ((i64)1 << plog) - 1;
  const i64 page_bytes = ((i64)1 << plog) * (D + 4);
  const u8* cache = (const u8*)p.cache;
  const u32 kbase = smem_u32(sm.keys[st]);
  if (((i64)1 << plog) >= DKEYS) {  // the tile is DKEYS consecutive slots of one page
    const int page = __shfl_sync(FULL_MASK, pg, 0);
    const bool live = page >= 0 && page < p.num_pages;
    const u8* base = cache + page * page_bytes + (s0 & pmask) * D;
#pragma unroll
    for (int i = 0; i < DKEYS * CPK / DTHREADS; ++i) {
      const int v = tid + i * DTHREADS, key = v / CPK;
      const bool ok = live && s0 + key < end;
      cp_async16(kbase + swz(key, v % CPK), ok ? base + v * 16 : cache, ok ? 16u : 0u);
    }
  } else {
#pragma unroll
    for (int i = 0; i < DKEYS * CPK / DTHREADS; ++i) {
      const int v = tid + i * DTHREADS, key = v / CPK, ch = v % CPK;
      const i64 s = s0 + key;
      const int page = __shfl_sync(FULL_MASK, pg, key >> plog);
      const bool ok = s < end && page >= 0 && page < p.num_pages;
      const u8* src = ok ? cache + page * page_bytes + (s & pmask) * D + ch * 16 : cache;
      cp_async16(kbase + swz(key, ch), src, ok ? 16u : 0u);
    }
  }
  const int key = 4 * (tid & 31);
  const int page = __shfl_sync(FULL_MASK, pg, (key >> plog) & 31);
  if (tid < DKEYS / 4) {
    const i64 s = s0 + key;
    const bool ok = s < end && page >= 0 && page < p.num_pages;
    const u8* src =
        ok ? cache + page * page_bytes + (pmask + 1) * D + (s & pmask) * 4 : cache;
    cp_async16(smem_u32(&sm.scale[st][key]), src, ok ? 16u : 0u);
    sm.ok[st][tid] = ok;
  }
}

// Weighted ReLU sums over all heads of keys r0 (l0) and r0 + 8 (l1), partial over this
// thread's heads. SCALED: the key scales are applied per head (the literal form).
template <bool SCALED>
__device__ __forceinline__ void key_logits(const u32 qf[NT][KW], const float w[NT][2],
                                           const u32 a0[KW], const u32 a1[KW], float s0,
                                           float s1, float& l0, float& l1) {
  l0 = 0.0f;
  l1 = 0.0f;
#pragma unroll
  for (int n = 0; n < NT; ++n) {
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
    for (int j = 0; j < KT; ++j) {
      const u32 a[4] = {a0[2 * j], a1[2 * j], a0[2 * j + 1], a1[2 * j + 1]};
      mma_e4m3(acc, a, qf[n][2 * j], qf[n][2 * j + 1]);
    }
    if (SCALED) {
      l0 += w[n][0] * fmaxf(acc[0] * s0, 0.0f) + w[n][1] * fmaxf(acc[1] * s0, 0.0f);
      l1 += w[n][0] * fmaxf(acc[2] * s1, 0.0f) + w[n][1] * fmaxf(acc[3] * s1, 0.0f);
    } else {
      l0 += w[n][0] * fmaxf(acc[0], 0.0f) + w[n][1] * fmaxf(acc[1], 0.0f);
      l1 += w[n][0] * fmaxf(acc[2], 0.0f) + w[n][1] * fmaxf(acc[3], 0.0f);
    }
  }
  if (!SCALED) {
    l0 *= s0;
    l1 *= s1;
  }
}

#ifdef DSA_SM90A
// Shared-memory matrix descriptor of a K-major operand whose rows are D bytes, swizzled as
// `swz` (8-row atoms, `sbo` bytes apart; the leading offset is unused for swizzled K-major).
__device__ __forceinline__ u64 smem_desc(u32 addr) {
  const u64 mode = D == 128 ? 1 : 2;  // 128-byte / 64-byte swizzle
  return (u64)((addr & 0x3ffff) >> 4) | ((u64)1 << 16) | ((u64)((8 * D) >> 4) << 32) | (mode << 62);
}

__device__ __forceinline__ void wgmma_n16(float d[8], u64 da, u64 db, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %10, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n16k32.f32.e4m3.e4m3 {%0,%1,%2,%3,%4,%5,%6,%7}, %8, %9, p, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
      : "l"(da), "l"(db), "r"(accumulate));
}

__device__ __forceinline__ void wgmma_n32(float d[16], u64 da, u64 db, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n32k32.f32.e4m3.e4m3 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15}, %16, %17, p, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
      : "l"(da), "l"(db), "r"(accumulate));
}

__device__ __forceinline__ void wgmma_n64(float d[32], u64 da, u64 db, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k32.f32.e4m3.e4m3 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, %32, %33, p, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "l"(da), "l"(db), "r"(accumulate));
}

__device__ __forceinline__ void wgmma_n128(float d[64], u64 da, u64 db, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k32.f32.e4m3.e4m3 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, %64, %65, p, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "l"(da), "l"(db), "r"(accumulate));
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
// Waits until at most N committed groups of this warpgroup are still running.
template <int N = 0>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Pins `x` in place across the asynchronous MMA (no read or write may move past this point).
__device__ __forceinline__ void reg_fence(float& x) { asm volatile("" : "+f"(x)::"memory"); }
__device__ __forceinline__ void fence_proxy_async() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

// Issues (no fence, commit or wait) acc = keys (A: 64 rows at shared address `ka`) times rows
// (B: N rows at `ba`), both swizzled and 1024-aligned, over all of D, CW rows per instruction:
// acc[4n + e] is the m16n8 C fragment of row tile n (rows of A: the warp's keys g and g + 8).
template <int N, int CW>
__device__ __forceinline__ void wgmma_rows(u32 ka, u32 ba, float acc[N / 2]) {
  static_assert(N % CW == 0 && (CW == 16 || CW == 32 || CW == 64 || CW == 128), "wgmma width");
#pragma unroll
  for (int k = 0; k < N / CW; ++k) {
#pragma unroll
    for (int j = 0; j < KT; ++j) {
      const u64 da = smem_desc(ka + 32 * j), db = smem_desc(ba + k * CW * D + 32 * j);
      float* d = acc + k * (CW / 2);
      if (CW == 128) wgmma_n128(d, da, db, j);
      else if (CW == 64) wgmma_n64(d, da, db, j);
      else if (CW == 32) wgmma_n32(d, da, db, j);
      else wgmma_n16(d, da, db, j);
    }
  }
}

// Heads per decode wgmma: the largest of 64, 32, 16 dividing H.
#define WN (H % 64 == 0 ? 64 : H % 32 == 0 ? 32 : 16)

// The decode tile: acc[4n + e] = head tile n's C fragment for `keys` against `q`, completed.
__device__ __forceinline__ void tile_wgmma(const u8* keys, const u8* q, float acc[H / 2]) {
#pragma unroll
  for (int i = 0; i < H / 2; ++i) reg_fence(acc[i]);
  wgmma_fence();
  wgmma_rows<H, WN>(smem_u32(keys), smem_u32(q), acc);
  wgmma_commit();
  wgmma_wait();
#pragma unroll
  for (int i = 0; i < H / 2; ++i) reg_fence(acc[i]);
}
#endif

// The weighted ReLU sums of keys g (l0) and g + 8 (l1) from their accumulators, partial over
// this thread's heads. SCALED: the key scales are applied per head (the literal form). One FMA
// per accumulator, in four independent chains (even and odd heads of each key).
template <bool SCALED>
__device__ __forceinline__ void acc_logits(const float acc[H / 2], const float w[NT][2], float s0,
                                           float s1, float& l0, float& l1) {
  float e0 = 0.0f, o0 = 0.0f, e1 = 0.0f, o1 = 0.0f;
#pragma unroll
  for (int n = 0; n < NT; ++n) {
    const float* a = acc + 4 * n;
    const float x0 = SCALED ? a[0] * s0 : a[0], x1 = SCALED ? a[1] * s0 : a[1];
    const float x2 = SCALED ? a[2] * s1 : a[2], x3 = SCALED ? a[3] * s1 : a[3];
    e0 = fmaf(w[n][0], fmaxf(x0, 0.0f), e0);
    o0 = fmaf(w[n][1], fmaxf(x1, 0.0f), o0);
    e1 = fmaf(w[n][0], fmaxf(x2, 0.0f), e1);
    o1 = fmaf(w[n][1], fmaxf(x3, 0.0f), o1);
  }
  l0 = e0 + o0;
  l1 = e1 + o1;
  if (!SCALED) {
    l0 *= s0;
    l1 *= s1;
  }
}

}  // namespace sc

extern "C" __global__ void __launch_bounds__(DTHREADS, DBLOCKS) DSA_ENTRY_PAGED(const sc::PagedParams p) {
  // Aligned by hand: a static shared array's placement is only promised to its declared
  // alignment within the window, and the wgmma swizzle atoms need 1024 bytes.
  __shared__ __align__(16) u8 smem_raw[sizeof(sc::DecodeSmem) + 1024];
  sc::DecodeSmem& sm = *reinterpret_cast<sc::DecodeSmem*>(
      smem_raw + ((1024u - (sc::smem_u32(smem_raw) & 1023u)) & 1023u));
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, c = lane & 3;
  const i64 b = blockIdx.x;
  const int plog = p.page_log2;
  const i64 cap = min((i64)p.bt_cols << plog, p.stride);
  const i64 len = max((i64)0, min((i64)((const i32*)p.context_lens)[b], cap));
  const i64 c0 = (i64)blockIdx.y * p.cols_per_split;
  const i64 c1 = min(c0 + p.cols_per_split, p.stride);
  float* out = (float*)p.logits + b * p.stride;
  if (blockIdx.y == 0 && tid == 0 && p.row_map) ((i32*)p.row_map)[b] = (i32)b;
  for (i64 s = max(c0, len) + tid; s < c1; s += DTHREADS) out[s] = sc::neg_inf();
  const i64 end = min(c1, len);
  if (c0 >= end) return;  // block-uniform
  const int tiles = (int)((end - c0 + DKEYS - 1) / DKEYS);
  const i32* table = (const i32*)p.block_table + b * p.bt_stride;

  // Prologue: the query (with tile 0's group) and tiles 0 .. DSTAGES-2.
  const u8* q8 = (const u8*)p.q8 + b * H * D;
  for (int v = tid; v < H * CPK; v += DTHREADS)
    sc::cp_async16(sc::smem_u32(sm.q + sc::swz(v / CPK, v % CPK)), q8 + v * 16, 16u);
  int pgs[DSTAGES];
#pragma unroll
  for (int j = 0; j < DSTAGES; ++j) pgs[j] = sc::tile_page(table, c0 + j * DKEYS, end, plog, lane);
#pragma unroll
  for (int j = 0; j < DSTAGES - 1; ++j) {
    if (j < tiles) sc::issue_tile(sm, j, c0 + j * DKEYS, end, pgs[j], p, tid);
    sc::cp_async_commit();
  }
  int pg = pgs[DSTAGES - 1];

  float w[NT][2];
  const float* wq = (const float*)p.wq + b * H;
#pragma unroll
  for (int n = 0; n < NT; ++n) {
    w[n][0] = wq[8 * n + 2 * c];
    w[n][1] = wq[8 * n + 2 * c + 1];
  }
#ifdef DSA_WGMMA
  float acc[H / 2];
#pragma unroll
  for (int i = 0; i < H / 2; ++i) acc[i] = 0.0f;
#else
  sc::cp_async_wait<DSTAGES - 2>();
  __syncthreads();
  u32 qf[NT][KW];
#pragma unroll
  for (int n = 0; n < NT; ++n) sc::load_part_swz(sm.q, 8 * n + g, c, qf[n]);
#endif

#pragma unroll 1
  for (int it = 0; it < tiles; ++it) {
    sc::cp_async_wait<DSTAGES - 2>();
#ifdef DSA_WGMMA
    sc::fence_proxy_async();  // this thread's copies, visible to the tensor cores' reads
#endif
    __syncthreads();  // tile `it` landed for every thread; stage (it - 1) % DSTAGES is free
    const int nxt = it + DSTAGES - 1;
    if (nxt < tiles) sc::issue_tile(sm, nxt % DSTAGES, c0 + (i64)nxt * DKEYS, end, pg, p, tid);
    sc::cp_async_commit();
    pg = sc::tile_page(table, c0 + (i64)(nxt + 1) * DKEYS, end, plog, lane);

    const int st = it % DSTAGES;
    const int r0 = warp * 16 + g;
    const float s0 = sm.scale[st][r0], s1 = sm.scale[st][r0 + 8];
    const bool plain = __all_sync(FULL_MASK, s0 > 0.0f && s0 <= 3.402823466e38f &&
                                                 s1 > 0.0f && s1 <= 3.402823466e38f);
    float l0, l1;
#ifdef DSA_WGMMA
    sc::tile_wgmma(sm.keys[st], sm.q, acc);
    if (plain)
      sc::acc_logits<false>(acc, w, s0, s1, l0, l1);
    else
      sc::acc_logits<true>(acc, w, s0, s1, l0, l1);
#else
    u32 a0[KW], a1[KW];
    sc::load_part_swz(sm.keys[st], r0, c, a0);
    sc::load_part_swz(sm.keys[st], r0 + 8, c, a1);
    if (plain)
      sc::key_logits<false>(qf, w, a0, a1, s0, s1, l0, l1);
    else
      sc::key_logits<true>(qf, w, a0, a1, s0, s1, l0, l1);
#endif
    l0 += __shfl_xor_sync(FULL_MASK, l0, 1);
    l1 += __shfl_xor_sync(FULL_MASK, l1, 1);
    l0 += __shfl_xor_sync(FULL_MASK, l0, 2);
    l1 += __shfl_xor_sync(FULL_MASK, l1, 2);
    if (c < 2) {  // lane c = 0 writes key g, c = 1 key g + 8: 16 consecutive floats
      const int r = r0 + 8 * c;
      const i64 s = c0 + (i64)it * DKEYS + r;
      if (s < end) out[s] = sm.ok[st][r >> 2] ? (c ? l1 : l0) : sc::neg_inf();
    }
  }
}

