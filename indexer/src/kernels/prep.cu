// Indexer key and query paths, one warp per row of D values (lane l holds elements
// [l*EPT, (l+1)*EPT)): LayerNorm (keys only) -> RoPE -> Hadamard -> FP8 e4m3 with one f32
// scale per row -> store.
//
// Defines: IN_T (input storage type), D (row length, 64 or 128), WARPS (rows per block),
// ROT_SCALE (1/sqrt(D) as an f32 literal).

#define EPT (D / 32)
#define FULL_MASK 0xffffffffu

namespace prep {

// Mirrors `KeyParams` in key_path.rs field for field.
struct KeyParams {
  u64 k;          // [tokens, D] IN_T
  u64 gamma;      // [D] IN_T or 0
  u64 beta;       // [D] IN_T or 0
  u64 positions;  // [tokens] i64
  u64 cos_sin;    // [max_pos, rope_dim] f32: cos then sin
  u64 cache;      // paged index-key cache, bytes
  u64 cache_loc;  // [tokens] i64 slot of each token in the cache
  u64 k8_out;     // [tokens, D] u8 contiguous copy, or 0
  u64 ks_out;     // [tokens] f32 contiguous copy, or 0
  i64 num_slots;  // pages * page size
  i64 max_pos;
  i32 tokens;
  i32 rope_dim;
  i32 interleaved;
  i32 page_log2;
  float eps;
  i32 pow2;
};

// Mirrors `QueryParams` in query_path.rs field for field.
struct QueryParams {
  u64 q;          // [tokens, heads, D] IN_T
  u64 weights;    // [tokens, heads] f32
  u64 positions;  // [tokens] i64
  u64 cos_sin;    // [max_pos, rope_dim] f32
  u64 q8;         // [tokens, heads, D] u8
  u64 wq;         // [tokens, heads] f32 folded weights
  i64 max_pos;
  i32 tokens;
  i32 heads;
  i32 rope_dim;
  i32 interleaved;
  float weight_scale;  // H^-0.5 * D^-0.5
  i32 pow2;
};

__device__ __forceinline__ void load_row(const IN_T* row, int lane, float x[EPT]) {
#pragma unroll
  for (int i = 0; i < EPT; ++i) x[i] = dsa::to_float(row[lane * EPT + i]);
}

__device__ __forceinline__ void layer_norm(float x[EPT], int lane, const IN_T* gamma,
                                           const IN_T* beta, float eps) {
  float sum = 0.0f;
#pragma unroll
  for (int i = 0; i < EPT; ++i) sum += x[i];
  const float mean = dsa::warp_sum(sum) / (float)D;
  float sq = 0.0f;
#pragma unroll
  for (int i = 0; i < EPT; ++i) sq += (x[i] - mean) * (x[i] - mean);
  const float rstd = rsqrtf(dsa::warp_sum(sq) / (float)D + eps);
#pragma unroll
  for (int i = 0; i < EPT; ++i) {
    const int j = lane * EPT + i;
    const float g = gamma ? dsa::to_float(gamma[j]) : 1.0f;
    const float b = beta ? dsa::to_float(beta[j]) : 0.0f;
    x[i] = (x[i] - mean) * rstd * g + b;
  }
}

// RoPE on elements [0, rope_dim). `cs` is the position's table row: cos[rope_dim/2] then
// sin[rope_dim/2]. NeoX pairs (j, j + rope_dim/2); interleaved pairs (2j, 2j+1). The host
// checks rope_dim % (2*EPT) == 0, so a NeoX partner sits in lane +- half/EPT at the same i.
__device__ __forceinline__ void rope(float x[EPT], int lane, const float* cs, int rope_dim,
                                     int interleaved) {
  const int half = rope_dim >> 1;
  if (interleaved) {
#pragma unroll
    for (int i = 0; i < EPT; i += 2) {
      const int idx = lane * EPT + i;
      if (idx < rope_dim) {
        const float c = cs[idx >> 1], s = cs[half + (idx >> 1)];
        const float a = x[i], b = x[i + 1];
        x[i] = a * c - b * s;
        x[i + 1] = b * c + a * s;
      }
    }
  } else {
    const int shift = half / EPT;
    const int src = lane < shift ? lane + shift : lane - shift;
#pragma unroll
    for (int i = 0; i < EPT; ++i) {
      const float p = __shfl_sync(FULL_MASK, x[i], src);
      const int idx = lane * EPT + i;
      if (idx < rope_dim) {
        const bool first = idx < half;
        const int j = first ? idx : idx - half;
        const float c = cs[j], s = cs[half + j];
        x[i] = first ? x[i] * c - p * s : x[i] * c + p * s;
      }
    }
  }
}

// y = x @ H_D * ROT_SCALE (Sylvester order): butterflies in registers, then across lanes.
__device__ __forceinline__ void fwht(float x[EPT], int lane) {
#pragma unroll
  for (int h = 1; h < EPT; h <<= 1) {
#pragma unroll
    for (int i = 0; i < EPT; ++i) {
      if (!(i & h)) {
        const float a = x[i], b = x[i + h];
        x[i] = a + b;
        x[i + h] = a - b;
      }
    }
  }
#pragma unroll
  for (int m = 1; m < 32; m <<= 1) {
#pragma unroll
    for (int i = 0; i < EPT; ++i) {
      const float p = __shfl_xor_sync(FULL_MASK, x[i], m);
      x[i] = (lane & m) ? p - x[i] : x[i] + p;
    }
  }
#pragma unroll
  for (int i = 0; i < EPT; ++i) x[i] = __fmul_rn(x[i], ROT_SCALE);
}

// One scale for the warp's row: s = max(amax, 1e-4) / 448 (rounded up to a power of two when
// pow2); the bytes e4m3(x * (1/s)) go to `code` as EPT/2 packed pairs.
__device__ __forceinline__ float quantize(const float x[EPT], int pow2, u16 code[EPT / 2]) {
  float amax = 0.0f;
#pragma unroll
  for (int i = 0; i < EPT; ++i) amax = fmaxf(amax, fabsf(x[i]));
  amax = dsa::warp_max(amax);
  float s = __fdiv_rn(fmaxf(amax, 1e-4f), 448.0f);
  if (pow2) {
    const u32 b = __float_as_uint(s);
    if (b & 0x7fffffu) s = __uint_as_float((b & 0xff800000u) + 0x800000u);
  }
  const float inv = __frcp_rn(s);
#pragma unroll
  for (int p = 0; p < EPT / 2; ++p)
    code[p] = dsa::fp8e4m3_encode2(__fmul_rn(x[2 * p], inv), __fmul_rn(x[2 * p + 1], inv));
  return s;
}

__device__ __forceinline__ void store_codes(u8* row, int lane, const u16 code[EPT / 2]) {
#pragma unroll
  for (int p = 0; p < EPT / 2; ++p) reinterpret_cast<u16*>(row)[lane * (EPT / 2) + p] = code[p];
}

__device__ __forceinline__ const float* table_row(const float* cos_sin, i64 pos, i64 max_pos,
                                                  int rope_dim) {
  pos = pos < 0 ? 0 : (pos >= max_pos ? max_pos - 1 : pos);
  return cos_sin + pos * rope_dim;
}

}  // namespace prep

