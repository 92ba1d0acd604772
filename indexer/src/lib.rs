//! # dsa-indexer
//!
//! (crate doc in progress)

pub mod collective;
pub mod config;
pub mod error;
pub mod variant;
