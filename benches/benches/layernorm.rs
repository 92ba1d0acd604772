//! LayerNorm and RMSNorm (bf16, gamma and beta) on the shapes, timed on the GPU.
//! `cargo bench -p dsa-benches --bench layernorm`.

use dsa_benches::workload::LayerNormWorkload;
use dsa_benches::{bench_workload, main_with, shapes};
use dsa_layernorm::{DType, Norm};

fn main() {
    main_with("layernorm", |c, gpu| {
        for (name, norm) in [("layernorm", Norm::LayerNorm), ("rmsnorm", Norm::RmsNorm)] {
            let mut group = c.benchmark_group(name);
            for shape in shapes::layernorm_default() {
                let w = LayerNormWorkload::new(gpu, shape, DType::Bf16, norm)?;
                bench_workload(&mut group, gpu, &w)?;
            }
            group.finish();
        }
        Ok(())
    });
}
