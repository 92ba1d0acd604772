//! The floating-point element types the kernels read and write, shared by every kernel crate.

use cudarc::driver::DeviceRepr;
use std::fmt;

/// A floating-point element type: bf16, f16 or f32. Its [`Display`](fmt::Display) (`bf16`,
/// `f16`, `f32`) is the name used in variant ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// bfloat16.
    Bf16,
    /// IEEE half.
    F16,
    /// IEEE single.
    F32,
}

impl DType {
    /// Every dtype, in a fixed order.
    pub const ALL: [DType; 3] = [DType::Bf16, DType::F16, DType::F32];

    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::Bf16 | DType::F16 => 2,
            DType::F32 => 4,
        }
    }

    /// Elements per 16-byte vector.
    pub fn per_vector(self) -> usize {
        16 / self.size()
    }

    /// The prelude's storage type for this dtype (`dsa::bf16`, `dsa::f16`, `float`).
    pub fn cuda_type(self) -> &'static str {
        match self {
            DType::Bf16 => "dsa::bf16",
            DType::F16 => "dsa::f16",
            DType::F32 => "float",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DType::Bf16 => "bf16",
            DType::F16 => "f16",
            DType::F32 => "f32",
        })
    }
}

/// A host element type that typed (cudarc buffer) APIs accept, with its [`DType`].
pub trait Element: DeviceRepr {
    /// The matching [`DType`].
    const DTYPE: DType;
}

impl Element for f32 {
    const DTYPE: DType = DType::F32;
}
impl Element for half::bf16 {
    const DTYPE: DType = DType::Bf16;
}
impl Element for half::f16 {
    const DTYPE: DType = DType::F16;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sizes_and_storage_types() {
        let names: Vec<String> = DType::ALL.iter().map(|d| d.to_string()).collect();
        assert_eq!(names, ["bf16", "f16", "f32"]);
        let sizes: Vec<usize> = DType::ALL.iter().map(|d| d.size()).collect();
        assert_eq!(sizes, [2, 2, 4]);
        assert_eq!(DType::F32.per_vector(), 4);
        assert_eq!(DType::Bf16.per_vector(), 8);
        assert_eq!(DType::F16.cuda_type(), "dsa::f16");
    }
}
