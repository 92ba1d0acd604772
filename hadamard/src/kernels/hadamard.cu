// Fast Walsh-Hadamard transform along each row (Sylvester order: y = x @ H_N * scale), with an
// optional fused FP8 e4m3 quantization (one f32 scale per GROUP elements).
//
// Defines (rendered by `HadamardVariant`):
//   IN_T     input element type (float, dsa::bf16, dsa::f16)
//   OUT_T    output element type (float, dsa::bf16, dsa::f16, or dsa::fp8e4m3 when OUT_FP8)
//   OUT_FP8  1: quantize to e4m3 and write one f32 scale per group
//   LOG_N    log2 of the row length
//   GROUP    FP8 scale group in elements (N: per row)
//
// Layout. Each thread holds EPT elements as CH chunks of V contiguous elements (one 16-byte
// load for bf16/f16/f32 alike). A team of TPR lanes holds SEG_N elements: element
// c * (TPR * V) + t * V + v sits in register c * V + v of lane t, so every chunk load and
// store of a warp is contiguous. H_N is a tensor product of 2x2 butterflies, one per index bit:
// register bits are done in registers, lane bits with warp shuffles. Rows longer than 1024
// give each warp a 1024-element segment and do the segment bits through shared
// memory, one column of SEGS elements per thread.

constexpr int N = 1 << LOG_N;
constexpr int SEG_N = N < 1024 ? N : 1024;
constexpr int IN_VEC = 16 / (int)sizeof(IN_T);
constexpr int V = IN_VEC < N ? IN_VEC : N;
constexpr int EPT = SEG_N <= 8 ? SEG_N : (SEG_N / 32 > 8 ? SEG_N / 32 : 8);
constexpr int TPR = SEG_N / EPT;
constexpr int CH = EPT / V;
constexpr int CHUNK_STRIDE = TPR * V;
constexpr int SMALL_BLOCK = 128;
constexpr int SEGS = N / SEG_N;
constexpr int LARGE_BLOCK = 32 * SEGS;

// In-register FWHT of K values (all register-index bits).
template <int K> __device__ __forceinline__ void fwht_local(float* x) {
#pragma unroll
  for (int h = 1; h < K; h <<= 1) {
#pragma unroll
    for (int r = 0; r < K; ++r) {
      if ((r & h) == 0) {
        const float a = x[r], b = x[r + h];
        x[r] = a + b;
        x[r + h] = a - b;
      }
    }
  }
}

// Register bits, then the lane bits of a team of LANES lanes (t = lane within the team).
template <int LANES> __device__ __forceinline__ void fwht_team(float (&x)[EPT], int t) {
  fwht_local<EPT>(x);
#pragma unroll
  for (int m = 1; m < LANES; m <<= 1) {
    const bool upper = (t & m) != 0;
#pragma unroll
    for (int r = 0; r < EPT; ++r) {
      const float o = __shfl_xor_sync(0xffffffffu, x[r], m);
      x[r] = upper ? o - x[r] : x[r] + o;
    }
  }
}

#if OUT_FP8
constexpr int GROUPS = N / GROUP;

// The scale rule (mirrored by cpu::fp8_scale): max(amax, 1e-4) / 448, optionally rounded up
// to a power of two.
__device__ __forceinline__ float fp8_scale(float amax, int pow2) {
  float s = fmaxf(amax, 1e-4f) / 448.0f;
  if (pow2) {
    u32 b = __float_as_uint(s);
    if (b & 0x7fffffu) b = (b & 0xff800000u) + 0x800000u;
    s = __uint_as_float(b);
  }
  return s;
}

// Quantize this thread's chunks; amax[c] is the amax of chunk c's group. seg: the segment's
// first element in the row.
__device__ __forceinline__ void quantize_store(const float (&x)[EPT], const float (&amax)[CH],
                                               OUT_T* orow, float* srow, int seg, int t,
                                               int pow2) {
#pragma unroll
  for (int c = 0; c < CH; ++c) {
    const float s = fp8_scale(amax[c], pow2);
    const float inv = 1.0f / s;
    const int i0 = seg + c * CHUNK_STRIDE + t * V;
    if (i0 % GROUP == 0) srow[i0 / GROUP] = s;
    dsa::Pack<u16, V / 2> pk;
#pragma unroll
    for (int j = 0; j < V / 2; ++j)
      pk.e[j] = dsa::fp8e4m3_encode2(x[c * V + 2 * j] * inv, x[c * V + 2 * j + 1] * inv);
    typedef dsa::Words<V> Wd;
    typename Wd::W* dst = reinterpret_cast<typename Wd::W*>(orow + i0);
#pragma unroll
    for (int k = 0; k < Wd::COUNT; ++k) dst[k] = pk.w[k];
  }
}

// Per-chunk amax of the group each chunk belongs to, for groups inside a team's segment.
template <int LANES> __device__ __forceinline__ void team_group_amax(const float (&x)[EPT],
                                                                     float (&amax)[CH]) {
  constexpr int LPG = GROUP / V < LANES ? GROUP / V : LANES;
  constexpr int CPG = GROUP / CHUNK_STRIDE > 1 ? GROUP / CHUNK_STRIDE : 1;
  float m[CH];
#pragma unroll
  for (int c = 0; c < CH; ++c) {
    m[c] = 0.0f;
#pragma unroll
    for (int v = 0; v < V; ++v) m[c] = fmaxf(m[c], fabsf(x[c * V + v]));
#pragma unroll
    for (int o = 1; o < LPG; o <<= 1) m[c] = fmaxf(m[c], __shfl_xor_sync(0xffffffffu, m[c], o));
  }
#pragma unroll
  for (int c = 0; c < CH; ++c) {
    amax[c] = 0.0f;
#pragma unroll
    for (int k = 0; k < CPG; ++k) amax[c] = fmaxf(amax[c], m[(c / CPG) * CPG + k]);
  }
}
#endif

