//! The f64 reference of the whole pipeline: the crate's contract implemented literally, with
//! exact FP8 e4m3 emulation (bit-exact with the device prelude's encoder). It is the test
//! oracle and runs on any host.
//!
//! Every stage takes what the device stage takes (inputs already rounded to the input dtype,
//! as f32) and returns what it writes, so the GPU tests can compare stage by stage and feed a
//! stage the GPU's own outputs of the previous one.

mod cache;
mod fp8;
mod paths;
mod pipeline;
mod scores;

pub use cache::PagedCache;
pub use fp8::{Quantized, fp8_decode, fp8_encode, quantize_row};
pub use paths::{TokenInputs, hadamard, key_path, layer_norm, query_path, rope};
pub use pipeline::{DecodeInputs, Outputs, PrefillInputs, decode, prefill};
pub use scores::{KeyRows, PagedKeys, scores_paged, scores_ragged};
