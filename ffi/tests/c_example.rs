//! Builds `examples/topk.c` with the system C compiler (`$CC`, else `cc`) against the built
//! cdylib and runs it.
//!
//! The library is found at `$DSA_KERNELS_LIB` (a file), else beside this test's target folder
//! (`target/<profile>/deps/libdsa_kernels.so`), else in `../extra/` next to a staged test binary
//! (`.devbin/extra/libdsa_kernels.so`). The example and header are embedded in this binary, so a
//! staged copy needs no source tree.

use dsa_topk::{TopkConfig, cpu};
use std::path::{Path, PathBuf};
use std::process::Command;

const SOURCE: &str = include_str!("../examples/topk.c");
const HEADER: &str = include_str!("../include/dsa_kernels.h");
const LIB: &str = "libdsa_kernels.so";

fn library() -> PathBuf {
    if let Some(p) = std::env::var_os("DSA_KERNELS_LIB") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().expect("test folder");
    // target/<profile>/deps/ holds the copy built with the tests (the one in target/<profile>/
    // is refreshed only by `cargo build`).
    [
        dir.join(LIB),
        dir.join("..").join(LIB),
        dir.join("../extra").join(LIB),
    ]
    .into_iter()
    .find(|p| p.is_file())
    .unwrap_or_else(|| {
        panic!(
            "{LIB} not found beside {}; set DSA_KERNELS_LIB",
            dir.display()
        )
    })
}

/// Compile the example in a temporary folder; returns (folder guard, executable).
fn build() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    std::fs::write(dir.join("topk.c"), SOURCE).unwrap();
    std::fs::write(dir.join("dsa_kernels.h"), HEADER).unwrap();
    let lib = std::fs::canonicalize(library()).expect("library path");
    let libdir = lib.parent().unwrap();
    let exe = dir.join("topk");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O1"])
        .arg("-I")
        .arg(dir)
        .arg(dir.join("topk.c"))
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", libdir.display()))
        .args(["-ldl", "-o"])
        .arg(&exe)
        .output()
        .unwrap_or_else(|e| panic!("running the C compiler `{cc}`: {e}"));
    assert!(
        out.status.success(),
        "compiling examples/topk.c failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (tmp, exe)
}

fn run(exe: &Path) -> String {
    let out = Command::new(exe).output().expect("running the example");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the example failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// On a machine without a GPU the example checks the ABI, the error path and host planning,
/// then reports that there is no GPU; with one, its GPU path must agree with its reference.
#[test]
fn c_example_builds_links_and_runs() {
    let (_tmp, exe) = build();
    let out = run(&exe);
    assert!(out.contains("abi ok"), "{out}");
    assert!(
        out.contains(
            "k = 0: DSA_STATUS_INVALID_ARGUMENT: dsa_topk_plan_create_for: k = 0 is out of range"
        ),
        "{out}"
    );
    assert!(out.contains("plan for an H100: output [3, 64]"), "{out}");
    assert!(
        out.contains(
            "indexer decode plan for an H100: logits [64, 65536], indices [64, 2048], workspace "
        ),
        "{out}"
    );
    assert!(
        out.contains("run with null pointers: DSA_STATUS_INVALID_ARGUMENT: dsa_topk_run: args.scores is a null device pointer"),
        "{out}"
    );
    assert!(
        out.contains("no GPU: ") || out.contains("GPU: 3 rows match"),
        "{out}"
    );
}

/// The example's GPU rows equal the Rust CPU reference of the same inputs.
#[test]
#[ignore = "needs a CUDA GPU"]
fn c_example_gpu_rows_match_the_cpu_reference() {
    let (_tmp, exe) = build();
    let out = run(&exe);
    assert!(out.contains("GPU: 3 rows match"), "{out}");
    // The example's inputs (see score_of and row_length in topk.c).
    let (rows, stride, k) = (3usize, 131072usize, 64usize);
    let scores: Vec<f32> = (0..rows)
        .flat_map(|r| (0..stride).map(move |j| ((j * 7919 + r * 104729) % 1000) as f32))
        .collect();
    let lengths = [131072, 5000, 10];
    let input = cpu::Inputs {
        scores: &scores,
        stride,
        lengths: &lengths,
        row_starts: None,
    };
    let want = cpu::topk(&input, &TopkConfig::new(k), &cpu::TransformData::None);
    for r in 0..rows {
        let line = out
            .lines()
            .find_map(|l| l.strip_prefix(&format!("row {r}:")))
            .unwrap_or_else(|| panic!("row {r} missing:\n{out}"));
        let got: Vec<i32> = line
            .split_whitespace()
            .map(|t| t.parse().unwrap())
            .collect();
        assert_eq!(got, want[r * k..][..k], "row {r}");
    }
}