#if LOG_N <= 10
// Rows of at most 1024 elements: TPR lanes per row, 32 / TPR rows per warp.
extern "C" __global__ void __launch_bounds__(SMALL_BLOCK)
    DSA_ENTRY_FWHT(const IN_T* in, OUT_T* out, float* scales, i64 rows, i64 in_stride,
                    i64 out_stride, float scale, int pow2) {
  const int lane = threadIdx.x & 31;
  const int t = lane % TPR;
  const i64 row =
      ((i64)blockIdx.x * (SMALL_BLOCK / 32) + threadIdx.x / 32) * (32 / TPR) + lane / TPR;
  const bool live = row < rows;
  float x[EPT];
  if (live) {
    const IN_T* src = in + row * in_stride + t * V;
#pragma unroll
    for (int c = 0; c < CH; ++c) dsa::load_chunk<IN_T, V>(src + c * CHUNK_STRIDE, x + c * V);
  } else {
#pragma unroll
    for (int r = 0; r < EPT; ++r) x[r] = 0.0f;
  }
  fwht_team<TPR>(x, t);
#pragma unroll
  for (int r = 0; r < EPT; ++r) x[r] *= scale;
#if OUT_FP8
  float amax[CH];
  team_group_amax<TPR>(x, amax);
  if (live) quantize_store(x, amax, out + row * out_stride, scales + row * GROUPS, 0, t, pow2);
#else
  (void)scales;
  (void)pow2;
  if (live) {
    OUT_T* dst = out + row * out_stride + t * V;
#pragma unroll
    for (int c = 0; c < CH; ++c) dsa::store_chunk<OUT_T, V>(dst + c * CHUNK_STRIDE, x + c * V);
  }
#endif
}

#else

// Rows of 2048..32768 elements: one CTA per row, one 1024-element segment per warp; shared
// memory holds the row in f32 (N floats) plus one float per warp for the row amax.
extern "C" __global__ void __launch_bounds__(LARGE_BLOCK)
    DSA_ENTRY_FWHT(const IN_T* in, OUT_T* out, float* scales, i64 rows, i64 in_stride,
                    i64 out_stride, float scale, int pow2) {
  extern __shared__ float4 smem4[];
  float* smem = reinterpret_cast<float*>(smem4);
  (void)rows;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const i64 row = blockIdx.x;
  const int seg = warp * SEG_N;
  float x[EPT];
  const IN_T* src = in + row * in_stride + seg + lane * V;
#pragma unroll
  for (int c = 0; c < CH; ++c) dsa::load_chunk<IN_T, V>(src + c * CHUNK_STRIDE, x + c * V);
  fwht_team<32>(x, lane);
  float* mine = smem + seg + lane * V;
#pragma unroll
  for (int c = 0; c < CH; ++c)
#pragma unroll
    for (int v = 0; v < V; ++v) mine[c * CHUNK_STRIDE + v] = x[c * V + v];
  __syncthreads();
  // Segment bits: column p holds elements s * SEG_N + p, s < SEGS.
#pragma unroll
  for (int k = 0; k < SEG_N / LARGE_BLOCK; ++k) {
    const int p = threadIdx.x + k * LARGE_BLOCK;
    float y[SEGS];
#pragma unroll
    for (int s = 0; s < SEGS; ++s) y[s] = smem[s * SEG_N + p];
    fwht_local<SEGS>(y);
#pragma unroll
    for (int s = 0; s < SEGS; ++s) smem[s * SEG_N + p] = y[s];
  }
  __syncthreads();
#pragma unroll
  for (int c = 0; c < CH; ++c)
#pragma unroll
    for (int v = 0; v < V; ++v) x[c * V + v] = mine[c * CHUNK_STRIDE + v] * scale;
#if OUT_FP8
  float amax[CH];
  if constexpr (GROUP > SEG_N) {
    float m = 0.0f;
#pragma unroll
    for (int r = 0; r < EPT; ++r) m = fmaxf(m, fabsf(x[r]));
    m = dsa::warp_max(m);
    if (lane == 0) smem[N + warp] = m;
    __syncthreads();
    m = 0.0f;
#pragma unroll
    for (int w = 0; w < SEGS; ++w) m = fmaxf(m, smem[N + w]);
#pragma unroll
    for (int c = 0; c < CH; ++c) amax[c] = m;
  } else {
    team_group_amax<32>(x, amax);
  }
  quantize_store(x, amax, out + row * out_stride, scales + row * GROUPS, seg, lane, pow2);
#else
  (void)scales;
  (void)pow2;
  OUT_T* dst = out + row * out_stride + seg + lane * V;
#pragma unroll
  for (int c = 0; c < CH; ++c) dsa::store_chunk<OUT_T, V>(dst + c * CHUNK_STRIDE, x + c * V);
#endif
}
#endif
