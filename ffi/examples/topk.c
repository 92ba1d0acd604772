/*
 * topk.c: calling dsa-kernels' top-k from C.
 *
 *   cc -std=c11 -Wall -I ffi/include ffi/examples/topk.c -L target/release -ldsa_kernels -ldl \
 *      -Wl,-rpath,target/release -o topk && ./topk
 *
 * 1. Checks the ABI version and shows the status + message of a bad call.
 * 2. Plans for a hand-described H100 (no GPU needed) and prints the workspace it needs; plans a
 *    whole DeepSeek-V3.2 indexer decode step for the same H100 and prints its shapes.
 * 3. If a GPU is present, runs a top-k on the device and checks it against a host reference:
 *    device memory and a stream come from the CUDA driver, loaded with dlopen so that this
 *    example builds without CUDA headers. Without a GPU it says so and exits 0.
 *
 * Output lines the tests read: "abi ok", "indexer decode plan ...", "no GPU: ...",
 * "row R: i0 i1 ...", "GPU: N rows match".
 */
#include "dsa_kernels.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROWS 3
#define STRIDE 131072
#define K 64

/* The score formula: many ties, so the index tie-break matters. */
static float score_of(int row, int j) { return (float)((j * 7919 + row * 104729) % 1000); }

static int row_length(int row) {
    static const int lengths[ROWS] = {STRIDE, 5000, 10}; /* the last row is shorter than K */
    return lengths[row];
}

/* Host reference: the K best of row `row` (score descending, then index ascending), output in
 * ascending index, padded with -1. */
static void reference(int row, int *out) {
    int n = row_length(row), kept = 0;
    char *taken = calloc((size_t)n, 1);
    for (; kept < K && kept < n; kept++) {
        int best = -1;
        for (int j = 0; j < n; j++)
            if (!taken[j] && (best < 0 || score_of(row, j) > score_of(row, best))) best = j;
        taken[best] = 1;
    }
    int w = 0;
    for (int j = 0; j < n && w < K; j++)
        if (taken[j]) out[w++] = j;
    while (w < K) out[w++] = -1;
    free(taken);
}

static int fail(const char *what, DsaStatus s) {
    fprintf(stderr, "%s failed: %s: %s\n", what, dsa_status_name(s), dsa_last_error());
    return 1;
}

/* The few CUDA driver entry points the GPU path needs. */
typedef int (*cuInit_t)(unsigned);
typedef int (*cuDeviceGetCount_t)(int *);
typedef int (*cuDeviceGet_t)(int *, int);
typedef int (*cuDevicePrimaryCtxRetain_t)(void **, int);
typedef int (*cuCtxSetCurrent_t)(void *);
typedef int (*cuMemAlloc_t)(unsigned long long *, size_t);
typedef int (*cuMemFree_t)(unsigned long long);
typedef int (*cuMemcpyHtoD_t)(unsigned long long, const void *, size_t);
typedef int (*cuMemcpyDtoH_t)(void *, unsigned long long, size_t);
typedef int (*cuStreamCreate_t)(void **, unsigned);
typedef int (*cuStreamSynchronize_t)(void *);
typedef int (*cuStreamDestroy_t)(void *);

