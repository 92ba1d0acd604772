//! Top-k on the shapes (decode, 1024x8192, causal prefill; k = 2048, f32 scores),
//! timed on the GPU. `cargo bench -p dsa-benches --bench topk`.

use dsa_benches::workload::TopkWorkload;
use dsa_benches::{bench_workload, main_with, shapes};
use dsa_topk::{ScoreDtype, Transform, Tuning};

fn main() {
    main_with("topk", |c, gpu| {
        let mut group = c.benchmark_group("topk");
        for shape in shapes::topk_default() {
            let w = TopkWorkload::new(
                gpu,
                shape,
                ScoreDtype::F32,
                Transform::None,
                Tuning::default(),
            )?;
            bench_workload(&mut group, gpu, &w)?;
        }
        group.finish();
        Ok(())
    });
}
