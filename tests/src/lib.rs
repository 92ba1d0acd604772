//! Workspace-wide checks. Linking every kernel crate here puts all their variant families in
//! the registry that `tests/all_variants.rs` walks.

// Referencing each crate keeps it linked, so its `inventory` registrations are present.
pub use dsa_hadamard as hadamard;
pub use dsa_indexer as indexer;
pub use dsa_layernorm as layernorm;
pub use dsa_topk as topk;
