//! The planner reads the tuning database (CPU only): an entry for this GPU and shape bucket
//! fills the knobs a caller leaves open; explicit knobs, other buckets and other GPUs are not
//! affected. One test per binary: the process-wide database is loaded once, from the env var
//! set at its start.

use dsa_jit_cache::DeviceInfo;
use dsa_jit_cache::tuning::{Entry, TUNING_DB_ENV, TuningDb};
use dsa_topk::{ScoreDtype, TopkConfig, TopkPlan, Tuning};

#[test]
fn a_tuned_entry_is_picked_up_by_the_planner() {
    let dev = DeviceInfo::H100;
    let (rows, stride) = (64, 131072);
    let heuristic = TopkPlan::with_db(
        TopkConfig::new(2048),
        rows,
        stride,
        &dev,
        Tuning::default(),
        &TuningDb::empty(),
    )
    .unwrap();
    assert_eq!(heuristic.variant().threads, 1024);

    let mut db = TuningDb::empty();
    db.upsert(Entry::topk(
        "NVIDIA H100 80GB HBM3",
        "sm_90a",
        "f32",
        (2048, rows, stride),
        [("threads", 256)],
    ));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tuning.json");
    db.save(&path).unwrap();
    // SAFETY: the only test of this binary sets the variable before anything reads it.
    unsafe { std::env::set_var(TUNING_DB_ENV, &path) };

    let plan = |config: TopkConfig, rows, tuning| {
        TopkPlan::new(config, rows, stride, &dev, tuning).unwrap()
    };
    let tuned = plan(TopkConfig::new(2048), rows, Tuning::default());
    assert_eq!(tuned.variant().threads, 256);
    // Same bucket (rows 33..=64 round up to 64), explicit knobs win, other dtype is untuned.
    assert_eq!(
        plan(TopkConfig::new(2048), 40, Tuning::default())
            .variant()
            .threads,
        256
    );
    let explicit = Tuning {
        threads: Some(512),
        ..Tuning::default()
    };
    assert_eq!(
        plan(TopkConfig::new(2048), rows, explicit)
            .variant()
            .threads,
        512
    );
    let bf16 = plan(
        TopkConfig::new(2048).dtype(ScoreDtype::Bf16),
        rows,
        Tuning::default(),
    );
    assert_eq!(bf16.variant().threads, 1024);
    // Another GPU model does not see the entry.
    let other = DeviceInfo {
        name_hash: 1,
        ..dev
    };
    let p = TopkPlan::new(
        TopkConfig::new(2048),
        rows,
        stride,
        &other,
        Tuning::default(),
    )
    .unwrap();
    assert_eq!(p.variant().threads, 1024);
}
