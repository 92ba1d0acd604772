// A standalone timing and check harness for topk.cu (no Rust, no JIT): compiled with nvcc on
// the GPU machine, so kernel experiments there take seconds instead of a staging round trip.
//
//   [PAD=0/1/2] [TRANSFORM=0/1/2] [DATA=0/1/2] harness ROWS LEN P [K] [CAUSAL] [ITERS]
//
// Builds the kernel the way the JIT does (prelude + topk.cu, the variant's defines on the
// command line: see build.sh), launches ROWS * P CTAs (clusters of P) over random scores
// (uniform in [-8, 8), as `dsa bench`; DATA=1 or 2 mixes in special values or makes ties),
// checks sampled rows against a CPU sort (tie small, index order) and prints the median of
// ITERS runs timed with CUDA events, inputs rotated over at least 192 MB. Before each timed
// run PAD=2 (default) queues a clock loop, PAD=1 a 64 MiB memset (the session-6 method),
// PAD=0 nothing. Built with -DTIMELINE over the copy that timeline.py makes, it also prints
// per-phase times of the CTAs (%globaltimer after a block barrier at each phase boundary).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <cuda_runtime.h>
#include "prelude.cuh"
#ifndef KFILE
#define KFILE "topk.cu"
#endif
#include KFILE

#define CK(x)                                                                              \
  do {                                                                                     \
    cudaError_t e = (x);                                                                   \
    if (e != cudaSuccess) {                                                                \
      fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e));   \
      exit(1);                                                                             \
    }                                                                                      \
  } while (0)

static u32 host_key(float f) {
  f = f + 0.0f;
  u32 b;
  memcpy(&b, &f, 4);
  if (f != f) b = 0x7fffffffu;
  return b ^ ((u32)((i32)b >> 31) | 0x80000000u);
}

__global__ void fill(float* x, size_t n, u64 seed) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    u64 z = (i + seed) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    x[i] = ((float)(z >> 40) / (float)(1u << 24)) * 16.0f - 8.0f;
  }
}

// DATA=1: special values mixed in (NaN of both signs and several payloads, +-inf, +-0);
// DATA=2: ties, the scores rounded down to whole numbers (16 values, long equal runs across
// the cut).
__global__ void reshape(float* x, size_t n, int data) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const u32 inf = i & 64 ? 0xff800000u : 0x7f800000u;  // -inf or +inf
    if (data == 2) {
      x[i] = floorf(x[i]);
    } else if (i % 61 == 0) {
      x[i] = __uint_as_float(inf | 1u | (u32)(i & 0x3fffffu));  // a NaN: some mantissa bit set
    } else if (i % 67 == 0) {
      x[i] = __uint_as_float(inf);
    } else if (i % 71 == 0) {
      x[i] = i & 64 ? -0.0f : 0.0f;
    }
  }
}

__global__ void spin(long long cycles) {
  const long long t0 = clock64();
  while (clock64() - t0 < cycles) {
  }
}

static int pad_mode() {
  const char* e = getenv("PAD");
  return e ? atoi(e) : 2;
}

