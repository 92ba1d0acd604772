//! Host-side planning and pointer validation (no GPU).

use dsa_layernorm::{DType, LayerNorm, LayerNormConfig, LayerNormError, Norm, Team};

fn cfg(dim: usize, rows: usize) -> LayerNormConfig {
    LayerNormConfig::new(dim, rows, DType::Bf16, DType::Bf16)
}

#[test]
fn dims_eps_strides_rows() {
    for dim in [0, 16385] {
        assert!(matches!(
            LayerNorm::plan(cfg(dim, 1)),
            Err(LayerNormError::BadDim { .. })
        ));
    }
    for eps in [-1.0, f32::NAN, f32::INFINITY] {
        let err = LayerNorm::plan(cfg(128, 1).with_eps(eps)).unwrap_err();
        assert!(matches!(err, LayerNormError::BadEps { .. }), "{eps}");
    }
    let err = LayerNorm::plan(cfg(128, 1).with_strides(128, 100)).unwrap_err();
    assert!(matches!(
        err,
        LayerNormError::StrideTooSmall { which: "y", .. }
    ));
    let err = LayerNorm::plan(cfg(128, i32::MAX as usize + 1)).unwrap_err();
    assert!(matches!(err, LayerNormError::TooManyRows { .. }));
    for dim in [1, 2, 7, 111, 128, 1000, 7168, 16384] {
        LayerNorm::plan(cfg(dim, 3)).unwrap();
    }
}

#[test]
fn kernel_choice_follows_dim_and_alignment() {
    let (x, y) = (0x10_0000u64, 0x20_0000u64);
    // Indexer shape: vector, warp team of 4 lanes x 4 chunks (8 rows per warp, 32 per block).
    let p = LayerNorm::plan(cfg(128, 1000)).unwrap();
    let v = p.variant_for(x, y, 0, 0);
    assert!(v.vector && v.team == Team::Warp && v.chunks == 4);
    assert_eq!(p.launch_config(x, y, 0, 0).grid_dim, (32, 1, 1));
    // Rows of fewer than four chunks: one slot per chunk (rounded to a power of two).
    let small = LayerNorm::plan(cfg(16, 1000))
        .unwrap()
        .variant_for(x, y, 0, 0);
    assert!(small.vector && small.chunks == 2);
    let one = LayerNorm::plan(cfg(8, 1000))
        .unwrap()
        .variant_for(x, y, 0, 0);
    assert!(one.vector && one.chunks == 1);
    // Misaligned x or gamma falls back to the scalar kernel (not an error).
    assert!(!p.variant_for(x + 2, y, 0, 0).vector);
    assert!(!p.variant_for(x, y, x + 8, 0).vector);
    p.check_pointers(x + 2, y, 0, 0).unwrap();
    // Dim 111 and odd strides: scalar only.
    let odd = LayerNorm::plan(cfg(111, 5)).unwrap();
    assert_eq!(odd.variants().len(), 1);
    assert!(!odd.variant_for(x, y, 0, 0).vector);
    let strided = LayerNorm::plan(cfg(128, 5).with_strides(130, 128)).unwrap();
    assert!(!strided.variant_for(x, y, 0, 0).vector);
    // DeepSeek hidden size: a CTA of 224 threads per row.
    let big = LayerNorm::plan(cfg(7168, 64)).unwrap();
    let v = big.variant_for(x, y, 0, 0);
    assert!(v.vector && v.team == Team::Cta && v.chunks == 4);
    let lc = big.launch_config(x, y, 0, 0);
    assert_eq!((lc.grid_dim.0, lc.block_dim.0), (64, 224));
    // Scalar 16384: 1024 threads x 16 elements.
    let lc = LayerNorm::plan(cfg(16383, 2))
        .unwrap()
        .launch_config(x, y, 0, 0);
    assert_eq!(lc.block_dim.0, 1024);
    // f32 vector dim 16384: 4096 chunks of 4, 1024 threads x 4.
    let f = LayerNorm::plan(LayerNormConfig::new(16384, 2, DType::F32, DType::F32)).unwrap();
    assert_eq!(f.launch_config(x, y, 0, 0).block_dim.0, 1024);
    assert!(f.variant_for(x, y, 0, 0).vector);
}

#[test]
fn pointers_are_checked() {
    let p = LayerNorm::plan(cfg(128, 4).with_norm(Norm::RmsNorm)).unwrap();
    let (x, y) = (0x10_0000u64, 0x20_0000u64);
    p.check_pointers(x, y, 0, 0).unwrap();
    assert!(matches!(
        p.check_pointers(0, y, 0, 0),
        Err(LayerNormError::NullPointer { which: "x" })
    ));
    assert!(matches!(
        p.check_pointers(x, 0, 0, 0),
        Err(LayerNormError::NullPointer { which: "y" })
    ));
    let err = p.check_pointers(x + 1, y, 0, 0).unwrap_err();
    assert!(matches!(
        err,
        LayerNormError::Misaligned {
            which: "x",
            align: 2,
            ..
        }
    ));
    let err = p.check_pointers(x, y, x + 3, 0).unwrap_err();
    assert!(matches!(
        err,
        LayerNormError::Misaligned { which: "gamma", .. }
    ));
    // In place is fine; partial overlap or a wider output over the input is not.
    p.check_pointers(x, x, 0, 0).unwrap();
    assert!(matches!(
        p.check_pointers(x, x + 64, 0, 0),
        Err(LayerNormError::Overlap)
    ));
    let wide = LayerNorm::plan(LayerNormConfig::new(128, 4, DType::Bf16, DType::F32)).unwrap();
    assert!(matches!(
        wide.check_pointers(x, x, 0, 0),
        Err(LayerNormError::Overlap)
    ));
    assert_eq!(wide.bytes_moved(), 4 * 128 * 6);
}
