#line 2 "scores_ragged.cu"
// Prefill (ragged) scores; compiled after scores.cu (the shared helpers).

namespace sc {

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

}  // namespace sc

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
