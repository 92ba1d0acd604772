//! Hadamard transform on the shapes (bf16 in; bf16 out and fused FP8 with block-128
//! scales), timed on the GPU. `cargo bench -p dsa-benches --bench hadamard`.

use dsa_benches::workload::HadamardWorkload;
use dsa_benches::{bench_workload, main_with, shapes};
use dsa_hadamard::{DType, Output, ScaleGroup};

fn main() {
    main_with("hadamard", |c, gpu| {
        let outputs = [
            ("bf16", Output::Float(DType::Bf16)),
            (
                "fp8",
                Output::Fp8 {
                    group: ScaleGroup::Block128,
                },
            ),
        ];
        for (name, output) in outputs {
            let mut group = c.benchmark_group(format!("hadamard/bf16->{name}"));
            for shape in shapes::hadamard_default() {
                let w = HadamardWorkload::new(gpu, shape, DType::Bf16, output)?;
                bench_workload(&mut group, gpu, &w)?;
            }
            group.finish();
        }
        Ok(())
    });
}
