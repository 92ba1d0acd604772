//! Host helpers for the kernel crates' GPU tests (feature `test-support`, enabled from their
//! `dev-dependencies`): element bytes of a [`DType`] and the relative error against a float64
//! reference.

use crate::DType;
use half::{bf16, f16};

/// Encode f32 values as `dtype` little-endian bytes (rounded to nearest even).
pub fn to_bytes(v: &[f32], dtype: DType) -> Vec<u8> {
    match dtype {
        DType::F32 => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        DType::Bf16 => v
            .iter()
            .flat_map(|&x| bf16::from_f32(x).to_le_bytes())
            .collect(),
        DType::F16 => v
            .iter()
            .flat_map(|&x| f16::from_f32(x).to_le_bytes())
            .collect(),
    }
}

/// Decode `dtype` little-endian bytes to f32 (exact).
pub fn from_bytes(b: &[u8], dtype: DType) -> Vec<f32> {
    match dtype {
        DType::F32 => b
            .chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        DType::Bf16 => b
            .chunks(2)
            .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        DType::F16 => b
            .chunks(2)
            .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
    }
}

/// ‖out − reference‖ / ‖reference‖ (Euclidean norms in f64; a zero reference norm counts as
/// 1e-300).
pub fn rel_err(out: &[f32], reference: &[f64]) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for (&o, &r) in out.iter().zip(reference) {
        num += (o as f64 - r).powi(2);
        den += r * r;
    }
    (num / den.max(1e-300)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_and_rel_err() {
        let v = [1.0f32, -2.5, 0.125];
        for d in DType::ALL {
            let b = to_bytes(&v, d);
            assert_eq!(b.len(), v.len() * d.size());
            assert_eq!(from_bytes(&b, d), v);
        }
        assert_eq!(rel_err(&[3.0, 4.0], &[3.0, 4.0]), 0.0);
        assert_eq!(rel_err(&[0.0, 0.0], &[3.0, 4.0]), 1.0);
    }
}
