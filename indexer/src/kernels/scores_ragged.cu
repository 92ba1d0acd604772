#line 2 "scores_ragged.cu"
// Prefill (ragged) scores; compiled after scores.cu (the shared helpers).

#ifdef DSA_SM90A
// Prefill on sm_90a. Block (x, y) scores the PTOK consecutive tokens [x*PTOK, (x+1)*PTOK)
// against the columns [y*cps, (y+1)*cps) of the contiguous key buffer; columns outside a
// token's [ks, ke) get -inf. The block is one warpgroup. Its tokens' queries ([PTOK * H, D]
// rows, swizzled) arrive in shared memory once; keys stream in tiles of 64 through a
// PSTAGES-deep cp.async ring (one commit group per tile, zero-filled past the block's range, as
// in the decode pipeline), and each tile is scored against all PTOK tokens with wgmma
// m64nNk32 e4m3: keys are M (A, 64 x D), the block's query rows N (B). The rows form two banks
// of PTOK/2 tokens, each its own commit group, so the first bank's epilogue runs while the
// second bank's MMA does (and the other resident block fills the tensor cores during this
// block's second epilogue). Epilogue per bank: acc_logits per token (relu, weights, the sum over
// the thread's heads), a 4-lane reduce-scatter that leaves each lane whole logits, masked
// stores. The block's range is the union of its tokens' ranges (start rounded down to 8 keys):
// consecutive causal tokens have nearly the same range, so little of it is wasted, and each
// logit is stored only inside its own token's range. The index math is replayed on the host by
// `ragged_wgmma_writes` in scores.rs's tests: keep the two in step.

#define PT 128                   // threads: one warpgroup
#define PKEYS 64                 // keys per tile (wgmma M)
#define PBANK (PTOK / 2)         // tokens per bank
#define PNB (PBANK * H)          // query rows (wgmma N) per bank
#define PCW (PNB % 128 == 0 ? 128 : PNB % 64 == 0 ? 64 : PNB % 32 == 0 ? 32 : 16)
#define PV (PBANK < 2 ? 4 : 2 * PBANK)  // logits a thread reduces per bank (padded to 4)

namespace sc {

// Dynamic shared memory, 1024-aligned by hand; `prefill_smem_bytes` in scores.rs is its size
// plus 1024 bytes of alignment slack.
struct PrefillSmem {
  u8 keys[PSTAGES][PKEYS * D];  // swizzled key rows
  u8 q[PTOK * H * D];           // swizzled query rows, token-major
  float scale[PSTAGES][PKEYS];
};

// Issues the copies (no commit) of keys [s0, s0 + 64) and their scales into stage `st`; keys
// at or past `end` are zero-filled.
__device__ __forceinline__ void issue_keys(PrefillSmem& sm, int st, i64 s0, i64 end,
                                           const RaggedParams& p, int tid) {
  const u8* k8 = (const u8*)p.k8;
  const u32 kbase = smem_u32(sm.keys[st]);
#pragma unroll
  for (int i = 0; i < PKEYS * CPK / PT; ++i) {
    const int v = tid + i * PT, key = v / CPK, ch = v % CPK;
    const bool ok = s0 + key < end;
    cp_async16(kbase + swz(key, ch), ok ? k8 + (s0 + key) * D + ch * 16 : k8, ok ? 16u : 0u);
  }
  if (tid < PKEYS) {
    const float* ksc = (const float*)p.kscale;
    const bool ok = s0 + tid < end;
    cp_async4(smem_u32(&sm.scale[st][tid]), ok ? ksc + s0 + tid : ksc, ok ? 4u : 0u);
  }
}

// The weighted ReLU sums of one bank, partial over this thread's heads: v[2u] key g, v[2u + 1]
// key g + 8 of the bank's token u (slots past 2 * PBANK are 0).
template <bool SCALED>
__device__ __forceinline__ void bank_logits(const float acc[PNB / 2], const float w[PBANK][NT][2],
                                            float s0, float s1, float v[PV]) {
#pragma unroll
  for (int i = 2 * PBANK; i < PV; ++i) v[i] = 0.0f;
#pragma unroll
  for (int u = 0; u < PBANK; ++u)
    acc_logits<SCALED>(acc + u * (H / 2), w[u], s0, s1, v[2 * u], v[2 * u + 1]);
}

// Sums v over the 4 lanes of a quad, scattered: afterwards v[m] (m < PV / 4) on lane c is the
// quad's sum of the original v[4m + c]. PV/2 + PV/4 shuffles.
__device__ __forceinline__ void quad_reduce_scatter(float v[PV], int c) {
  float h[PV / 2];  // h[i]: the pair's (lanes c, c ^ 1) sum of v[2i + (c & 1)]
#pragma unroll
  for (int i = 0; i < PV / 2; ++i) {
    const float keep = (c & 1) ? v[2 * i + 1] : v[2 * i];
    const float give = (c & 1) ? v[2 * i] : v[2 * i + 1];
    h[i] = keep + __shfl_xor_sync(FULL_MASK, give, 1);
  }
#pragma unroll
  for (int m = 0; m < PV / 4; ++m) {
    const float keep = (c & 2) ? h[2 * m + 1] : h[2 * m];
    const float give = (c & 2) ? h[2 * m] : h[2 * m + 1];
    v[m] = keep + __shfl_xor_sync(FULL_MASK, give, 2);
  }
}

}  // namespace sc

