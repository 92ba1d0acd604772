//! What the indexer does to keep ranks consistent after top-k.

use std::fmt;
use std::str::FromStr;

/// How the indexer makes every tensor-parallel rank attend to the same keys.
///
/// | policy | cost per step | indices after the step |
/// | --- | --- | --- |
/// | `None` | nothing | each rank's own |
/// | `Verify` | fingerprint + one all-reduce of 16 B/row | each rank's own; disagreement counted on device |
/// | `Broadcast` | one broadcast of 4·k B/row | rank 0's |
/// | `VerifyThenBroadcast` | both | rank 0's; the count says whether the broadcast was needed |
///
/// The mismatch count of `Verify` and `VerifyThenBroadcast` stays on the device until the
/// caller reads it with [`super::Communicator::check`]; the step itself never syncs the host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ConsistencyPolicy {
    /// Trust determinism: no collective at all (also what a world size of 1 needs).
    #[default]
    None,
    /// Prove agreement: per-row fingerprints compared across ranks.
    Verify,
    /// Enforce agreement: every rank takes rank 0's indices.
    Broadcast,
    /// Measure disagreement on the indices as computed, then enforce agreement (rollout mode:
    /// correct output plus evidence of whether the broadcast can be dropped).
    VerifyThenBroadcast,
}

impl ConsistencyPolicy {
    /// Every policy, in declaration order.
    pub const ALL: [ConsistencyPolicy; 4] = [
        ConsistencyPolicy::None,
        ConsistencyPolicy::Verify,
        ConsistencyPolicy::Broadcast,
        ConsistencyPolicy::VerifyThenBroadcast,
    ];

    /// Whether the policy fingerprints and compares (needs a verify workspace).
    pub const fn verifies(self) -> bool {
        matches!(
            self,
            ConsistencyPolicy::Verify | ConsistencyPolicy::VerifyThenBroadcast
        )
    }

    /// Whether the policy overwrites the indices with rank 0's.
    pub const fn broadcasts(self) -> bool {
        matches!(
            self,
            ConsistencyPolicy::Broadcast | ConsistencyPolicy::VerifyThenBroadcast
        )
    }

    /// Whether the policy issues any collective (and so needs a communicator).
    pub const fn needs_communicator(self) -> bool {
        self.verifies() || self.broadcasts()
    }

    /// Bytes of verify workspace the policy needs for `rows` rows (0 when it does not verify).
    pub fn workspace_bytes(self, rows: usize) -> usize {
        if self.verifies() {
            super::WorkspaceLayout::verify(rows).total_bytes
        } else {
            0
        }
    }

    /// The name used by [`FromStr`] and [`fmt::Display`] (`none`, `verify`, `broadcast`,
    /// `verify-then-broadcast`).
    pub const fn name(self) -> &'static str {
        match self {
            ConsistencyPolicy::None => "none",
            ConsistencyPolicy::Verify => "verify",
            ConsistencyPolicy::Broadcast => "broadcast",
            ConsistencyPolicy::VerifyThenBroadcast => "verify-then-broadcast",
        }
    }
}

impl fmt::Display for ConsistencyPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing a [`ConsistencyPolicy`] name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown consistency policy `{0}` (expected none, verify, broadcast or verify-then-broadcast)"
)]
pub struct UnknownPolicy(pub String);

impl FromStr for ConsistencyPolicy {
    type Err = UnknownPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('_', "-");
        ConsistencyPolicy::ALL
            .into_iter()
            .find(|p| p.name() == norm)
            .ok_or_else(|| UnknownPolicy(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_logic() {
        use ConsistencyPolicy::*;
        let table = [
            (None, false, false),
            (Verify, true, false),
            (Broadcast, false, true),
            (VerifyThenBroadcast, true, true),
        ];
        for (p, v, b) in table {
            assert_eq!((p.verifies(), p.broadcasts()), (v, b), "{p}");
            assert_eq!(p.needs_communicator(), v || b);
            assert_eq!(p.workspace_bytes(64) > 0, v);
            assert_eq!(p.name().parse::<ConsistencyPolicy>().unwrap(), p);
        }
        assert_eq!(ConsistencyPolicy::default(), None);
        assert_eq!(
            "Verify_Then_Broadcast".parse::<ConsistencyPolicy>(),
            Ok(VerifyThenBroadcast)
        );
        assert!("always".parse::<ConsistencyPolicy>().is_err());
    }
}
