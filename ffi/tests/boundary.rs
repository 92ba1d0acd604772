//! The C boundary rejects every bad argument with the right status and a message naming it,
//! before touching a device. Runs without a GPU; on a machine with one, the cases whose
//! arguments are valid are skipped (their fake device addresses must not reach a launch).

use dsa_kernels::hadamard::*;
use dsa_kernels::layernorm::*;
use dsa_kernels::topk::*;
use dsa_kernels::*;
use std::ffi::{CStr, c_void};
use std::ptr::{null, null_mut};

fn last_error() -> String {
    // SAFETY: never null; copied at once, before the next call.
    unsafe { CStr::from_ptr(dsa_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// Assert `status` is `want` and the message contains `needle`.
#[track_caller]
fn expect(status: DsaStatus, want: DsaStatus, needle: &str) {
    let msg = last_error();
    assert_eq!(status, want, "message: {msg}");
    assert!(msg.contains(needle), "`{msg}` does not contain `{needle}`");
}

fn gpu_present() -> bool {
    let mut info = DsaDeviceInfo::default();
    dsa_device_info(0, &mut info) == DsaStatus::Ok
}

/// Valid arguments that reach the device layer: without a GPU that is `DSA_STATUS_NO_DRIVER`.
#[track_caller]
fn expect_reaches_device(status: impl FnOnce() -> DsaStatus) {
    if gpu_present() {
        return;
    }
    expect(status(), DsaStatus::NoDriver, "CUDA driver");
}

fn addr(a: usize) -> *const c_void {
    a as *const c_void
}

fn addr_mut(a: usize) -> *mut c_void {
    a as *mut c_void
}

const H100: DsaDeviceInfo = DsaDeviceInfo {
    ordinal: -1,
    sm_count: 132,
    cc_major: 9,
    cc_minor: 0,
    max_smem_per_block: 227 * 1024,
    l2_bytes: 50 << 20,
    name_hash: 0,
};

fn config(k: i32) -> DsaTopkConfig {
    DsaTopkConfig {
        k,
        ..Default::default()
    }
}

fn plan_for(c: DsaTopkConfig, rows: i64, stride: i64) -> Result<*mut DsaTopkPlan, DsaStatus> {
    let mut plan = null_mut();
    match dsa_topk_plan_create_for(&c, rows, stride, &H100, &mut plan) {
        DsaStatus::Ok => Ok(plan),
        s => Err(s),
    }
}

/// A plan that is destroyed when dropped.
struct Plan(*mut DsaTopkPlan);

impl Drop for Plan {
    fn drop(&mut self) {
        assert_eq!(dsa_topk_plan_destroy(self.0), DsaStatus::Ok);
    }
}

fn plan(c: DsaTopkConfig, rows: i64, stride: i64) -> Plan {
    Plan(plan_for(c, rows, stride).expect("valid plan"))
}

fn topk_args() -> DsaTopkArgs {
    DsaTopkArgs {
        scores: addr(0x10000),
        lengths: addr(0x20000),
        row_starts: null(),
        out: addr_mut(0x30000),
        workspace: null_mut(),
        workspace_bytes: 0,
        offsets: null(),
        page_table: null(),
        rows_to_requests: null(),
        page_table_stride: 0,
        page_table_cols: 0,
        num_requests: 0,
    }
}

#[test]
fn version_and_abi() {
    assert_eq!(dsa_abi_version(), DSA_ABI_VERSION);
    // SAFETY: a static NUL-terminated string.
    let v = unsafe { CStr::from_ptr(dsa_version()) };
    assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn device_info_arguments() {
    let mut info = DsaDeviceInfo::default();
    expect(
        dsa_device_info(-1, &mut info),
        DsaStatus::InvalidArgument,
        "ordinal = -1",
    );
    expect(
        dsa_device_info(0, null_mut()),
        DsaStatus::InvalidArgument,
        "out is a null pointer",
    );
    if !gpu_present() {
        expect(
            dsa_device_info(0, &mut info),
            DsaStatus::NoDriver,
            "dsa_device_info: ",
        );
    }
}

#[test]
fn topk_plan_create_rejects_bad_configs() {
    let mut out = null_mut();
    let c = config(8);
    let e = |s, needle| expect(s, DsaStatus::InvalidArgument, needle);
    e(
        dsa_topk_plan_create_for(null(), 1, 8, &H100, &mut out),
        "config is a null pointer",
    );
    e(
        dsa_topk_plan_create_for(&c, 1, 8, null(), &mut out),
        "device is a null pointer",
    );
    e(
        dsa_topk_plan_create_for(&c, 1, 8, &H100, null_mut()),
        "plan_out is a null pointer",
    );
    let misaligned = 0x1004 as *mut *mut DsaTopkPlan;
    e(
        dsa_topk_plan_create_for(&c, 1, 8, &H100, misaligned),
        "8-byte aligned",
    );
    let cases: Vec<(DsaTopkConfig, i64, i64, &str)> = vec![
        (config(0), 1, 8, "k = 0 is out of range: 1..=4096"),
        (config(4097), 1, 8, "k = 4097 is out of range"),
        (config(-3), 1, 8, "k = 0 is out of range"),
        (c, -1, 8, "rows = -1 must be non-negative"),
        (c, 1, 0, "stride = 0"),
        (c, 1, -8, "stride = -8 must be non-negative"),
        (c, 1, 1 << 31, "stride = 2147483648"),
        (
            DsaTopkConfig { dtype: 3, ..c },
            1,
            8,
            "config.dtype cannot be FP8",
        ),
        (
            DsaTopkConfig { dtype: 9, ..c },
            1,
            8,
            "config.dtype = 9 is not a valid value",
        ),
        (
            DsaTopkConfig { tie_break: 2, ..c },
            1,
            8,
            "config.tie_break = 2",
        ),
        (DsaTopkConfig { order: -1, ..c }, 1, 8, "config.order = -1"),
        (
            DsaTopkConfig { transform: 3, ..c },
            1,
            8,
            "config.transform = 3",
        ),
        (
            DsaTopkConfig {
                transform: 2,
                page_size: 3,
                ..c
            },
            1,
            8,
            "page size 3",
        ),
        (
            DsaTopkConfig {
                transform: 2,
                page_size: -64,
                ..c
            },
            1,
            8,
            "config.page_size = -64",
        ),
        (
            DsaTopkConfig {
                transform: 2,
                page_size: 64,
                request_map: 5,
                ..c
            },
            1,
            8,
            "config.request_map = 5",
        ),
        (DsaTopkConfig { threads: 100, ..c }, 1, 8, "threads = 100"),
        (
            DsaTopkConfig { threads: -1, ..c },
            1,
            8,
            "config.threads = -1 is negative",
        ),
        (DsaTopkConfig { cluster: 3, ..c }, 1, 8, "cluster = 3"),
        (
            DsaTopkConfig { cluster: -2, ..c },
            1,
            8,
            "config.cluster = -2 is negative",
        ),
    ];
    for (cfg, rows, stride, needle) in cases {
        e(
            dsa_topk_plan_create_for(&cfg, rows, stride, &H100, &mut out),
            needle,
        );
        assert!(out.is_null(), "no plan on failure");
    }
    let bad_device = DsaDeviceInfo {
        sm_count: 0,
        ..H100
    };
    e(
        dsa_topk_plan_create_for(&c, 1, 8, &bad_device, &mut out),
        "device info sm_count = 0 must be > 0",
    );
    // Argument errors come before any device access.
    e(dsa_topk_plan_create(&config(0), 1, 8, 0, &mut out), "k = 0");
    e(
        dsa_topk_plan_create(&c, 1, 8, -1, &mut out),
        "device_ordinal = -1",
    );
    if !gpu_present() {
        expect(
            dsa_topk_plan_create(&c, 1, 8, 0, &mut out),
            DsaStatus::NoDriver,
            "CUDA driver",
        );
    }
}

#[test]
fn topk_plan_queries() {
    let p = plan(config(2048), 1, 131072);
    let mut bytes = 0usize;
    assert_eq!(
        dsa_topk_plan_workspace_bytes(p.0, &mut bytes),
        DsaStatus::Ok
    );
    let rust = dsa_topk::TopkPlan::new(
        dsa_topk::TopkConfig::new(2048),
        1,
        131072,
        &dsa_jit_cache::DeviceInfo::H100,
        dsa_topk::Tuning::default(),
    )
    .unwrap();
    assert_eq!(bytes, rust.workspace_bytes(), "the Rust plan's workspace");
    let mut shape = [0i64; 2];
    assert_eq!(
        dsa_topk_plan_output_shape(p.0, shape.as_mut_ptr()),
        DsaStatus::Ok
    );
    assert_eq!(shape, [1, 2048]);
    let e = |s, needle| expect(s, DsaStatus::InvalidArgument, needle);
    e(
        dsa_topk_plan_workspace_bytes(null(), &mut bytes),
        "plan is a null pointer",
    );
    e(
        dsa_topk_plan_workspace_bytes(p.0, null_mut()),
        "bytes_out is a null pointer",
    );
    e(
        dsa_topk_plan_output_shape(p.0, null_mut()),
        "shape_out is a null pointer",
    );
    e(
        dsa_topk_plan_output_shape(null(), shape.as_mut_ptr()),
        "plan is a null pointer",
    );
    e(
        dsa_topk_plan_prepare(null(), null_mut()),
        "plan is a null pointer",
    );
    assert_eq!(dsa_topk_plan_destroy(null_mut()), DsaStatus::Ok);
    let empty = plan(config(16), 0, 64);
    assert_eq!(
        dsa_topk_plan_output_shape(empty.0, shape.as_mut_ptr()),
        DsaStatus::Ok
    );
    assert_eq!(shape, [0, 16]);
}

#[test]
fn topk_run_rejects_bad_pointers_before_the_device() {
    let p = plan(config(16), 4, 1000);
    let bf16 = plan(
        DsaTopkConfig {
            dtype: 1,
            ..config(16)
        },
        4,
        1000,
    );
    let split = plan(config(16), 1, 1 << 20);
    let mut ws_need = 0usize;
    dsa_topk_plan_workspace_bytes(split.0, &mut ws_need);
    let ok = topk_args();
    let e = |plan: &Plan, a: DsaTopkArgs, needle: &str| {
        expect(
            dsa_topk_run(plan.0, &a, null_mut()),
            DsaStatus::InvalidArgument,
            needle,
        )
    };
    expect(
        dsa_topk_run(null(), &ok, null_mut()),
        DsaStatus::InvalidArgument,
        "plan is a null",
    );
    expect(
        dsa_topk_run(p.0, null(), null_mut()),
        DsaStatus::InvalidArgument,
        "args is a null",
    );
    e(
        &p,
        DsaTopkArgs {
            scores: null(),
            ..ok
        },
        "args.scores is a null device pointer",
    );
    e(
        &p,
        DsaTopkArgs {
            lengths: null(),
            ..ok
        },
        "args.lengths is a null device pointer",
    );
    e(
        &p,
        DsaTopkArgs {
            out: null_mut(),
            ..ok
        },
        "args.out is a null device pointer",
    );
    e(
        &p,
        DsaTopkArgs {
            scores: addr(0x10002),
            ..ok
        },
        "args.scores (0x10002) is not 4-byte aligned",
    );
    e(
        &p,
        DsaTopkArgs {
            lengths: addr(0x20001),
            ..ok
        },
        "args.lengths (0x20001) is not 4-byte",
    );
    e(
        &p,
        DsaTopkArgs {
            out: addr_mut(0x30006),
            ..ok
        },
        "args.out (0x30006) is not 4-byte",
    );
    e(
        &p,
        DsaTopkArgs {
            row_starts: addr(0x40002),
            ..ok
        },
        "args.row_starts (0x40002)",
    );
    e(
        &bf16,
        DsaTopkArgs {
            scores: addr(0x10001),
            ..ok
        },
        "is not 2-byte aligned",
    );
    let ws = DsaTopkArgs {
        workspace: addr_mut(0x100000),
        workspace_bytes: ws_need,
        ..ok
    };
    // Top-k plans that need a workspace check it (the cluster kernels need none today).
    if ws_need > 0 {
        e(&split, ok, "args.workspace is a null device pointer");
        e(
            &split,
            DsaTopkArgs {
                workspace: addr_mut(0x100008),
                ..ws
            },
            "not 16-byte aligned",
        );
        e(
            &split,
            DsaTopkArgs {
                workspace_bytes: ws_need - 16,
                ..ws
            },
            &format!("smaller than the {ws_need} bytes the plan needs"),
        );
    }
    let ragged = plan(
        DsaTopkConfig {
            transform: 1,
            ..config(16)
        },
        4,
        1000,
    );
    e(&ragged, ok, "args.offsets is a null device pointer");
    let paged_cfg = DsaTopkConfig {
        transform: 2,
        page_size: 64,
        ..config(16)
    };
    let paged = plan(paged_cfg, 4, 1000);
    let pt = DsaTopkArgs {
        page_table: addr(0x50000),
        rows_to_requests: addr(0x60000),
        page_table_stride: 16,
        page_table_cols: 16,
        num_requests: 4,
        ..ok
    };
    e(
        &paged,
        DsaTopkArgs {
            page_table: null(),
            ..pt
        },
        "args.page_table is a null",
    );
    e(
        &paged,
        DsaTopkArgs {
            rows_to_requests: addr(0x60002),
            ..pt
        },
        "args.rows_to_requests",
    );
    e(
        &paged,
        DsaTopkArgs {
            page_table_stride: -1,
            ..pt
        },
        "args.page_table_stride = -1",
    );
    e(
        &paged,
        DsaTopkArgs {
            num_requests: -4,
            ..pt
        },
        "args.num_requests = -4",
    );
    // Valid arguments reach the device (no driver here), for every transform.
    expect_reaches_device(|| dsa_topk_run(p.0, &ok, null_mut()));
    expect_reaches_device(|| dsa_topk_run(split.0, &ws, null_mut()));
    expect_reaches_device(|| dsa_topk_run(paged.0, &pt, null_mut()));
    expect_reaches_device(|| dsa_topk_plan_prepare(p.0, null_mut()));
}

fn hadamard(n: i64, rows: i64) -> DsaHadamardParams {
    DsaHadamardParams {
        n,
        rows,
        input_dtype: DsaDtype::Bf16 as i32,
        output_dtype: DsaDtype::Bf16 as i32,
        ..Default::default()
    }
}

#[test]
fn hadamard_rejects_bad_params_and_pointers() {
    let mut sizes = DsaHadamardSizes::default();
    let ok = hadamard(128, 4);
    assert_eq!(dsa_hadamard_sizes(&ok, &mut sizes), DsaStatus::Ok);
    assert_eq!(
        sizes,
        DsaHadamardSizes {
            input_len: 512,
            output_len: 512,
            scales_len: 0
        }
    );
    let fp8 = DsaHadamardParams {
        output_dtype: DsaDtype::Fp8E4m3 as i32,
        scale_group: DsaScaleGroup::Block128 as i32,
        n: 256,
        ..ok
    };
    assert_eq!(dsa_hadamard_sizes(&fp8, &mut sizes), DsaStatus::Ok);
    assert_eq!(sizes.scales_len, 8);
    let e = |s, needle| expect(s, DsaStatus::InvalidArgument, needle);
    e(
        dsa_hadamard_sizes(null(), &mut sizes),
        "params is a null pointer",
    );
    e(
        dsa_hadamard_sizes(&ok, null_mut()),
        "sizes_out is a null pointer",
    );
    for (p, needle) in [
        (hadamard(96, 4), "row length 96 is not supported"),
        (hadamard(0, 4), "row length 0"),
        (hadamard(-128, 4), "params.n = -128"),
        (hadamard(65536, 4), "row length 65536"),
        (hadamard(128, -1), "params.rows = -1"),
        (
            DsaHadamardParams {
                input_dtype: 3,
                ..ok
            },
            "params.input_dtype cannot be FP8",
        ),
        (
            DsaHadamardParams {
                output_dtype: 7,
                ..ok
            },
            "params.output_dtype = 7",
        ),
        (
            DsaHadamardParams {
                in_stride: 64,
                ..ok
            },
            "input stride 64 is smaller",
        ),
        (
            DsaHadamardParams {
                out_stride: 132,
                ..ok
            },
            "output stride 132 must be a multiple",
        ),
        (
            DsaHadamardParams {
                scale: f32::NAN,
                ..ok
            },
            "params.scale = NaN",
        ),
        (
            DsaHadamardParams { n: 64, ..fp8 },
            "block-128 FP8 scales need rows of at least 128",
        ),
        (
            DsaHadamardParams {
                scale_group: 2,
                ..fp8
            },
            "params.scale_group = 2",
        ),
    ] {
        e(dsa_hadamard_sizes(&p, &mut sizes), needle);
        e(
            dsa_hadamard_run(&p, addr(0x10000), addr_mut(0x20000), null_mut(), null_mut()),
            needle,
        );
    }
    let run = |p: &DsaHadamardParams, x: usize, y: usize, s: usize| {
        dsa_hadamard_run(p, addr(x), addr_mut(y), addr_mut(s), null_mut())
    };
    e(run(&ok, 0, 0x20000, 0), "input pointer is null");
    e(run(&ok, 0x10000, 0, 0), "output pointer is null");
    e(
        run(&ok, 0x10008, 0x20000, 0),
        "input pointer 0x10008 is not aligned to 16 bytes",
    );
    e(run(&ok, 0x10000, 0x10010, 0), "overlap");
    e(run(&fp8, 0x10000, 0x20000, 0), "scales pointer is null");
    e(
        run(&fp8, 0x10000, 0x20000, 0x30002),
        "scales pointer 0x30002",
    );
    e(
        dsa_hadamard_prepare(null(), null_mut()),
        "params is a null pointer",
    );
    expect_reaches_device(|| run(&ok, 0x10000, 0x20000, 0));
    expect_reaches_device(|| run(&ok, 0x10000, 0x10000, 0));
    expect_reaches_device(|| run(&fp8, 0x10000, 0x20000, 0x30000));
    expect_reaches_device(|| dsa_hadamard_prepare(&ok, null_mut()));
}

fn norm(dim: i64, rows: i64) -> DsaLayerNormParams {
    DsaLayerNormParams {
        dim,
        rows,
        input_dtype: DsaDtype::Bf16 as i32,
        output_dtype: DsaDtype::F32 as i32,
        eps: 1e-5,
        ..Default::default()
    }
}

#[test]
fn layernorm_rejects_bad_params_and_pointers() {
    let mut sizes = DsaLayerNormSizes::default();
    let ok = norm(128, 4);
    assert_eq!(dsa_layernorm_sizes(&ok, &mut sizes), DsaStatus::Ok);
    assert_eq!(
        sizes,
        DsaLayerNormSizes {
            input_len: 512,
            output_len: 512
        }
    );
    let e = |s, needle| expect(s, DsaStatus::InvalidArgument, needle);
    e(
        dsa_layernorm_sizes(null(), &mut sizes),
        "params is a null pointer",
    );
    e(
        dsa_layernorm_sizes(&ok, null_mut()),
        "sizes_out is a null pointer",
    );
    for (p, needle) in [
        (norm(0, 4), "row length 0 is not supported"),
        (norm(16385, 4), "row length 16385"),
        (norm(-1, 4), "params.dim = -1"),
        (norm(128, -4), "params.rows = -4"),
        (
            DsaLayerNormParams { eps: -1.0, ..ok },
            "eps -1 must be finite",
        ),
        (
            DsaLayerNormParams {
                eps: f32::INFINITY,
                ..ok
            },
            "eps inf",
        ),
        (DsaLayerNormParams { norm: 2, ..ok }, "params.norm = 2"),
        (
            DsaLayerNormParams {
                input_dtype: 3,
                ..ok
            },
            "params.input_dtype cannot be FP8",
        ),
        (
            DsaLayerNormParams {
                output_dtype: -1,
                ..ok
            },
            "params.output_dtype = -1",
        ),
        (
            DsaLayerNormParams {
                x_stride: 100,
                ..ok
            },
            "x stride 100 is smaller",
        ),
    ] {
        e(dsa_layernorm_sizes(&p, &mut sizes), needle);
    }
    let run = |p: &DsaLayerNormParams, x: usize, y: usize, g: usize, b: usize| {
        dsa_layernorm_run(p, addr(x), addr_mut(y), addr(g), addr(b), null_mut())
    };
    e(run(&ok, 0, 0x20000, 0, 0), "x pointer is null");
    e(run(&ok, 0x10000, 0, 0, 0), "y pointer is null");
    e(
        run(&ok, 0x10001, 0x20000, 0, 0),
        "x pointer 0x10001 is not aligned to 2 bytes",
    );
    e(
        run(&ok, 0x10000, 0x20002, 0, 0),
        "y pointer 0x20002 is not aligned to 4 bytes",
    );
    e(
        run(&ok, 0x10000, 0x20000, 0x30001, 0),
        "gamma pointer 0x30001",
    );
    e(
        run(&ok, 0x10000, 0x20000, 0, 0x40003),
        "beta pointer 0x40003",
    );
    e(run(&ok, 0x10000, 0x10000, 0, 0), "overlap");
    e(
        dsa_layernorm_prepare(null(), null_mut()),
        "params is a null pointer",
    );
    expect_reaches_device(|| run(&ok, 0x10000, 0x20000, 0x30000, 0));
    expect_reaches_device(|| run(&ok, 0x10002, 0x20004, 0, 0));
    expect_reaches_device(|| dsa_layernorm_prepare(&ok, null_mut()));
}

#[test]
fn errors_are_per_thread() {
    let p = plan(config(16), 4, 1000);
    let a = topk_args();
    let e = dsa_topk_run(
        p.0,
        &DsaTopkArgs {
            scores: null(),
            ..a
        },
        null_mut(),
    );
    assert_eq!(e, DsaStatus::InvalidArgument);
    let other = std::thread::spawn(last_error).join().unwrap();
    assert_eq!(other, "", "another thread has its own (empty) message");
    assert!(last_error().starts_with("dsa_topk_run: args.scores"));
}

#[test]
fn collective_rejects_bad_arguments_before_nccl() {
    use dsa_kernels::collective::*;
    let e = |s, needle| expect(s, DsaStatus::InvalidArgument, needle);
    let mut comm = null_mut();
    e(
        dsa_comm_borrow(null_mut(), 0, &mut comm),
        "nccl_comm is a null pointer",
    );
    e(
        dsa_comm_borrow(addr_mut(0x1000), 0, null_mut()),
        "comm_out is a null pointer",
    );
    e(
        dsa_comm_borrow(addr_mut(0x1000), -1, &mut comm),
        "device_ordinal = -1",
    );
    if !gpu_present() {
        let s = dsa_comm_borrow(addr_mut(0x1000), 0, &mut comm);
        expect(s, DsaStatus::NoDriver, "CUDA driver");
    }
    assert_eq!(dsa_comm_release(null_mut()), DsaStatus::Ok);
    let mut bytes = 0usize;
    assert_eq!(
        dsa_collective_verify_workspace_bytes(64, &mut bytes),
        DsaStatus::Ok
    );
    assert!(bytes >= 64 * 16, "{bytes}");
    e(
        dsa_collective_verify_workspace_bytes(0, &mut bytes),
        "rows (0)",
    );
    e(
        dsa_collective_verify_workspace_bytes(-1, &mut bytes),
        "rows = -1",
    );
    e(
        dsa_collective_verify_workspace_bytes(8, null_mut()),
        "bytes_out is a null",
    );
    let (mut rank, mut world) = (0, 0);
    e(
        dsa_comm_rank(null(), &mut rank, &mut world),
        "comm is a null pointer",
    );
    let bc = |p: usize, rows: i64, k: i64| {
        dsa_collective_broadcast(null(), addr_mut(p), rows, k, null_mut())
    };
    e(bc(0, 4, 8), "indices is a null device pointer");
    e(bc(0x1002, 4, 8), "indices (0x1002) is not 4-byte aligned");
    e(bc(0x1000, 0, 8), "rows (0) and k (8)");
    e(bc(0x1000, 4, -8), "k = -8");
    e(bc(0x1000, 4, 8), "comm is a null pointer");
    let vf = |ws: usize, n: usize| {
        dsa_collective_verify(null(), addr(0x1000), 4, 8, addr_mut(ws), n, null_mut())
    };
    e(
        vf(0x2004, bytes),
        "workspace (0x2004) is not 8-byte aligned",
    );
    e(vf(0x2000, 8), "verify workspace");
    let mut need4 = 0usize;
    dsa_collective_verify_workspace_bytes(4, &mut need4);
    e(vf(0x2000, need4), "comm is a null pointer");
    let mut mismatched = 0u32;
    let ck = |out: *mut u32| dsa_collective_check(null(), addr(0x2000), need4, 4, null_mut(), out);
    e(ck(null_mut()), "mismatched_rows_out is a null");
    e(ck(&mut mismatched), "comm is a null pointer");
}