extern "C" __global__ void __launch_bounds__(PT, PMINB) DSA_ENTRY_RAGGED(const sc::RaggedParams p) {
  extern __shared__ __align__(16) u8 dyn_smem[];
  u32 dyn_bytes;
  asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(dyn_bytes));
  if (blockDim.x != PT || dyn_bytes < sizeof(sc::PrefillSmem) + 1024) __trap();  // host mismatch
  sc::PrefillSmem& sm = *reinterpret_cast<sc::PrefillSmem*>(
      dyn_smem + ((1024u - (sc::smem_u32(dyn_smem) & 1023u)) & 1023u));
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, c = lane & 3;
  const i64 t0 = (i64)blockIdx.x * PTOK;
  const i64 c0 = (i64)blockIdx.y * p.cols_per_split;
  const i64 c1 = min(c0 + p.cols_per_split, p.stride);

  // Every thread holds every token's clamped range (empty for tokens past T).
  int lo[PTOK], hi[PTOK];
  int rlo = 0x7fffffff, rhi = 0;
#pragma unroll
  for (int u = 0; u < PTOK; ++u) {
    const i64 t = t0 + u;
    lo[u] = 0;
    hi[u] = 0;
    if (t < p.tokens) {
      lo[u] = min(max(((const i32*)p.ks)[t], 0), p.num_keys);
      hi[u] = min(max(((const i32*)p.ke)[t], lo[u]), p.num_keys);
      if (blockIdx.y == 0 && tid == u) {
        if (p.starts_out) ((i32*)p.starts_out)[t] = lo[u];
        if (p.lengths_out) ((i32*)p.lengths_out)[t] = hi[u] - lo[u];
      }
      if (hi[u] > lo[u]) {
        rlo = min(rlo, lo[u]);
        rhi = max(rhi, hi[u]);
      }
      float* out = (float*)p.logits + t * p.stride;
      for (i64 s = c0 + tid; s < min(c1, (i64)lo[u]); s += PT) out[s] = sc::neg_inf();
      for (i64 s = max(c0, (i64)hi[u]) + tid; s < c1; s += PT) out[s] = sc::neg_inf();
    }
  }
  const i64 first = max(c0, (i64)(rlo & ~7)), end = min(c1, (i64)rhi);
  if (first >= end) return;  // block-uniform
  const int tiles = (int)((end - first + PKEYS - 1) / PKEYS);

  // Prologue: the queries (zero rows past T, with tile 0's group) and tiles 0 .. PSTAGES-2.
  const i64 qrows = min((i64)PTOK, p.tokens - t0) * H;
  const u8* q8 = (const u8*)p.q8 + t0 * H * D;
  for (int v = tid; v < PTOK * H * CPK; v += PT) {
    const bool ok = v / CPK < qrows;
    sc::cp_async16(sc::smem_u32(sm.q + sc::swz(v / CPK, v % CPK)), ok ? q8 + (i64)v * 16 : (const u8*)p.q8,
                   ok ? 16u : 0u);
  }