#ifdef TIMELINE
// Per phase: the median, 90th percentile and largest time since the CTA's previous stamp, and
// since the grid's first start, over the CTAs of 10 launches.
template <class Launch>
static void print_timeline(int grid, int copies, void* pad, size_t pad_bytes, Launch launch) {
  std::vector<std::vector<double>> gap(16), at(16);
  std::vector<double> skew;
  std::vector<unsigned long long> tl((size_t)grid * 16);
  for (int rep = 0; rep < 10; ++rep) {
    void* sym;
    CK(cudaGetSymbolAddress(&sym, g_tl));
    CK(cudaMemset(sym, 0, tl.size() * 8));
    CK(cudaMemsetAsync(pad, rep, pad_bytes));
    launch(rep % copies);
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpyFromSymbol(tl.data(), g_tl, tl.size() * 8));
    unsigned long long first = ~0ull;
    for (int g = 0; g < grid; ++g)
      if (tl[g * 16]) first = std::min(first, tl[g * 16]);
    for (int g = 0; g < grid; ++g) {
      const unsigned long long* t = &tl[(size_t)g * 16];
      if (!t[0]) continue;
      skew.push_back((t[0] - first) / 1000.0);
      int prev = 0;
      for (int i = 1; i < 16; ++i)
        if (t[i]) {
          gap[i].push_back((t[i] - t[prev]) / 1000.0);
          at[i].push_back((t[i] - first) / 1000.0);
          prev = i;
        }
    }
  }
  auto q = [](std::vector<double> v, double f) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[(size_t)(f * (v.size() - 1))];
  };
  printf("  start skew us: med %.2f p90 %.2f max %.2f\n", q(skew, .5), q(skew, .9), q(skew, 1));
  for (int i = 1; i < 16; ++i)
    if (!gap[i].empty())
      printf("  TL%-2d gap med %6.2f p90 %6.2f max %6.2f | since first start med %6.2f max %6.2f (n=%zu)\n", i,
             q(gap[i], .5), q(gap[i], .9), q(gap[i], 1), q(at[i], .5), q(at[i], 1), gap[i].size());
}
#endif

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "harness ROWS LEN P [K] [CAUSAL] [ITERS]\n");
    return 2;
  }
  const int rows = atoi(argv[1]);
  const long len = atol(argv[2]);
  const int P = atoi(argv[3]);
  const int k = argc > 4 ? atoi(argv[4]) : 2048;
  const int causal = argc > 5 ? atoi(argv[5]) : 0;
  const int iters = argc > 6 ? atoi(argv[6]) : 100;
  const long stride = len;
  const size_t n = (size_t)rows * stride;
  const int copies = (int)std::min<size_t>(1024, std::max<size_t>(2, ((size_t)192 << 20) / (n * 4) + 1));
  const int data = getenv("DATA") ? atoi(getenv("DATA")) : 0;
  std::vector<float*> in(copies);
  for (int c = 0; c < copies; ++c) {
    CK(cudaMalloc(&in[c], n * 4));
    fill<<<1024, 256>>>(in[c], n, 12345 + c * 0x10000000ull);
    if (data == 1 || data == 2) reshape<<<1024, 256>>>(in[c], n, data);
  }
  std::vector<i32> lens(rows);
  for (int i = 0; i < rows; ++i) lens[i] = causal ? (int)std::min<long>(i + 1, stride) : (int)len;
  i32 *dlen, *dout;
  CK(cudaMalloc(&dlen, rows * 4));
  CK(cudaMalloc(&dout, (size_t)rows * k * 4));
  CK(cudaMemcpy(dlen, lens.data(), rows * 4, cudaMemcpyHostToDevice));
  const size_t pad_bytes = 64 << 20;
  void* pad;
  CK(cudaMalloc(&pad, pad_bytes));
  // As the plan: the streaming buffer, and the cluster histograms with P > 1 (index order).
  const u32 entries = SEGMENTS_RESIDENT ? 0 : CAP;
  const u32 dyn = entries * 8 + (P > 1 ? 3 * 2048 * 4 : 0);
  CK(cudaFuncSetAttribute(DSA_ENTRY_TOPK, cudaFuncAttributeMaxDynamicSharedMemorySize, dyn));
  if (P > 8) CK(cudaFuncSetAttribute(DSA_ENTRY_TOPK, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
  Params p{};
  p.lengths = dlen;
  p.out = dout;
  p.stride = stride;
  p.rows = rows;
  p.k = k;
  p.cluster = P;
  // TRANSFORM=1: ragged, offsets[r] = 7 r; TRANSFORM=2: paged with pages of one, request r
  // for row r, page_table[r][j] = (stride - 1 - j) + r * stride.
  const int transform = getenv("TRANSFORM") ? atoi(getenv("TRANSFORM")) : 0;
  std::vector<i32> offs(rows), reqs(rows), table;
  for (int r = 0; r < rows; ++r) offs[r] = 7 * r, reqs[r] = r;
  p.transform = transform;
  if (transform == 1) {
    i32* d;
    CK(cudaMalloc(&d, rows * 4));
    CK(cudaMemcpy(d, offs.data(), rows * 4, cudaMemcpyHostToDevice));
    p.offsets = d;
  } else if (transform == 2) {
    table.resize((size_t)rows * stride);
    for (size_t i = 0; i < table.size(); ++i) table[i] = (i32)((stride - 1 - (long)(i % stride)) + (long)(i / stride) * stride);
    i32 *d, *t;
    CK(cudaMalloc(&d, rows * 4));
    CK(cudaMalloc(&t, table.size() * 4));
    CK(cudaMemcpy(d, reqs.data(), rows * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(t, table.data(), table.size() * 4, cudaMemcpyHostToDevice));
    p.req_map = d;
    p.page_table = t;
    p.pt_stride = stride;
    p.pt_cols = (i32)stride;
    p.num_req = rows;
    p.page_log2 = 0;
  }
  // The transform applied to an index of row r, as the kernel must.
  const auto mapped = [&](int r, int idx) {
    if (idx < 0 || transform == 0) return idx;
    return transform == 1 ? idx + offs[r] : table[(size_t)r * stride + idx];
  };
  cudaLaunchConfig_t cfg{};
  cudaLaunchAttribute attr[1];
  cfg.gridDim = dim3(rows * P);
  cfg.blockDim = dim3(THREADS);
  cfg.dynamicSmemBytes = dyn;
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = P;
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  cfg.attrs = attr;
  cfg.numAttrs = P > 1 ? 1 : 0;
  auto launch = [&](int c) {
    p.scores = in[c];
    CK(cudaLaunchKernelEx(&cfg, DSA_ENTRY_TOPK, p));
  };

  launch(0);
  CK(cudaDeviceSynchronize());
  std::vector<i32> out((size_t)rows * k);
  CK(cudaMemcpy(out.data(), dout, out.size() * 4, cudaMemcpyDeviceToHost));
  std::vector<float> h(n);
  CK(cudaMemcpy(h.data(), in[0], n * 4, cudaMemcpyDeviceToHost));
  int bad = 0;
  for (int r = 0; r < rows && bad < 3; r += std::max(1, rows / 16)) {
    const int L = lens[r], kk = std::min(L, k);
    std::vector<std::pair<u64, int>> v(L);
    for (int j = 0; j < L; ++j) v[j] = {((u64)host_key(h[(size_t)r * stride + j]) << 32) | (u32)~(u32)j, j};
    std::partial_sort(v.begin(), v.begin() + kk, v.end(), [](auto& a, auto& b) { return a.first > b.first; });
    std::vector<int> want(k, -1);
    for (int j = 0; j < kk; ++j) want[j] = v[j].second;
    std::sort(want.begin(), want.begin() + kk);
    for (int j = 0; j < k; ++j) want[j] = mapped(r, want[j]);
    for (int j = 0; j < k; ++j)
      if (want[j] != out[(size_t)r * k + j]) {
        ++bad;
        fprintf(stderr, "row %d pos %d want %d got %d\n", r, j, want[j], out[(size_t)r * k + j]);
        break;
      }
  }

  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  std::vector<float> t;
  for (int i = 0; i < 10; ++i) launch(i % copies);
  for (int i = 0; i < iters; ++i) {
    if (pad_mode() == 1) CK(cudaMemsetAsync(pad, i & 255, pad_bytes));
    if (pad_mode() == 2) spin<<<1, 32>>>(50000);
    CK(cudaEventRecord(a));
    launch(i % copies);
    CK(cudaEventRecord(b));
    CK(cudaEventSynchronize(b));
    float ms;
    CK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms * 1000.f);
  }
  std::sort(t.begin(), t.end());
  printf("pad%d t%d %-12s %5d x %-7ld P=%-2d T=%-4d median %7.2f us  min %7.2f  %s\n", pad_mode(), transform, TAG, rows, len, P,
         THREADS, t[t.size() / 2], t[0], bad ? "WRONG" : "ok");
#ifdef TIMELINE
  print_timeline(rows * P, copies, pad, pad_bytes, launch);
#endif
  return bad ? 1 : 0;
}
