// Read ceilings for top-k's shapes: how fast ROWS x LEN f32 scores can be read at all, by plain
// 16-byte loads (a CTA per row segment, each block-contiguous or each warp its own part) or by
// bulk copies (cp.async.bulk, TMA 1D) into a shared-memory ring (per segment or persistent),
// each counting the scores above a threshold and writing nothing.
//
//   nvcc -std=c++17 -gencode=arch=compute_90a,code=sm_90a -O3 -o readceil readceil.cu
//   PAD=2 ./readceil ROWS LEN
//
// Timing as harness.cu: CUDA events, median of 100 after 10, inputs rotated over 512 MB,
// PAD=2 (default) a clock loop queued before each run, 1 a 64 MiB memset, 0 nothing.
#include <cstdio>
#include <vector>
#include <cstdlib>
#include <algorithm>
#include <cuda_runtime.h>
#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { fprintf(stderr, "%s: %s\n", #x, cudaGetErrorString(e)); exit(1);} } while (0)
typedef unsigned u32; typedef unsigned long long u64;

__device__ __forceinline__ u32 saddr(const void* p) { return (u32)__cvta_generic_to_shared(p); }
__device__ __forceinline__ void mb_init(u64* b, u32 n) { asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(saddr(b)), "r"(n) : "memory"); }
__device__ __forceinline__ void mb_expect(u64* b, u32 tx) { asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(saddr(b)), "r"(tx) : "memory"); }
__device__ __forceinline__ void mb_arrive(u64* b) { asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(saddr(b)) : "memory"); }
__device__ __forceinline__ void mb_wait(u64* b, u32 parity) {
  asm volatile("{ .reg .pred p; W%=: mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1; @!p bra W%=; }" ::"r"(saddr(b)), "r"(parity) : "memory");
}
__device__ __forceinline__ void bulk_load(void* dst, const void* src, u32 bytes, u64* b) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
               ::"r"(saddr(dst)), "l"(src), "r"(bytes), "r"(saddr(b)) : "memory");
}

__device__ __forceinline__ u32 cnt4(float4 v, float t) { return (v.x > t) + (v.y > t) + (v.z > t) + (v.w > t); }
__device__ __forceinline__ void sink(u32 c, u32* out) { if (c == 0xdeadbeefu) out[0] = c; }

// Per-segment grid, plain loads: L float4 a thread a step, the next step in flight.
template <int T, int L>
__global__ void __launch_bounds__(T) ldg_seg(const float* x, long stride, int P, float thr, u32* out) {
  const int row = blockIdx.x / P, rank = blockIdx.x % P;
  const long seg = stride / P;
  const float4* p = reinterpret_cast<const float4*>(x + row * stride + rank * seg);
  const int nv = seg / 4;
  u32 c = 0;
  float4 cur[L], nxt[L];
#pragma unroll
  for (int u = 0; u < L; ++u) cur[u] = __ldg(p + min(u * T + (int)threadIdx.x, nv - 1));
  for (int v0 = 0; v0 < nv; v0 += L * T) {
    if (v0 + L * T < nv)
#pragma unroll
      for (int u = 0; u < L; ++u) nxt[u] = __ldg(p + min(v0 + L * T + u * T + (int)threadIdx.x, nv - 1));
#pragma unroll
    for (int u = 0; u < L; ++u) c += cnt4(cur[u], thr);
#pragma unroll
    for (int u = 0; u < L; ++u) cur[u] = nxt[u];
  }
  sink(c, out);
}

// Tiles of TB bytes through an S-stage ring; T consumer threads plus one producer warp.
// Tile list: a CTA takes tiles [first, first + n) of its own segment (seg grid) or tiles
// b, b + G, ... of all (persistent grid), tile t at x + t * TB.
template <int T, int S, int TB, bool PERSIST>
__global__ void __launch_bounds__(T + 32) tma(const float* x, long total_tiles, int per_cta, float thr, u32* out) {
  extern __shared__ __align__(128) char ring[];
  __shared__ __align__(8) u64 full[S], empty[S];
  const int warp = threadIdx.x / 32;
  if (threadIdx.x == 0) for (int s = 0; s < S; ++s) { mb_init(&full[s], 1); mb_init(&empty[s], T / 32); }
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  __syncthreads();
  long first, step; int n;
  if (PERSIST) { first = blockIdx.x; step = gridDim.x; n = (int)((total_tiles - first + step - 1) / step); }
  else { first = (long)blockIdx.x * per_cta; step = 1; n = per_cta; }
  if (warp == T / 32) {  // producer
    if ((threadIdx.x & 31) == 0)
      for (int i = 0; i < n; ++i) {
        const int s = i % S;
        if (i >= S) mb_wait(&empty[s], ((i / S) - 1) & 1);
        mb_expect(&full[s], TB);
        bulk_load(ring + s * TB, reinterpret_cast<const char*>(x) + (first + i * step) * (long)TB, TB, &full[s]);
      }
    return;
  }
  u32 c = 0;
  for (int i = 0; i < n; ++i) {
    const int s = i % S;
    mb_wait(&full[s], (i / S) & 1);
    const float4* v = reinterpret_cast<const float4*>(ring + s * TB);
#pragma unroll
    for (int j = threadIdx.x; j < TB / 16; j += T) c += cnt4(v[j], thr);
    __syncwarp();
    if ((threadIdx.x & 31) == 0) mb_arrive(&empty[s]);
  }
  sink(c, out);
}