extern "C" __global__ void __launch_bounds__(WARPS * 32) DSA_ENTRY_KEY(const prep::KeyParams p) {
  const int lane = threadIdx.x & 31;
  const i64 t = (i64)blockIdx.x * WARPS + (threadIdx.x >> 5);
  if (t >= p.tokens) return;  // warp-uniform
  float x[EPT];
  prep::load_row((const IN_T*)p.k + t * D, lane, x);
  prep::layer_norm(x, lane, (const IN_T*)p.gamma, (const IN_T*)p.beta, p.eps);
  const i64 pos = ((const i64*)p.positions)[t];
  if (p.rope_dim > 0)
    prep::rope(x, lane, prep::table_row((const float*)p.cos_sin, pos, p.max_pos, p.rope_dim),
               p.rope_dim, p.interleaved);
  prep::fwht(x, lane);
  u16 code[EPT / 2];
  const float s = prep::quantize(x, p.pow2, code);
  const i64 loc = ((const i64*)p.cache_loc)[t];
  if (loc >= 0 && loc < p.num_slots) {
    const i64 page_size = (i64)1 << p.page_log2;
    u8* page = (u8*)p.cache + (loc >> p.page_log2) * page_size * (D + 4);
    const i64 slot = loc & (page_size - 1);
    prep::store_codes(page + slot * D, lane, code);
    if (lane == 0) reinterpret_cast<float*>(page + page_size * D)[slot] = s;
  }
  if (p.k8_out) {
    prep::store_codes((u8*)p.k8_out + t * D, lane, code);
    if (lane == 0) ((float*)p.ks_out)[t] = s;
  }
}

extern "C" __global__ void __launch_bounds__(WARPS * 32)
    DSA_ENTRY_QUERY(const prep::QueryParams p) {
  const int lane = threadIdx.x & 31;
  const i64 r = (i64)blockIdx.x * WARPS + (threadIdx.x >> 5);
  if (r >= (i64)p.tokens * p.heads) return;  // warp-uniform
  const i64 t = r / p.heads;
  float x[EPT];
  prep::load_row((const IN_T*)p.q + r * D, lane, x);
  const i64 pos = ((const i64*)p.positions)[t];
  if (p.rope_dim > 0)
    prep::rope(x, lane, prep::table_row((const float*)p.cos_sin, pos, p.max_pos, p.rope_dim),
               p.rope_dim, p.interleaved);
  prep::fwht(x, lane);
  u16 code[EPT / 2];
  const float s = prep::quantize(x, p.pow2, code);
  prep::store_codes((u8*)p.q8 + r * D, lane, code);
  if (lane == 0) {
    const float w = ((const float*)p.weights)[r];
    ((float*)p.wq)[r] = __fmul_rn(__fmul_rn(w, s), p.weight_scale);
  }
}
