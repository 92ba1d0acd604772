// Fast Walsh-Hadamard transform along each row (Sylvester order: y = x @ H_N * scale), with an
// optional fused FP8 e4m3 quantization (one f32 scale per GROUP elements).
//
// Defines (rendered by `HadamardVariant`):
//   IN_T     input element type (float, dsa::bf16, dsa::f16)
//   OUT_T    output element type (float, dsa::bf16, dsa::f16, or dsa::fp8e4m3 when OUT_FP8)
//   OUT_FP8  1: quantize to e4m3 and write one f32 scale per group
//   LOG_N    log2 of the row length
//   GROUP    FP8 scale group in elements (N: per row)
//   STAGE    rows > 1024 only: 1 prefetches the next row into shared memory with cp.async
//
// Layout. Each thread holds EPT elements as CH chunks of V contiguous elements (one 16-byte
// load for bf16/f16/f32 alike). A team of TPR lanes holds SEG_N elements: element
// c * (TPR * V) + t * V + v sits in register c * V + v of lane t, so every chunk load and
// store of a warp is contiguous. H_N is a tensor product of 2x2 butterflies, one per index bit:
// register bits are done in registers, lane bits with warp shuffles. Rows longer than 1024
// use the same chunk layout per warp (one 1024-element segment each) but no shuffles: see the
// second kernel.

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

// Rows of 2048..32768 elements: a persistent CTA of N / 32 threads loops over rows
// blockIdx.x, blockIdx.x + gridDim.x, ... Each thread holds 32 elements, so the 15 (or fewer)
// index bits go in three register phases joined by two transposes through a swizzled f32 copy
// of the row in shared memory; no shuffles:
//   P1 (as loaded): registers = the chunk's V elements and the CH chunk bits (index bits 0..LV-1
//      and LV+5..9), lane = bits LV..LV+4, warp = bits 10..; loads/stores are 16-byte chunks.
//   P2: registers = bits LV..LV+4 (P1's lane bits).
//   P3: registers = the top five bits LOG_N-5..LOG_N-1 (only bits >= 10 are new), thread = the
//      rest, lane = bits 0..4: a float output goes straight out, each warp store contiguous.
// With STAGE, the input row is read once by cp.async into a shared-memory stage (each thread
// copies and later reads its own P1 chunks, so no barrier guards the stage) one row ahead, so the
// next row's load overlaps this row's transposes and stores.
constexpr int LV = V == 8 ? 3 : 2;
// f32 words of the row, then one float per warp (row amax), then the stage.
constexpr int RED_OFF = N;

// Word of element i in shared memory: XOR swizzle of word bits 2..4 with index bits (5 or 7),
// 8, 9, so P1's float4 stores and P2's/P3's scalar accesses are free of bank conflicts.
// XOR-linear: swz(a | b) = swz(a) ^ swz(b) for disjoint a, b.
__device__ __forceinline__ constexpr int swz(int i) {
  return i ^ (((i >> (LV == 3 ? 5 : 7)) & 1) << 2) ^ (((i >> 8) & 3) << 3);
}

// Eight bases of a thread's swizzled element `base`, one per value of word bits 2..4, so that
// element base | off (off a compile-time constant after unrolling, disjoint from base, and
// swz(off) free of base's bits outside 2..4) is at bases[(swz(off) >> 2) & 7] + (swz(off) & ~28).
struct SwzBases {
  int b[8];
  __device__ __forceinline__ explicit SwzBases(int base) {
    const int s = swz(base);
#pragma unroll
    for (int m = 0; m < 8; ++m) b[m] = s ^ (m << 2);
  }
  __device__ __forceinline__ int at(int off) const {
    const int so = swz(off);
    return b[(so >> 2) & 7] + (so & ~28);
  }
};

// Butterflies over register bits FROM..4 of 32 registers.
template <int FROM> __device__ __forceinline__ void fwht_regs(float (&x)[32]) {
#pragma unroll
  for (int h = 1 << FROM; h < 32; h <<= 1) {
#pragma unroll
    for (int r = 0; r < 32; ++r) {
      if ((r & h) == 0) {
        const float a = x[r], b = x[r + h];
        x[r] = a + b;
        x[r + h] = a - b;
      }
    }
  }
}

