//! The `dsa` binary on a machine without a GPU (CI): argument errors, the GPU-less check, the
//! JIT cache commands, the tuning database report, and clean errors where a GPU is needed.
//! Tests that assume no GPU return early on a machine with a CUDA driver.

use dsa_jit_cache::tuning::{Entry, TuningDb};
use std::path::Path;
use std::process::{Command, Output};

fn dsa(args: &[&str], cache: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dsa"))
        .args(args)
        .env("DSA_CACHE_DIR", cache)
        .env_remove("DSA_TUNING_DB")
        .output()
        .expect("the dsa binary runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn has_gpu_driver() -> bool {
    dsa_jit_cache::libs::driver_available()
}

#[test]
fn argument_errors_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["frobnicate"][..],
        &["bench"],
        &["bench", "topk", "--rows", "many"],
        &["bench", "topk", "--dtype", "f64"],
        &["bench", "indexer", "--decode", "64"],
        &["bench", "indexer", "--only", "topk"],
        &["jit", "warm", "--threads", "-1"],
    ] {
        let o = dsa(args, dir.path());
        assert_eq!(o.status.code(), Some(2), "{args:?}: {:?}", text(&o));
        assert!(!text(&o).1.contains("panicked"), "{args:?}");
    }
    // Shapes and targets that parse but make no sense: checked before any GPU work.
    for (args, says) in [
        (&["bench", "topk", "--k", "0"][..], "out of range"),
        (&["bench", "hadamard", "--dims", "0"], "bad shape"),
        (
            &["bench", "indexer", "--decode", "0x65536"],
            "bad decode shape",
        ),
        (&["bench", "indexer", "--prefill", "0"], "bad prefill size"),
        (&["bench", "indexer", "--plot", "x.svg"], "draws no plot"),
        (&["jit", "warm", "--arch", "sm_x"], "not a GPU architecture"),
        (&["check", "--family", "nope"], "unknown kernel family"),
        (&["tune"], "name an op"),
    ] {
        let o = dsa(args, dir.path());
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.starts_with("dsa: error: ") && err.contains(says),
            "{args:?}: {err}"
        );
    }
    let o = dsa(&["--help"], dir.path());
    assert!(o.status.success());
    for cmd in ["check", "bench", "tune", "jit"] {
        assert!(text(&o).0.contains(cmd));
    }
}

#[test]
fn check_without_a_gpu_compiles_and_checks_the_references() {
    if has_gpu_driver() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let o = dsa(
        &["check", "--family", "collective,topk", "--arch", "sm_90a"],
        dir.path(),
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.starts_with("dsa check: no GPU ("), "{out}");
    assert!(
        out.contains("PASS  jit        collective: compile 2 variants for sm_90a"),
        "{out}"
    );
    assert!(out.contains("PASS  topk       reference = sort"), "{out}");
    assert!(
        out.contains("PASS  collective fingerprints flag exactly the changed rows"),
        "{out}"
    );
    assert!(out.trim_end().ends_with(" passed, 0 failed"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
}

#[test]
fn check_says_where_it_looked_for_nvrtc() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_dsa"))
        .args(["check", "--family", "collective", "--arch", "sm_90a"])
        .env("DSA_CACHE_DIR", dir.path())
        .env("DSA_NVRTC_PATH", "/nonexistent/libnvrtc.so.13")
        .env_remove("CUDA_HOME")
        .env_remove("CUDA_PATH")
        .output()
        .unwrap();
    let (out, err) = text(&o);
    if o.status.success() {
        return; // NVRTC is installed somewhere else on this machine.
    }
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(
        err.contains("NVRTC (libnvrtc.so.13) not found; searched:"),
        "{err}"
    );
    assert!(err.contains("/nonexistent/libnvrtc.so.13"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn jit_warm_ls_clear() {
    let dir = tempfile::tempdir().unwrap();
    let o = dsa(
        &["jit", "warm", "--arch", "sm_90a", "--family", "collective"],
        dir.path(),
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(
        out.contains("2 variant/target pairs (2 variants x 1 targets)"),
        "{out}"
    );
    assert!(out.contains("2 compiled, 0 already on disk"), "{out}");
    let o = dsa(
        &["jit", "warm", "--arch", "sm_90a", "--family", "collective"],
        dir.path(),
    );
    assert!(
        text(&o).0.contains("0 compiled, 2 already on disk"),
        "{:?}",
        text(&o)
    );

    let (out, _) = text(&dsa(&["jit", "ls"], dir.path()));
    assert!(out.contains("2 entries"), "{out}");
    assert!(
        out.contains("collective.verify[block=128]") && out.contains("sm_90a"),
        "{out}"
    );
    assert!(out.contains("tuning.json (none yet)"), "{out}");

    let (out, _) = text(&dsa(&["jit", "clear"], dir.path()));
    assert!(out.starts_with("removed 2 entries"), "{out}");
    assert!(
        text(&dsa(&["jit", "ls"], dir.path()))
            .0
            .contains("0 entries")
    );
}

#[test]
fn gpu_commands_without_a_gpu_fail_cleanly() {
    if has_gpu_driver() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["bench", "topk"][..],
        &["bench", "layernorm", "--json", "x.json"],
        &["bench", "collective-verify"],
        &["bench", "indexer", "--json", "x.json"],
        &["tune", "topk", "--rows", "1"],
    ] {
        let o = dsa(args, dir.path());
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {out}\n{err}");
        assert!(
            err.starts_with("dsa: error: no GPU: the CUDA driver"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn tuning_database_report_round_trip_and_corrupt_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tuning.json");
    let mut db = TuningDb::empty();
    let mut e = Entry::new(
        "NVIDIA H100 80GB HBM3",
        "sm_90a",
        "topk",
        "f32",
        "k2048.rows1.stride131072",
        [("threads", 1024)],
    );
    e.default_params = [("threads".to_string(), 512)].into();
    (e.default_us, e.tuned_us, e.shape) = (30.0, 20.0, "1x131072".into());
    db.upsert(e);
    db.save(&path).unwrap();
    assert_eq!(TuningDb::load(&path).unwrap().entries(), db.entries());

    let p = path.to_str().unwrap();
    let o = dsa(&["tune", "--report", "--db", p], dir.path());
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    for want in [
        "k2048.rows1.stride131072",
        "threads=512",
        "threads=1024",
        "1.50x",
        "1 of 1 buckets beat",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
    // The default path lives beside the JIT cache.
    let o = dsa(&["tune", "--report"], dir.path());
    assert!(
        text(&o).0.contains(&format!("{}", path.display())),
        "{:?}",
        text(&o)
    );

    std::fs::write(&path, "{ not json").unwrap();
    let o = dsa(&["tune", "--report", "--db", p], dir.path());
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("is not a tuning database"), "{err}");
}