#define LOAD(lib, name, sym) name##_t name = (name##_t)dlsym(lib, sym)
#define CU(call)                                                          \
    do {                                                                  \
        int e_ = (call);                                                  \
        if (e_) { fprintf(stderr, "%s = CUDA error %d\n", #call, e_); return 1; } \
    } while (0)

static int gpu_path(void *cuda) {
    LOAD(cuda, cuInit, "cuInit");
    LOAD(cuda, cuDeviceGetCount, "cuDeviceGetCount");
    LOAD(cuda, cuDeviceGet, "cuDeviceGet");
    LOAD(cuda, cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
    LOAD(cuda, cuCtxSetCurrent, "cuCtxSetCurrent");
    LOAD(cuda, cuMemAlloc, "cuMemAlloc_v2");
    LOAD(cuda, cuMemFree, "cuMemFree_v2");
    LOAD(cuda, cuMemcpyHtoD, "cuMemcpyHtoD_v2");
    LOAD(cuda, cuMemcpyDtoH, "cuMemcpyDtoH_v2");
    LOAD(cuda, cuStreamCreate, "cuStreamCreate");
    LOAD(cuda, cuStreamSynchronize, "cuStreamSynchronize");
    LOAD(cuda, cuStreamDestroy, "cuStreamDestroy_v2");
    int count = 0;
    if (!cuStreamDestroy || !cuDeviceGet || cuInit(0) || cuDeviceGetCount(&count) || count == 0) {
        printf("no GPU: the CUDA driver has no device\n");
        return 0;
    }
    void *ctx = NULL, *stream = NULL;
    int device = 0;
    CU(cuDeviceGet(&device, 0));
    CU(cuDevicePrimaryCtxRetain(&ctx, device));
    CU(cuCtxSetCurrent(ctx));
    CU(cuStreamCreate(&stream, 1 /* non-blocking */));

    DsaTopkConfig config = {0};
    config.k = K;
    DsaTopkPlan *plan = NULL;
    DsaStatus s = dsa_topk_plan_create(&config, ROWS, STRIDE, 0, &plan);
    if (s != DSA_STATUS_OK) return fail("dsa_topk_plan_create", s);
    size_t ws_bytes = 0;
    dsa_topk_plan_workspace_bytes(plan, &ws_bytes);

    float *scores = malloc(sizeof(float) * ROWS * STRIDE);
    int lengths[ROWS], *out = malloc(sizeof(int) * ROWS * K), expect[K];
    for (int r = 0; r < ROWS; r++) {
        lengths[r] = row_length(r);
        for (int j = 0; j < STRIDE; j++) scores[(size_t)r * STRIDE + j] = score_of(r, j);
    }
    unsigned long long d_scores, d_lengths, d_out, d_ws = 0;
    CU(cuMemAlloc(&d_scores, sizeof(float) * ROWS * STRIDE));
    CU(cuMemAlloc(&d_lengths, sizeof lengths));
    CU(cuMemAlloc(&d_out, sizeof(int) * ROWS * K));
    if (ws_bytes) CU(cuMemAlloc(&d_ws, ws_bytes));
    CU(cuMemcpyHtoD(d_scores, scores, sizeof(float) * ROWS * STRIDE));
    CU(cuMemcpyHtoD(d_lengths, lengths, sizeof lengths));

    s = dsa_topk_plan_prepare(plan, stream);
    if (s != DSA_STATUS_OK) return fail("dsa_topk_plan_prepare", s);
    DsaTopkArgs args;
    memset(&args, 0, sizeof args);
    args.scores = (const void *)(size_t)d_scores;
    args.lengths = (const void *)(size_t)d_lengths;
    args.out = (void *)(size_t)d_out;
    args.workspace = (void *)(size_t)d_ws;
    args.workspace_bytes = ws_bytes;
    s = dsa_topk_run(plan, &args, stream);
    if (s != DSA_STATUS_OK) return fail("dsa_topk_run", s);
    CU(cuStreamSynchronize(stream));
    CU(cuMemcpyDtoH(out, d_out, sizeof(int) * ROWS * K));

    int good = 0;
    for (int r = 0; r < ROWS; r++) {
        printf("row %d:", r);
        for (int i = 0; i < K; i++) printf(" %d", out[r * K + i]);
        printf("\n");
        reference(r, expect);
        if (memcmp(expect, out + r * K, sizeof expect) == 0) good++;
        else printf("row %d differs from the host reference\n", r);
    }
    printf("GPU: %d rows match\n", good);

    cuMemFree(d_scores);
    cuMemFree(d_lengths);
    cuMemFree(d_out);
    if (d_ws) cuMemFree(d_ws);
    cuStreamDestroy(stream);
    dsa_topk_plan_destroy(plan);
    free(scores);
    free(out);
    return good == ROWS ? 0 : 1;
}

int main(void) {
    printf("dsa-kernels %s, ABI %d\n", dsa_version(), dsa_abi_version());
    if (dsa_abi_version() != DSA_ABI_VERSION) {
        fprintf(stderr, "header ABI %d != library ABI %d\n", DSA_ABI_VERSION, dsa_abi_version());
        return 1;
    }
    printf("abi ok\n");

    /* A bad argument gives a status and a message, never a crash. */
    DsaTopkConfig bad = {0};
    bad.k = 0;
    DsaDeviceInfo h100 = {-1, 132, 9, 0, 227 * 1024, 50 * 1024 * 1024, 0};
    DsaTopkPlan *plan = NULL;
    DsaStatus s = dsa_topk_plan_create_for(&bad, ROWS, STRIDE, &h100, &plan);
    printf("k = 0: %s: %s\n", dsa_status_name(s), dsa_last_error());
    if (s != DSA_STATUS_INVALID_ARGUMENT) return 1;

    /* Planning needs no GPU when the device is described. */
    DsaTopkConfig config = {0};
    config.k = K;
    s = dsa_topk_plan_create_for(&config, ROWS, STRIDE, &h100, &plan);
    if (s != DSA_STATUS_OK) return fail("dsa_topk_plan_create_for", s);
    size_t ws_bytes = 0;
    int64_t shape[2];
    dsa_topk_plan_workspace_bytes(plan, &ws_bytes);
    dsa_topk_plan_output_shape(plan, shape);
    printf("plan for an H100: output [%lld, %lld], workspace %zu bytes\n", (long long)shape[0],
           (long long)shape[1], ws_bytes);

    /* The whole indexer plans the same way: defaults of DeepSeek-V3.2, 64 requests of up to
     * 65536 tokens in a cache of 70000 pages. */
    DsaIndexerConfig icfg;
    dsa_indexer_config_default(&icfg);
    DsaIndexerDecodeShape dshape = {64, 65536, 1024, 65536, 70000};
    DsaIndexerPlan *iplan = NULL;
    s = dsa_indexer_decode_plan_create_for(&icfg, &dshape, &h100, &iplan);
    if (s != DSA_STATUS_OK) return fail("dsa_indexer_decode_plan_create_for", s);
    DsaIndexerPlanInfo info;
    dsa_indexer_plan_info(iplan, &info);
    printf("indexer decode plan for an H100: logits [%lld, %lld], indices [%lld, %lld], "
           "workspace %zu bytes\n",
           (long long)info.logits_shape[0], (long long)info.logits_shape[1],
           (long long)info.indices_shape[0], (long long)info.indices_shape[1],
           info.workspace_bytes);
    dsa_indexer_plan_destroy(iplan);

    /* A run with no driver (or a bad stream) fails cleanly too. */
    DsaTopkArgs args;
    memset(&args, 0, sizeof args);
    s = dsa_topk_run(plan, &args, NULL);
    printf("run with null pointers: %s: %s\n", dsa_status_name(s), dsa_last_error());
    dsa_topk_plan_destroy(plan);
    if (s != DSA_STATUS_INVALID_ARGUMENT) return 1;

    void *cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!cuda) {
        DsaDeviceInfo info;
        s = dsa_device_info(0, &info);
        printf("no GPU: %s: %s\n", dsa_status_name(s), dsa_last_error());
        return s == DSA_STATUS_NO_DRIVER ? 0 : 1;
    }
    return gpu_path(cuda);
}
