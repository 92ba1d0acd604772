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
// PWARPS (tokens per prefill block), BN (keys per prefill shared-memory tile).

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

// One token's query fragments (heads 16m+g and 16m+g+8) and folded weights.
struct Query {
  u32 a[MT][2][KW];
  float w[MT][2];
};

__device__ __forceinline__ void load_query(Query& q, const u8* q8, const float* wq, int lane) {
  const int g = lane >> 2, c = lane & 3;
#pragma unroll
  for (int m = 0; m < MT; ++m) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int h = 16 * m + g + 8 * r;
      load_part(q8 + h * D + c * PART, q.a[m][r]);
      q.w[m][r] = wq[h];
    }
  }
}

// Logits of the tile's keys 2c and 2c+1 (c = lane % 4), complete on lanes 0..3. `b` holds
// this thread's part of key g; s0/s1 are the scales of keys 2c and 2c+1.
__device__ __forceinline__ void tile_logits(const Query& q, const u32 b[KW], float s0, float s1,
                                            float& l0, float& l1) {
  float acc[MT][4];
#pragma unroll
  for (int m = 0; m < MT; ++m) acc[m][0] = acc[m][1] = acc[m][2] = acc[m][3] = 0.0f;
#pragma unroll
  for (int j = 0; j < KT; ++j) {
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      const u32 a[4] = {q.a[m][0][2 * j], q.a[m][1][2 * j], q.a[m][0][2 * j + 1],
                        q.a[m][1][2 * j + 1]};
      mma_e4m3(acc[m], a, b[2 * j], b[2 * j + 1]);
    }
  }
  l0 = 0.0f;
  l1 = 0.0f;
#pragma unroll
  for (int m = 0; m < MT; ++m) {
    l0 += q.w[m][0] * fmaxf(acc[m][0] * s0, 0.0f) + q.w[m][1] * fmaxf(acc[m][2] * s0, 0.0f);
    l1 += q.w[m][0] * fmaxf(acc[m][1] * s1, 0.0f) + q.w[m][1] * fmaxf(acc[m][3] * s1, 0.0f);
  }
#pragma unroll
  for (int o = 4; o < 32; o <<= 1) {
    l0 += __shfl_xor_sync(FULL_MASK, l0, o);
    l1 += __shfl_xor_sync(FULL_MASK, l1, o);
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

// Decode: block (b, y) scores request b's columns [y*cps, (y+1)*cps) through its block table;
// columns at or beyond the context length (and keys on invalid pages) get -inf.
extern "C" __global__ void __launch_bounds__(DWARPS * 32) DSA_ENTRY_PAGED(const sc::PagedParams p) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, c = lane & 3;
  const i64 b = blockIdx.x;
  const i64 page_size = (i64)1 << p.page_log2;
  const i64 cap = min((i64)p.bt_cols << p.page_log2, p.stride);
  const i64 len = max((i64)0, min((i64)((const i32*)p.context_lens)[b], cap));
  const i64 c0 = (i64)blockIdx.y * p.cols_per_split;
  const i64 c1 = min(c0 + p.cols_per_split, p.stride);
  float* out = (float*)p.logits + b * p.stride;
  if (blockIdx.y == 0 && threadIdx.x == 0 && p.row_map) ((i32*)p.row_map)[b] = (i32)b;
  for (i64 s = max(c0, len) + threadIdx.x; s < c1; s += blockDim.x) out[s] = sc::neg_inf();
  const i64 end = min(c1, len);
  if (c0 >= end) return;  // block-uniform
  sc::Query q;
  sc::load_query(q, (const u8*)p.q8 + b * H * D, (const float*)p.wq + b * H, lane);
  const i32* table = (const i32*)p.block_table + b * p.bt_stride;
  const i64 page_bytes = page_size * (D + 4);
  for (i64 base = c0 + warp * 16; base < end; base += DWARPS * 16) {  // warp-uniform
    u32 w[2][KW];
    float scale[2];
    int ok[2];
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
      const i64 s = base + nt * 8 + g;
      ok[nt] = 0;
      scale[nt] = 0.0f;
#pragma unroll
      for (int i = 0; i < KW; ++i) w[nt][i] = 0u;
      if (s < end) {
        const i32 page = table[s >> p.page_log2];
        if (page >= 0 && page < p.num_pages) {
          const u8* pg = (const u8*)p.cache + page * page_bytes;
          const i64 slot = s & (page_size - 1);
          sc::load_part(pg + slot * D + c * PART, w[nt]);
          scale[nt] = reinterpret_cast<const float*>(pg + page_size * D)[slot];
          ok[nt] = 1;
        }
      }
    }
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
      const float s0 = __shfl_sync(FULL_MASK, scale[nt], 8 * c);
      const float s1 = __shfl_sync(FULL_MASK, scale[nt], 8 * c + 4);
      const int ok0 = __shfl_sync(FULL_MASK, ok[nt], 8 * c);
      const int ok1 = __shfl_sync(FULL_MASK, ok[nt], 8 * c + 4);
      float l0, l1;
      sc::tile_logits(q, w[nt], s0, s1, l0, l1);
      if (g == 0) {
        const i64 s = base + nt * 8 + 2 * c;
        if (s < end) out[s] = ok0 ? l0 : sc::neg_inf();
        if (s + 1 < end) out[s + 1] = ok1 ? l1 : sc::neg_inf();
      }
    }
  }
}