#if STAGE
__device__ __forceinline__ void cp_async16(const void* smem, const void* gmem) {
  const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
__device__ __forceinline__ void cp_async_wait_all() {
  asm volatile("cp.async.wait_group 0;\n" ::: "memory");
}
#endif

// At most 64 registers (1024 threads per SM) for 16-bit inputs; f32 inputs (wider stage reads)
// may use 85 so they do not spill, except at 1024 threads, where 64 is the limit anyway.
constexpr int LARGE_MIN_BLOCKS = sizeof(IN_T) == 4 && LARGE_BLOCK < 1024 ? 768 / LARGE_BLOCK
                                                                           : 1024 / LARGE_BLOCK;
extern "C" __global__ void __launch_bounds__(LARGE_BLOCK, LARGE_MIN_BLOCKS)
    DSA_ENTRY_FWHT(const IN_T* in, OUT_T* out, float* scales, i64 rows, i64 in_stride,
                    i64 out_stride, float scale, int pow2) {
  extern __shared__ float4 smem4[];
  float* work = reinterpret_cast<float*>(smem4);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  // P1: chunk c of this thread starts at element p1 + c * CHUNK_STRIDE.
  const int p1 = warp * SEG_N + lane * V;
  // P2: register r is element p2 | (r << LV).
  const int p2 = (lane & (V - 1)) | ((lane >> LV) << (LV + 5)) | (warp << 10);
  // P3: register r is element p3 | (r << (LOG_N - 5)).
  const int p3 = threadIdx.x;
  i64 row = blockIdx.x;
#if STAGE
  IN_T* stage = reinterpret_cast<IN_T*>(work + RED_OFF + 32);
  if (row < rows) {
    const IN_T* src = in + row * in_stride + p1;
#pragma unroll
    for (int c = 0; c < CH; ++c) cp_async16(stage + p1 + c * CHUNK_STRIDE, src + c * CHUNK_STRIDE);
  }
  cp_async_commit();
#endif
  for (; row < rows; row += gridDim.x) {
    float x[32];
#if STAGE
    cp_async_wait_all();
#pragma unroll
    for (int c = 0; c < CH; ++c)
      dsa::load_chunk<IN_T, V>(stage + p1 + c * CHUNK_STRIDE, x + c * V);
#else
    const IN_T* src = in + row * in_stride + p1;
#pragma unroll
    for (int c = 0; c < CH; ++c) dsa::load_chunk<IN_T, V>(src + c * CHUNK_STRIDE, x + c * V);
#endif
    // P1: register bits are chunk element bits (0..LV-1) then chunk bits (LV+5..9).
    fwht_regs<0>(x);
#pragma unroll
    for (int c = 0; c < CH; ++c)
#pragma unroll
      for (int q = 0; q < V / 4; ++q)
        *reinterpret_cast<float4*>(work + swz(p1 + c * CHUNK_STRIDE + 4 * q)) = make_float4(
            x[c * V + 4 * q], x[c * V + 4 * q + 1], x[c * V + 4 * q + 2], x[c * V + 4 * q + 3]);
#if STAGE
    // Prefetch the next row into the stage slots read above: after the stores that consume
    // those reads (the asm's memory clobber keeps them first), so no read can see new data.
    const i64 next = row + gridDim.x;
    if (next < rows) {
      const IN_T* src = in + next * in_stride + p1;
#pragma unroll
      for (int c = 0; c < CH; ++c)
        cp_async16(stage + p1 + c * CHUNK_STRIDE, src + c * CHUNK_STRIDE);
    }
    cp_async_commit();
#endif
    __syncthreads();
    {
      const SwzBases b2(p2);
#pragma unroll
      for (int r = 0; r < 32; ++r) x[r] = work[b2.at(r << LV)];
      fwht_regs<0>(x);
#pragma unroll
      for (int r = 0; r < 32; ++r) work[b2.at(r << LV)] = x[r];
    }
    __syncthreads();
    const SwzBases b3(p3);
#pragma unroll
    for (int r = 0; r < 32; ++r) x[r] = work[b3.at(r << (LOG_N - 5))];
    fwht_regs<15 - LOG_N>(x);
#pragma unroll
    for (int r = 0; r < 32; ++r) x[r] *= scale;
#if OUT_FP8
    // Back to the P1 layout for 16-byte FP8 stores and per-group amax.
#pragma unroll
    for (int r = 0; r < 32; ++r) work[b3.at(r << (LOG_N - 5))] = x[r];
    __syncthreads();
#pragma unroll
    for (int c = 0; c < CH; ++c)
#pragma unroll
      for (int q = 0; q < V / 4; ++q) {
        const float4 f = *reinterpret_cast<const float4*>(work + swz(p1 + c * CHUNK_STRIDE + 4 * q));
        x[c * V + 4 * q] = f.x;
        x[c * V + 4 * q + 1] = f.y;
        x[c * V + 4 * q + 2] = f.z;
        x[c * V + 4 * q + 3] = f.w;
      }
    float amax[CH];
    if constexpr (GROUP > SEG_N) {
      float m = 0.0f;
#pragma unroll
      for (int r = 0; r < 32; ++r) m = fmaxf(m, fabsf(x[r]));
      m = dsa::warp_max(m);
      if (lane == 0) work[RED_OFF + warp] = m;
      __syncthreads();
      m = 0.0f;
#pragma unroll
      for (int w = 0; w < SEGS; ++w) m = fmaxf(m, work[RED_OFF + w]);
#pragma unroll
      for (int c = 0; c < CH; ++c) amax[c] = m;
    } else {
      team_group_amax<32>(x, amax);
    }
    quantize_store(x, amax, out + row * out_stride, scales + row * GROUPS, warp * SEG_N, lane,
                   pow2);
#else
    (void)scales;
    (void)pow2;
    OUT_T* dst = out + row * out_stride + p3;
#pragma unroll
    for (int r = 0; r < 32; ++r) dst[r << (LOG_N - 5)] = dsa::from_float<OUT_T>(x[r]);
#endif
    // The next row's P1 stores reuse the words this row's last phase reads.
    __syncthreads();
  }
#if STAGE
  cp_async_wait_all();
#endif
}
#endif