#pragma unroll
  for (int j = 0; j < PSTAGES - 1; ++j) {
    if (j < tiles) sc::issue_keys(sm, j, first + j * PKEYS, end, p, tid);
    sc::cp_async_commit();
  }

  // This thread's weights (heads 8n + 2c, 8n + 2c + 1 of every token) and, per bank b and
  // reduced slot m, the range of the token its logit belongs to (bank token 2m + c / 2).
  float w[PTOK][NT][2];
  const float* wq = (const float*)p.wq;
#pragma unroll
  for (int u = 0; u < PTOK; ++u) {
    const bool live = t0 + u < p.tokens;
#pragma unroll
    for (int n = 0; n < NT; ++n) {
      w[u][n][0] = live ? wq[(t0 + u) * H + 8 * n + 2 * c] : 0.0f;
      w[u][n][1] = live ? wq[(t0 + u) * H + 8 * n + 2 * c + 1] : 0.0f;
    }
  }
  int slo[2][PV / 4], shi[2][PV / 4];
#pragma unroll
  for (int b = 0; b < 2; ++b) {
#pragma unroll
    for (int m = 0; m < PV / 4; ++m) {
      const int u = b * PBANK + 2 * m + (c >> 1);
      slo[b][m] = 0;
      shi[b][m] = 0;
#pragma unroll
      for (int k = 0; k < PTOK; ++k) {
        if (k == u && 2 * m + (c >> 1) < PBANK) {
          slo[b][m] = lo[k];
          shi[b][m] = hi[k];
        }
      }
    }
  }
  float acc[2][PNB / 2];
#pragma unroll
  for (int i = 0; i < PNB / 2; ++i) acc[0][i] = acc[1][i] = 0.0f;

#pragma unroll 1
  for (int it = 0; it < tiles; ++it) {
    sc::cp_async_wait<PSTAGES - 2>();
    sc::fence_proxy_async();  // this thread's copies, visible to the tensor cores' reads
    __syncthreads();  // tile `it` landed for every thread; stage (it - 1) % PSTAGES is free
    const int st = it % PSTAGES;
    const u32 ka = sc::smem_u32(sm.keys[st]), qa = sc::smem_u32(sm.q);
#pragma unroll
    for (int i = 0; i < PNB / 2; ++i) {
      sc::reg_fence(acc[0][i]);
      sc::reg_fence(acc[1][i]);
    }
    sc::wgmma_fence();
    sc::wgmma_rows<PNB, PCW>(ka, qa, acc[0]);
    sc::wgmma_commit();
    sc::wgmma_rows<PNB, PCW>(ka, qa + PNB * D, acc[1]);
    sc::wgmma_commit();
    const int nxt = it + PSTAGES - 1;
    if (nxt < tiles) sc::issue_keys(sm, nxt % PSTAGES, first + (i64)nxt * PKEYS, end, p, tid);
    sc::cp_async_commit();

    const int r0 = warp * 16 + g;
    const float k0 = sm.scale[st][r0], k1 = sm.scale[st][r0 + 8];
    const bool plain = __all_sync(FULL_MASK, k0 > 0.0f && k0 <= 3.402823466e38f &&
                                                 k1 > 0.0f && k1 <= 3.402823466e38f);
    const i64 s = first + (i64)it * PKEYS + r0 + 8 * (c & 1);  // the key of this lane's logits
    auto bank = [&](int b, const float* a) {
      float v[PV];
      if (plain)
        sc::bank_logits<false>(a, w + b * PBANK, k0, k1, v);
      else
        sc::bank_logits<true>(a, w + b * PBANK, k0, k1, v);
      sc::quad_reduce_scatter(v, c);
#pragma unroll
      for (int m = 0; m < PV / 4; ++m)
        if (s >= slo[b][m] && s < shi[b][m] && s < end)
          ((float*)p.logits)[(t0 + b * PBANK + 2 * m + (c >> 1)) * p.stride + s] = v[m];
    };
    sc::wgmma_wait<1>();
#pragma unroll
    for (int i = 0; i < PNB / 2; ++i) sc::reg_fence(acc[0][i]);
    bank(0, acc[0]);
    sc::wgmma_wait<0>();
#pragma unroll
    for (int i = 0; i < PNB / 2; ++i) sc::reg_fence(acc[1][i]);
    bank(1, acc[1]);
  }
}

#else  // the register path (mma.sync; sm_80 emulated)

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

#endif
