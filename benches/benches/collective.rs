//! The collective layer's verify kernels (fingerprint + compare, no NCCL) over rows of
//! k = 2048 indices, timed on the GPU. `cargo bench -p dsa-benches --bench collective`.

use dsa_benches::workload::VerifyKernelsWorkload;
use dsa_benches::{bench_workload, main_with, shapes};

fn main() {
    main_with("collective", |c, gpu| {
        let mut group = c.benchmark_group("collective/verify-kernels");
        for rows in shapes::COLLECTIVE_ROWS {
            let w = VerifyKernelsWorkload::new(gpu, rows, shapes::COLLECTIVE_K)?;
            bench_workload(&mut group, gpu, &w)?;
        }
        group.finish();
        Ok(())
    });
}
