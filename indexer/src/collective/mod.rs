//! # Cross-rank consistency of top-k indices over NCCL
//!
//! Under tensor parallelism every rank runs the indexer and must attend to the same keys. Our
//! top-k is deterministic, so ranks agree when their inputs agree; this layer offers both the
//! enforcement (broadcast rank 0's indices) and a cheap proof that none is needed (verify).
//!
//! ## Contract
//! - **Indices** ([`IndexRows`]): row-major `[rows, k]` i32 in device memory, `rows, k >= 1`.
//!   Order within a row is part of the contract: the same indices in another order differ.
//! - **Communicator** ([`Communicator`]): one rank of an NCCL communicator on one device, made
//!   from a [`UniqueId`] + rank + world size, from an engine's raw `ncclComm_t` (borrowed:
//!   never destroyed here), or over all local GPUs ([`Communicator::all_local`]). There is no
//!   default or global communicator: every operation names its communicator.
//! - **Broadcast** ([`Communicator::broadcast_from_rank0`]): in place, on the caller's stream.
//! - **Verify** ([`Communicator::verify`]): per-row 64-bit fingerprints ([`fingerprint`]), one
//!   `ncclMin` all-reduce over `[fp, !fp]` (16 B/row instead of 4·k), and a compare kernel
//!   writing per-row flags and the mismatch count into the caller's [`VerifyWorkspace`]. No
//!   host sync; [`Communicator::check`] reads the result when the caller chooses, and its
//!   strict mode turns a mismatch into [`CollectiveError::Mismatch`].
//! - **Policy** ([`ConsistencyPolicy`]): what the indexer does after top-k.
//! - **Graphs:** no operation allocates device memory or syncs the host, so all of them can be
//!   captured in a CUDA graph; workspace sizes come from [`WorkspaceLayout`] on the host.
//! - **Binding:** buffers registered with `ncclCommRegister` ([`RegisteredBuffer`]) carry their
//!   communicator's identity; using them with another is [`CollectiveError::ForeignBuffer`].
//! - **Failure:** NCCL errors are [`CollectiveError::Nccl`] with NCCL's message; a collective
//!   stalled past [`CommConfig::timeout`] ends in [`CollectiveError::Timeout`] and aborts a
//!   communicator we own (see [`comm`]'s failure model).
//! - **One GPU, many ranks:** [`simulate_ranks`] runs the verify kernels over N index buffers
//!   as if they were N ranks (MIN reduction on device), giving the exact differing rows.
//!
//! ## Example (not run: needs a GPU and libnccl)
//! ```no_run
//! use dsa_indexer::collective::*;
//! # fn main() -> Result<()> {
//! let ctx = cudarc::driver::CudaContext::new(0).unwrap();
//! let stream = ctx.new_stream().unwrap();
//! // 1. One rank per process: rank 0 makes the id, the engine sends it to the others.
//! let id = UniqueId::new()?;
//! let comm = Communicator::from_unique_id(&ctx, &id, 0, 1, CommConfig::default())?;
//! // 2. Buffers sized on the host, once.
//! let (rows, k) = (64, 2048);
//! let idx = stream.alloc_zeros::<i32>(rows * k).unwrap();
//! let ws_buf = stream.alloc_zeros::<u8>(WorkspaceLayout::verify(rows).total_bytes).unwrap();
//! let indices = IndexRows::from_slice(&idx, rows, k, &stream)?;
//! let ws = VerifyWorkspace::from_slice(&ws_buf, WorkspaceLayout::verify(rows), &stream)?;
//! // 3. Each step: enqueue; check when convenient.
//! comm.enforce(ConsistencyPolicy::Verify, &indices, Some(&ws), &stream)?;
//! let report = comm.check(&ws, &stream, true)?;
//! assert!(report.is_consistent());
//! # Ok(()) }
//! ```

pub mod bench;
pub mod comm;
mod connect;
pub mod error;
pub mod fingerprint;
pub mod kernels;
pub mod nccl;
pub mod ops;
pub mod policy;
pub mod registration;
pub mod report;
pub mod workspace;

pub use comm::{CommConfig, Communicator, UniqueId, validate_world};
pub use error::{CollectiveError, Result};
pub use kernels::{VerifyKernels, simulate_ranks};
pub use policy::ConsistencyPolicy;
pub use registration::RegisteredBuffer;
pub use report::VerifyReport;
pub use workspace::{IndexRows, VerifyWorkspace, WorkspaceLayout};
