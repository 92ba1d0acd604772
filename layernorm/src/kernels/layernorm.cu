// LayerNorm / RMSNorm over the last dim: y = (x - mean) * rstd * gamma + beta, f32 statistics.
//
// Defines (rendered by `LayerNormVariant`):
//   IN_T    input (and gamma/beta) element type: float, dsa::bf16, dsa::f16
//   OUT_T   output element type
//   VEC     elements per chunk: 16 bytes of IN_T (vector path) or 1 (scalar path)
//   CHUNKS  chunks each thread holds in registers
//   CTA     0: a team of `lanes` (power of two <= 32) lanes per row, 32 / lanes rows per warp;
//           1: one CTA per row (`lanes` = blockDim.x, a multiple of 32)
//
// Chunk j (elements j*VEC .. j*VEC+VEC-1) of a row belongs to team thread j % lanes, register
// slot j / lanes. Statistics are two passes over registers, shifted by the row's first element
// (exact subtraction for rows whose values are close, so a mean of 1e4 with std 1 keeps its
// precision): mean = shift + sum(x - shift) / dim, var = sum((x - shift - mean_d)^2) / dim.

constexpr int EPT = VEC * CHUNKS;

#if CTA
// Sum over the CTA; `slot` must differ between calls that are not separated by a barrier.
__device__ __forceinline__ float team_sum(float s, int lanes, float* slot) {
  s = dsa::warp_sum(s);
  if ((threadIdx.x & 31) == 0) slot[threadIdx.x >> 5] = s;
  __syncthreads();
  s = 0.0f;
  for (int w = 0; w < (lanes >> 5); ++w) s += slot[w];
  return s;
}
#else
__device__ __forceinline__ float team_sum(float s, int lanes, float*) {
  for (int o = 1; o < lanes; o <<= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  return s;
}
#endif

// Block size bound: the host launches 128 threads for warp teams, up to 1024 for a CTA team.
constexpr int MAX_BLOCK = CTA ? 1024 : 128;

extern "C" __global__ void __launch_bounds__(MAX_BLOCK)
    DSA_ENTRY_NORM(const IN_T* x, OUT_T* y, const IN_T* gamma, const IN_T* beta, i64 rows,
                   int dim, i64 x_stride, i64 y_stride, float eps, int rms, int lanes) {
#if CTA
  __shared__ float red[2][32];
  const int t = threadIdx.x;
  const i64 row = blockIdx.x;
#else
  float* red[2] = {nullptr, nullptr};
  const int lane = threadIdx.x & 31;
  const int t = lane & (lanes - 1);
  const i64 row = ((i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5)) * (32 / lanes) +
                  lane / lanes;
#endif
  const bool live = row < rows;
  const int nch = dim / VEC;
  const IN_T* xr = x + (live ? row : 0) * x_stride;
  float v[EPT];
#pragma unroll
  for (int c = 0; c < CHUNKS; ++c) {
    const int j = t + c * lanes;
    if (live && j < nch) {
      dsa::load_chunk<IN_T, VEC>(xr + j * VEC, v + c * VEC);
    } else {
#pragma unroll
      for (int e = 0; e < VEC; ++e) v[c * VEC + e] = 0.0f;
    }
  }
  // The shift is element 0, which team lane 0 holds in v[0] (0 for a row past the end).
#if CTA
  const float shift = (live && !rms) ? dsa::to_float(xr[0]) : 0.0f;
#else
  const float first = __shfl_sync(0xffffffffu, v[0], 0, lanes);
  const float shift = rms ? 0.0f : first;
#endif
  // Pass 1: sum of (x - shift), or of x^2 for RMSNorm. Padding slots hold 0 and are skipped.
  float s = 0.0f;
#pragma unroll
  for (int c = 0; c < CHUNKS; ++c) {
    if (t + c * lanes < nch) {
#pragma unroll
      for (int e = 0; e < VEC; ++e) {
        const float d = v[c * VEC + e] - shift;
        s += rms ? d * d : d;
      }
    }
  }
  s = team_sum(s, lanes, red[0]);
  const float inv_dim = 1.0f / (float)dim;
  float mean_d = 0.0f, rstd;
  if (rms) {
    rstd = rsqrtf(s * inv_dim + eps);
  } else {
    mean_d = s * inv_dim;
    // Pass 2: centred sum of squares.
    float q = 0.0f;
#pragma unroll
    for (int c = 0; c < CHUNKS; ++c) {
      if (t + c * lanes < nch) {
#pragma unroll
        for (int e = 0; e < VEC; ++e) {
          const float d = (v[c * VEC + e] - shift) - mean_d;
          q += d * d;
        }
      }
    }
    q = team_sum(q, lanes, red[1]);
    rstd = rsqrtf(q * inv_dim + eps);
  }
  if (!live) return;
  OUT_T* yr = y + row * y_stride;
#pragma unroll
  for (int c = 0; c < CHUNKS; ++c) {
    const int j = t + c * lanes;
    if (j < nch) {
      float o[VEC], g[VEC], b[VEC];
      if (gamma) dsa::load_chunk<IN_T, VEC>(gamma + j * VEC, g);
      if (beta) dsa::load_chunk<IN_T, VEC>(beta + j * VEC, b);
#pragma unroll
      for (int e = 0; e < VEC; ++e) {
        float w = ((v[c * VEC + e] - shift) - mean_d) * rstd;
        if (gamma) w *= g[e];
        if (beta) w += b[e];
        o[e] = w;
      }
      dsa::store_chunk<OUT_T, VEC>(yr + j * VEC, o);
    }
  }
}
