//! Host-side planning and pointer validation (no GPU).

use dsa_hadamard::{DType, Hadamard, HadamardConfig, HadamardError, Output, ScaleGroup};

const BF16: Output = Output::Float(DType::Bf16);
const BLOCK: Output = Output::Fp8 {
    group: ScaleGroup::Block128,
};

fn plan(cfg: HadamardConfig) -> Result<Hadamard, HadamardError> {
    Hadamard::plan(cfg)
}

#[test]
fn dims_must_be_powers_of_two_in_range() {
    for n in [0, 1, 3, 96, 12, 65536] {
        let err = plan(HadamardConfig::new(n, 4, DType::Bf16, BF16)).unwrap_err();
        assert!(
            matches!(err, HadamardError::BadDim { n: m } if m == n),
            "{n}: {err}"
        );
    }
    for log_n in 1..=15 {
        plan(HadamardConfig::new(1 << log_n, 4, DType::F32, BF16)).unwrap();
    }
}

#[test]
fn block_scales_need_128_elements() {
    let err = plan(HadamardConfig::new(64, 4, DType::Bf16, BLOCK)).unwrap_err();
    assert!(matches!(err, HadamardError::GroupLargerThanRow { n: 64 }));
    let p = plan(HadamardConfig::new(512, 3, DType::Bf16, BLOCK)).unwrap();
    assert_eq!(p.scales_len(), 3 * 4);
    let row = Output::Fp8 {
        group: ScaleGroup::Row,
    };
    assert_eq!(
        plan(HadamardConfig::new(64, 3, DType::F16, row))
            .unwrap()
            .scales_len(),
        3
    );
}

#[test]
fn strides_are_checked() {
    let cfg = HadamardConfig::new(128, 4, DType::Bf16, BF16);
    let err = plan(cfg.with_strides(127, 128)).unwrap_err();
    assert!(matches!(
        err,
        HadamardError::StrideTooSmall { which: "input", .. }
    ));
    let err = plan(cfg.with_strides(128, 130)).unwrap_err();
    assert!(matches!(
        err,
        HadamardError::StrideMisaligned {
            which: "output",
            multiple: 8,
            ..
        }
    ));
    let p = plan(cfg.with_strides(136, 256)).unwrap();
    assert_eq!(p.input_len(), 3 * 136 + 128);
    assert_eq!(p.output_len(), 3 * 256 + 128);
    // f32 input: 4-element vectors; n = 2: 2-element vectors.
    plan(HadamardConfig::new(128, 4, DType::F32, BF16).with_strides(132, 132)).unwrap();
    plan(HadamardConfig::new(2, 4, DType::Bf16, BF16).with_strides(6, 2)).unwrap();
}

#[test]
fn pointers_are_checked() {
    let p = plan(HadamardConfig::new(128, 4, DType::Bf16, BF16)).unwrap();
    let (x, y) = (0x10_0000u64, 0x20_0000u64);
    p.check_pointers(x, y, 0).unwrap();
    let err = p.check_pointers(0, y, 0).unwrap_err();
    assert!(matches!(err, HadamardError::NullPointer { which: "input" }));
    let err = p.check_pointers(x, 0, 0).unwrap_err();
    assert!(matches!(
        err,
        HadamardError::NullPointer { which: "output" }
    ));
    let err = p.check_pointers(x + 8, y, 0).unwrap_err();
    assert!(matches!(
        err,
        HadamardError::Misaligned {
            which: "input",
            align: 16,
            ..
        }
    ));
    let err = p.check_pointers(x, y + 2, 0).unwrap_err();
    assert!(matches!(
        err,
        HadamardError::Misaligned {
            which: "output",
            ..
        }
    ));
    // FP8 needs a scales pointer.
    let q = plan(HadamardConfig::new(128, 4, DType::Bf16, BLOCK)).unwrap();
    let err = q.check_pointers(x, y, 0).unwrap_err();
    assert!(matches!(
        err,
        HadamardError::NullPointer { which: "scales" }
    ));
    let err = q.check_pointers(x, y, 0x30_0002).unwrap_err();
    assert!(matches!(
        err,
        HadamardError::Misaligned {
            which: "scales",
            ..
        }
    ));
    q.check_pointers(x, y + 8, 0x30_0004).unwrap();
}

