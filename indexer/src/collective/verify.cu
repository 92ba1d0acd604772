// Cross-rank verification of top-k indices: per-row fingerprints, the MIN reduction of
// simulated ranks, and the mismatch count. The contract and the CPU reference are in
// fingerprint.rs; this file must stay bit-exact with it.
//
// Defines: BLOCK (threads per block, a multiple of 32).

__device__ __forceinline__ u64 mix64(u64 x) {
  u64 z = x + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// One block per row: fingerprint = mix64(sum_j mix64(j << 32 | (u32)idx[j]) ^ k), written as
// packed[row] = fp and packed[rows + row] = ~fp, so one MIN all-reduce yields min and max.
// Block 0 also zeroes the mismatch count for the compare kernel that follows on the stream.
extern "C" __global__ void DSA_ENTRY_FINGERPRINT(const i32* __restrict__ idx, u64 rows, u32 k,
                                                 u64* __restrict__ packed, u32* __restrict__ count) {
  const u64 row = blockIdx.x;
  const i32* r = idx + row * (u64)k;
  u64 sum = 0;
#pragma unroll 4
  for (u32 j = threadIdx.x; j < k; j += BLOCK) {
    sum += mix64(((u64)j << 32) | (u64)(u32)r[j]);
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  __shared__ u64 warp_sums[BLOCK / 32];
  if ((threadIdx.x & 31u) == 0) warp_sums[threadIdx.x >> 5] = sum;
  __syncthreads();
  if (threadIdx.x == 0) {
    u64 total = 0;
#pragma unroll
    for (int w = 0; w < BLOCK / 32; ++w) total += warp_sums[w];
    const u64 fp = mix64(total ^ (u64)k);
    packed[row] = fp;
    packed[rows + row] = ~fp;
    if (row == 0) *count = 0u;
  }
}

// Simulated ranks on one GPU: slot 0 = elementwise MIN over `ranks` packed buffers of `n`
// u64 each, laid out back to back (what ncclAllReduce(ncclMin) does across real ranks).
extern "C" __global__ void DSA_ENTRY_MIN_RANKS(u64* __restrict__ packed, u64 n, u32 ranks) {
  const u64 i = (u64)blockIdx.x * BLOCK + threadIdx.x;
  if (i >= n) return;
  u64 m = packed[i];
  for (u32 s = 1; s < ranks; ++s) {
    const u64 v = packed[(u64)s * n + i];
    m = v < m ? v : m;
  }
  packed[i] = m;
}

// After the MIN reduction: row i differs on some rank iff min(fp) != max(fp), i.e.
// packed[i] != ~packed[rows + i]. Writes the per-row flag and adds the count.
extern "C" __global__ void DSA_ENTRY_COMPARE(const u64* __restrict__ packed, u64 rows,
                                             u32* __restrict__ flags, u32* __restrict__ count) {
  const u64 i = (u64)blockIdx.x * BLOCK + threadIdx.x;
  int bad = 0;
  if (i < rows) {
    bad = packed[i] != ~packed[rows + i];
    flags[i] = (u32)bad;
  }
  const int n = __syncthreads_count(bad);
  if (threadIdx.x == 0 && n > 0) atomicAdd(count, (u32)n);
}
