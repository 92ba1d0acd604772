//! A tiny kernel family for the cache's own tests.
#![allow(dead_code)] // each test binary uses a different part

use dsa_jit_cache::{KernelSpec, KernelVariant};
use std::fmt;

pub const AXPY_SRC: &str = r#"
template <typename T>
__device__ void axpy(float a, const T* x, T* y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = dsa::from_float<T>(a * dsa::to_float(x[i]) + dsa::to_float(y[i]) + SALT);
}
extern "C" __global__ void DSA_ENTRY_MAIN(float a, const SCALAR* x, SCALAR* y, int n) {
  axpy<SCALAR>(a, x, y, n);
}
"#;

/// `y = a*x + y + salt`; `salt` makes distinct cache keys on demand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Axpy {
    pub bf16: bool,
    pub salt: u32,
}

impl fmt::Display for Axpy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = if self.bf16 { "bf16" } else { "f32" };
        write!(f, "test.axpy[{t},salt={}]", self.salt)
    }
}

impl KernelVariant for Axpy {
    fn spec(&self) -> KernelSpec {
        let scalar = if self.bf16 { "dsa::bf16" } else { "float" };
        KernelSpec::new(
            "test",
            self.to_string(),
            AXPY_SRC,
            vec![
                ("SCALAR".into(), scalar.into()),
                ("SALT".into(), format!("{}.0f", self.salt)),
            ],
            &["MAIN"],
        )
    }
}