#[test]
fn overlap_is_rejected_unless_exactly_in_place() {
    let p = plan(HadamardConfig::new(128, 4, DType::Bf16, BF16)).unwrap();
    let x = 0x10_0000u64;
    p.check_pointers(x, x, 0).unwrap();
    let err = p.check_pointers(x, x + 256, 0).unwrap_err();
    assert!(matches!(err, HadamardError::Overlap));
    // Directly after the input's last byte is fine.
    p.check_pointers(x, x + 4 * 128 * 2, 0).unwrap();
    // Different element sizes cannot share a buffer.
    let wide = plan(HadamardConfig::new(
        128,
        4,
        DType::Bf16,
        Output::Float(DType::F32),
    ))
    .unwrap();
    assert!(matches!(
        wide.check_pointers(x, x, 0),
        Err(HadamardError::Overlap)
    ));
    let strided =
        plan(HadamardConfig::new(128, 4, DType::Bf16, BF16).with_strides(256, 128)).unwrap();
    assert!(matches!(
        strided.check_pointers(x, x, 0),
        Err(HadamardError::Overlap)
    ));
}

#[test]
fn launch_shape_and_bytes() {
    let p = plan(HadamardConfig::new(128, 1000, DType::Bf16, BF16)).unwrap();
    // 16 lanes per row, 2 rows per warp, 4 warps per block.
    let lc = p.launch_config(p.variant(), 0);
    assert_eq!(lc.block_dim, (128, 1, 1));
    assert_eq!(lc.grid_dim, (125, 1, 1));
    assert_eq!(p.bytes_moved(), 1000 * 128 * 4);
    // Long rows: persistent blocks, no more than the GPU holds nor than rows. An f32 stage of
    // 32768 elements does not fit next to the f32 row; a bf16 one does.
    let big = plan(HadamardConfig::new(32768, 7, DType::F32, BF16)).unwrap();
    assert!(!big.variant().stage);
    let lc = big.launch_config(big.variant(), 132);
    assert_eq!(lc.grid_dim, (7, 1, 1));
    assert_eq!(lc.block_dim, (1024, 1, 1));
    assert_eq!(lc.shared_mem_bytes, 32768 * 4 + 128);
    let big = plan(HadamardConfig::new(32768, 4096, DType::Bf16, BF16)).unwrap();
    assert!(big.variant().stage);
    let lc = big.launch_config(big.variant(), 132);
    assert_eq!(lc.grid_dim, (132, 1, 1));
    assert_eq!(lc.shared_mem_bytes, 32768 * 6 + 128);
    let unstaged = big.launch_config(big.variant().unstaged(), 132);
    assert_eq!(unstaged.shared_mem_bytes, 32768 * 4 + 128);
    let mid = plan(HadamardConfig::new(2048, 4096, DType::F16, BF16)).unwrap();
    let lc = mid.launch_config(mid.variant(), 132 * 16);
    assert_eq!((lc.grid_dim, lc.block_dim), ((2112, 1, 1), (64, 1, 1)));
    let fp8 = plan(HadamardConfig::new(256, 10, DType::Bf16, BLOCK)).unwrap();
    assert_eq!(fp8.bytes_moved(), 10 * 256 * 3 + 10 * 2 * 4);
    let none = plan(HadamardConfig::new(256, 0, DType::Bf16, BLOCK)).unwrap();
    assert_eq!(none.launch_config(none.variant(), 0).grid_dim, (0, 1, 1));
    assert_eq!(none.input_len(), 0);
}
