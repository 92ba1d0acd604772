//! # dsa-indexer
//!
//! The DSA lightning indexer and its NCCL collective layer ([`collective`]): cross-rank
//! consistency of the selected top-k indices under tensor parallelism.

pub mod collective;