// Prefill: block (x, y) scores tokens [x*PWARPS, (x+1)*PWARPS) (one per warp) against the
// columns [y*cps, (y+1)*cps) of the contiguous key buffer, BN keys at a time through shared
// memory; columns outside a token's [ks, ke) get -inf. Its index math is replayed on the host
// by `ragged_kernel_writes` in scores.rs's tests: keep the two in step.
extern "C" __global__ void __launch_bounds__(PWARPS * 32) DSA_ENTRY_RAGGED(const sc::RaggedParams p) {
  __shared__ __align__(16) u8 tile_k[BN * KPITCH];
  __shared__ float tile_s[BN];
  __shared__ int range[2];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, c = lane & 3;
  const i64 t = (i64)blockIdx.x * PWARPS + warp;
  const bool live = t < p.tokens;
  int lo = 0, hi = 0;
  if (live) {
    lo = min(max(((const i32*)p.ks)[t], 0), p.num_keys);
    hi = min(max(((const i32*)p.ke)[t], lo), p.num_keys);
    if (blockIdx.y == 0 && lane == 0) {
      if (p.starts_out) ((i32*)p.starts_out)[t] = lo;
      if (p.lengths_out) ((i32*)p.lengths_out)[t] = hi - lo;
    }
  }
  const i64 c0 = (i64)blockIdx.y * p.cols_per_split;
  const i64 c1 = min(c0 + p.cols_per_split, p.stride);
  float* out = (float*)p.logits + (live ? t : 0) * p.stride;
  if (live)
    for (i64 s = c0 + lane; s < c1; s += 32)
      if (s < lo || s >= hi) out[s] = sc::neg_inf();
  if (threadIdx.x == 0) {
    range[0] = 0x7fffffff;
    range[1] = 0;
  }
  __syncthreads();
  if (live && lane == 0 && hi > lo) {
    atomicMin(&range[0], lo);
    atomicMax(&range[1], hi);
  }
  __syncthreads();
  const i64 first = max(c0, (i64)range[0]), end = min(c1, (i64)range[1]);
  if (first >= end) return;  // block-uniform
  sc::Query q;
  if (live) sc::load_query(q, (const u8*)p.q8 + t * H * D, (const float*)p.wq + t * H, lane);
  for (i64 tile = first; tile < end; tile += BN) {  // block-uniform
    const int n = (int)min((i64)BN, end - tile);
    __syncthreads();
    for (int v = threadIdx.x; v < BN * (D / 16); v += PWARPS * 32) {
      const int key = v / (D / 16), part = v % (D / 16);
      uint4 val = make_uint4(0u, 0u, 0u, 0u);
      if (key < n) val = reinterpret_cast<const uint4*>((const u8*)p.k8 + (tile + key) * D)[part];
      *reinterpret_cast<uint4*>(tile_k + key * KPITCH + part * 16) = val;
    }
    for (int v = threadIdx.x; v < BN; v += PWARPS * 32)
      tile_s[v] = v < n ? ((const float*)p.kscale)[tile + v] : 0.0f;
    __syncthreads();
    if (!live || hi <= tile || lo >= tile + n) continue;  // warp-uniform
#pragma unroll 1
    for (int nt = 0; nt < BN / 8; ++nt) {
      const i64 k0 = tile + nt * 8;
      if (k0 >= tile + n || k0 >= hi || k0 + 8 <= lo) continue;  // warp-uniform
      u32 w[KW];
      sc::load_part(tile_k + (nt * 8 + g) * KPITCH + c * PART, w);
      float l0, l1;
      sc::tile_logits(q, w, tile_s[nt * 8 + 2 * c], tile_s[nt * 8 + 2 * c + 1], l0, l1);
      // Only this block's columns: an 8-key tile can end past `end` (the block range starts at
      // the smallest `ks`, not on a multiple of 8), and the slots past the tile's `n` keys are
      // zero padding whose "logits" (0) would race with the next block's real ones.
      if (g == 0) {
        const i64 s = k0 + 2 * c;
        if (s >= lo && s < hi && s < end) out[s] = l0;
        if (s + 1 >= lo && s + 1 < hi && s + 1 < end) out[s + 1] = l1;
      }
    }
  }
}
