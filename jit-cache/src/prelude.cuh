// dsa-kernels device prelude: the only "header" every kernel sees.
//
// NVRTC compiles our kernels with no include path, so everything a kernel needs beyond the
// compiler's builtins lives here: fixed-width integer names, storage types for bf16 / f16 /
// fp8-e4m3 with conversions through PTX `cvt`, 16-byte vector loads and stores, and warp
// reductions. Keep it small: every byte is part of every kernel's cache key.
#pragma once

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef int i32;
typedef long long i64;

namespace dsa {

// Storage types: plain bits, so host and device agree on layout and nothing depends on
// cuda_bf16.h / cuda_fp16.h.
struct bf16 { u16 bits; };
struct f16 { u16 bits; };
struct fp8e4m3 { u8 bits; };

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(bf16 x) { return __uint_as_float(((u32)x.bits) << 16); }
__device__ __forceinline__ float to_float(f16 x) {
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(x.bits));
  return f;
}

template <typename T> __device__ __forceinline__ T from_float(float x);
template <> __device__ __forceinline__ float from_float<float>(float x) { return x; }
template <> __device__ __forceinline__ bf16 from_float<bf16>(float x) {
  bf16 r;
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(r.bits) : "f"(x));
  return r;
}
template <> __device__ __forceinline__ f16 from_float<f16>(float x) {
  f16 r;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(r.bits) : "f"(x));
  return r;
}

// FP8 e4m3 (OCP "e4m3fn": bias 7, no infinities, max 448, NaN = S.1111.111), round to nearest
// even with saturation to +-448, NaN stays NaN. sm_89+ has a hardware conversion; older
// targets use the bit-exact software path (the host reference implements the same rule).
__device__ __forceinline__ u8 fp8e4m3_encode_soft(float x) {
  u32 b = __float_as_uint(x);
  u32 sign = (b >> 24) & 0x80u;
  u32 a = b & 0x7fffffffu;
  if (a > 0x7f800000u) return (u8)(sign | 0x7fu);  // NaN
  if (a >= 0x43e00000u) return (u8)(sign | 0x7eu); // >= 448 (and inf): saturate
  // Values below 2^-6 are subnormal in e4m3: quantum 2^-9. Scale so the quantum is 1 and
  // round to nearest even in float arithmetic (exact: the value has few significant bits).
  float f = __uint_as_float(a);
  if (a < 0x3c800000u) {  // < 2^-6
    float q = __fmul_rn(f, 512.0f);
    float r = rintf(q);  // ties to even
    return (u8)(sign | (u32)r);
  }
  // Normal: keep 3 mantissa bits, round to nearest even on the 20 dropped bits.
  u32 exp = (a >> 23) - 127 + 7;
  u32 man = a & 0x7fffffu;
  u32 keep = man >> 20;
  u32 rest = man & 0xfffffu;
  u32 code = (exp << 3) | keep;
  if (rest > 0x80000u || (rest == 0x80000u && (keep & 1u))) code += 1;  // may carry into exp
  if (code > 0x7eu) code = 0x7eu;
  return (u8)(sign | code);
}

__device__ __forceinline__ u16 fp8e4m3_encode2(float lo, float hi) {
#if __CUDA_ARCH__ >= 890
  u16 r;
  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(r) : "f"(hi), "f"(lo));
  return r;
#else
  return (u16)fp8e4m3_encode_soft(lo) | ((u16)fp8e4m3_encode_soft(hi) << 8);
#endif
}

__device__ __forceinline__ fp8e4m3 fp8e4m3_from_float(float x) {
  fp8e4m3 r;
  r.bits = (u8)(fp8e4m3_encode2(x, 0.0f) & 0xffu);
  return r;
}

__device__ __forceinline__ float to_float(fp8e4m3 x) {
  u32 sign = ((u32)x.bits & 0x80u) << 24;
  u32 e = ((u32)x.bits >> 3) & 0xfu;
  u32 m = (u32)x.bits & 0x7u;
  if (e == 0xfu && m == 0x7u) return __uint_as_float(0x7fc00000u | sign);
  if (e == 0) return __uint_as_float(sign) + (sign ? -1.0f : 1.0f) * (float)m * 0.001953125f;
  return __uint_as_float(sign | ((e + 120u) << 23) | (m << 20));
}

// The widest aligned word for BYTES bytes (at most 16), and how many of them cover BYTES.
template <int BYTES> struct WordOf;
template <> struct WordOf<2> { typedef u16 type; };
template <> struct WordOf<4> { typedef u32 type; };
template <> struct WordOf<8> { typedef uint2 type; };
template <> struct WordOf<16> { typedef uint4 type; };
template <int BYTES> struct Words {
  typedef typename WordOf<(BYTES < 16 ? BYTES : 16)>::type W;
  static constexpr int COUNT = BYTES < 16 ? 1 : BYTES / 16;
};

// CNT elements of T viewed as the words that load or store them at once.
template <typename T, int CNT> union Pack {
  typename Words<CNT * (int)sizeof(T)>::W w[Words<CNT * (int)sizeof(T)>::COUNT];
  T e[CNT];
};

// CNT contiguous elements at p (aligned to their words) widened to f32, in one access per word.
template <typename T, int CNT> __device__ __forceinline__ void load_chunk(const T* p, float* x) {
  typedef Words<CNT * (int)sizeof(T)> Wd;
  Pack<T, CNT> pk;
  const typename Wd::W* src = reinterpret_cast<const typename Wd::W*>(p);
#pragma unroll
  for (int k = 0; k < Wd::COUNT; ++k) pk.w[k] = src[k];
#pragma unroll
  for (int v = 0; v < CNT; ++v) x[v] = to_float(pk.e[v]);
}

// CNT f32 values rounded to T and stored at p (aligned to their words), one access per word.
template <typename T, int CNT> __device__ __forceinline__ void store_chunk(T* p, const float* x) {
  typedef Words<CNT * (int)sizeof(T)> Wd;
  Pack<T, CNT> pk;
#pragma unroll
  for (int v = 0; v < CNT; ++v) pk.e[v] = from_float<T>(x[v]);
  typename Wd::W* dst = reinterpret_cast<typename Wd::W*>(p);
#pragma unroll
  for (int k = 0; k < Wd::COUNT; ++k) dst[k] = pk.w[k];
}

// Warp-wide reductions over all 32 lanes.
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

}  // namespace dsa