__global__ void spin(long long cycles) { long long t0 = clock64(); while (clock64() - t0 < cycles) {} }
static int pad_mode() { const char* e = getenv("PAD"); return e ? atoi(e) : 2; }
// Per-segment grid, plain loads, each warp reading its own contiguous part of the segment
// (steps of 32 lanes x L float4), the next step in flight.
template <int T, int L>
__global__ void __launch_bounds__(T) ldg_warp(const float* x, long stride, int P, float thr, u32* out) {
  const int row = blockIdx.x / P, rank = blockIdx.x % P, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const long seg = stride / P;
  const int nv = seg / 4, wv = nv / (T / 32);
  const float4* p = reinterpret_cast<const float4*>(x + row * stride + rank * seg) + warp * wv;
  u32 c = 0;
  float4 cur[L], nxt[L];
#pragma unroll
  for (int u = 0; u < L; ++u) cur[u] = __ldg(p + u * 32 + lane);
  for (int v0 = 0; v0 < wv; v0 += L * 32) {
    if (v0 + L * 32 < wv)
#pragma unroll
      for (int u = 0; u < L; ++u) nxt[u] = __ldg(p + v0 + L * 32 + u * 32 + lane);
#pragma unroll
    for (int u = 0; u < L; ++u) c += cnt4(cur[u], thr);
#pragma unroll
    for (int u = 0; u < L; ++u) cur[u] = nxt[u];
  }
  sink(c, out);
}

template <class F>
float timeit(F f, void* pad) {
  cudaEvent_t a, b; CK(cudaEventCreate(&a)); CK(cudaEventCreate(&b));
  std::vector<float> t;
  for (int i = 0; i < 110; ++i) {
    if (pad_mode() == 1) CK(cudaMemsetAsync(pad, i & 255, 64 << 20));
    if (pad_mode() == 2) spin<<<1, 32>>>(50000);
    CK(cudaEventRecord(a)); f(i); CK(cudaGetLastError()); CK(cudaEventRecord(b)); CK(cudaEventSynchronize(b));
    float ms; CK(cudaEventElapsedTime(&ms, a, b)); if (i >= 10) t.push_back(ms * 1000);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

int main(int argc, char** argv) {
  const int rows = atoi(argv[1]); const long len = atol(argv[2]);
  const size_t n = (size_t)rows * len; const int copies = std::max<size_t>(1, std::min<size_t>(16, (512ull << 20) / (n * 4) + 1));
  std::vector<float*> in(copies);
  for (auto& p : in) { CK(cudaMalloc(&p, n * 4)); CK(cudaMemset(p, 0x3f, n * 4)); }
  u32* out; CK(cudaMalloc(&out, 4)); void* pad; CK(cudaMalloc(&pad, 64 << 20));
  const double mb = n * 4.0;
  auto rep = [&](const char* name, float us) { printf("%-28s %5d x %-7ld %7.2f us  %6.0f GB/s\n", name, rows, len, us, mb / us / 1e3); };
  char nm[64];
  for (int P : {1, 2, 4}) {
    if (len / P < 4096) continue;
#define LDG(T, L) { float us = timeit([&](int i) { ldg_seg<T, L><<<rows * P, T>>>(in[i % copies], len, P, 7.5f, out); }, pad); snprintf(nm, 64, "ldg_seg P=%d T=%d L=%d", P, T, L); rep(nm, us); }
    LDG(1024, 2) LDG(1024, 4) LDG(512, 4) LDG(512, 8) LDG(256, 8)
#define LDGW(T, L) { float us = timeit([&](int i) { ldg_warp<T, L><<<rows * P, T>>>(in[i % copies], len, P, 7.5f, out); }, pad); snprintf(nm, 64, "ldg_warp P=%d T=%d L=%d", P, T, L); rep(nm, us); }
    LDGW(1024, 2) LDGW(1024, 4) LDGW(512, 2) LDGW(512, 4)
  }
  const long tiles16 = n * 4 / 16384, tiles8 = n * 4 / 8192;
#define TMA(T, S, TB, PERSIST, G, PER) { auto k = tma<T, S, TB, PERSIST>; CK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, S * TB)); \
    float us = timeit([&](int i) { k<<<G, T + 32, S * TB>>>(in[i % copies], n * 4 / TB, PER, 7.5f, out); }, pad); \
    snprintf(nm, 64, "tma%s T=%d S=%d TB=%d G=%d", PERSIST ? "_pers" : "_seg", T, S, TB, (int)(G)); rep(nm, us); }
  for (int P : {1, 2, 4}) {
    const long per16 = tiles16 / (rows * P), per8 = tiles8 / (rows * P);
    if (per16 < 1) continue;
    TMA(512, 4, 16384, false, rows * P, per16) TMA(512, 8, 16384, false, rows * P, per16) TMA(256, 8, 8192, false, rows * P, per8) TMA(256, 12, 8192, false, rows * P, per8)
  }
  TMA(512, 8, 16384, true, 132, 0) TMA(512, 12, 16384, true, 132, 0) TMA(256, 8, 8192, true, 264, 0) TMA(256, 12, 8192, true, 264, 0) TMA(256, 6, 16384, true, 264, 0) TMA(128, 4, 8192, true, 528, 0)
}
