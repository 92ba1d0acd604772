//! The committed header `include/dsa_kernels.h` is what cbindgen generates from the sources.
//! `DSA_BLESS_HEADER=1 cargo test -p dsa-ffi --test header` rewrites it after an API change.

use std::path::Path;

#[test]
fn committed_header_is_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    if !dir.join("cbindgen.toml").is_file() {
        // A staged copy of this test on a machine without the source tree.
        eprintln!("skipped: no source tree at {}", dir.display());
        return;
    }
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("UTF-8 header");
    let path = dir.join("include/dsa_kernels.h");
    if std::env::var_os("DSA_BLESS_HEADER").is_some() {
        std::fs::write(&path, &generated).expect("writing the header");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is stale: run `DSA_BLESS_HEADER=1 cargo test -p dsa-ffi --test header` and commit it",
        path.display()
    );
}

#[test]
fn header_declares_every_entry_point_and_the_abi_version() {
    let header = include_str!("../include/dsa_kernels.h");
    assert!(header.contains(&format!(
        "#define DSA_ABI_VERSION {}",
        dsa_kernels::DSA_ABI_VERSION
    )));
    for f in [
        "dsa_abi_version",
        "dsa_version",
        "dsa_last_error",
        "dsa_status_name",
        "dsa_device_info",
        "dsa_topk_plan_create",
        "dsa_topk_plan_create_for",
        "dsa_topk_plan_destroy",
        "dsa_topk_plan_workspace_bytes",
        "dsa_topk_plan_output_shape",
        "dsa_topk_plan_prepare",
        "dsa_topk_run",
        "dsa_hadamard_sizes",
        "dsa_hadamard_prepare",
        "dsa_hadamard_run",
        "dsa_layernorm_sizes",
        "dsa_layernorm_prepare",
        "dsa_layernorm_run",
        "dsa_comm_borrow",
        "dsa_comm_release",
        "dsa_comm_rank",
        "dsa_collective_verify_workspace_bytes",
        "dsa_collective_broadcast",
        "dsa_collective_verify",
        "dsa_collective_check",
        "dsa_collective_fingerprint",
        "dsa_indexer_config_default",
        "dsa_indexer_prefill_plan_create",
        "dsa_indexer_prefill_plan_create_for",
        "dsa_indexer_decode_plan_create",
        "dsa_indexer_decode_plan_create_for",
        "dsa_indexer_plan_destroy",
        "dsa_indexer_plan_workspace_bytes",
        "dsa_indexer_plan_info",
        "dsa_indexer_plan_prepare",
        "dsa_indexer_prefill",
        "dsa_indexer_decode",
    ] {
        let declared = [' ', '*']
            .iter()
            .any(|c| header.contains(&format!("{c}{f}(")));
        assert!(declared, "{f} missing from the header");
    }
}
