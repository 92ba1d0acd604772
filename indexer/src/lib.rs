//! # dsa-indexer
//!
//! (crate doc in progress)

pub mod collective;
pub mod config;
pub mod cpu;
mod error;
pub mod key_path;
mod launch;
pub mod layout;
mod pipeline;
pub mod plan;
pub mod query_path;
pub mod scores;
pub mod timing;
pub mod variant;

pub use config::{DType, IndexerConfig, RopeStyle, ScaleFormat};
pub use error::{IndexerError, Result};
pub use layout::CacheLayout;
pub use pipeline::{DecodeArgs, Indexer, PrefillArgs, TokenArgs};
pub use plan::{DecodePlan, DecodeShape, PrefillPlan, PrefillShape, WorkspaceRegions};
