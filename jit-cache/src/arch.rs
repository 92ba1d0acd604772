//! GPU architecture targets.

use std::fmt;

/// A compilation target: `sm_XY` with an optional arch-specific suffix (`sm_90a`).
///
/// Hopper and Blackwell datacenter parts are targeted with the `a` suffix so kernels may use
/// wgmma / setmaxnreg / tcgen05; such a cubin runs only on that exact compute capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Arch {
    /// Compute capability major.
    pub major: u32,
    /// Compute capability minor.
    pub minor: u32,
    /// Arch-specific features (`a` suffix).
    pub specific: bool,
}

impl Arch {
    /// Ampere A100.
    pub const SM80: Arch = Arch::new(8, 0, false);
    /// Hopper with its arch-specific instructions.
    pub const SM90A: Arch = Arch::new(9, 0, true);
    /// Blackwell datacenter, portable feature set.
    pub const SM100: Arch = Arch::new(10, 0, false);

    /// The targets every kernel variant must compile for (checked on CI without a GPU).
    pub const CI_TARGETS: [Arch; 3] = [Arch::SM80, Arch::SM90A, Arch::SM100];

    /// A target from its parts.
    pub const fn new(major: u32, minor: u32, specific: bool) -> Self {
        Arch {
            major,
            minor,
            specific,
        }
    }

    /// The best target for a device of compute capability `major.minor`: arch-specific on
    /// 9.0 (Hopper), the plain target elsewhere.
    pub fn for_device(major: u32, minor: u32) -> Self {
        Arch::new(major, minor, major == 9 && minor == 0)
    }

    /// The numeric code NVRTC lists in `nvrtcGetSupportedArchs` (e.g. 90).
    pub fn code(&self) -> u32 {
        self.major * 10 + self.minor
    }

    /// Parse `sm_90a`, `sm_80`, `90a`, `compute_90`.
    pub fn parse(s: &str) -> Option<Arch> {
        let s = s
            .trim()
            .trim_start_matches("sm_")
            .trim_start_matches("compute_");
        let (digits, specific) = match s.strip_suffix('a') {
            Some(d) => (d, true),
            None => (s, false),
        };
        let n: u32 = digits.parse().ok()?;
        (n >= 10).then(|| Arch::new(n / 10, n % 10, specific))
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = if self.specific { "a" } else { "" };
        write!(f, "sm_{}{}{a}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display_round_trip() {
        for s in ["sm_80", "sm_90a", "sm_100", "sm_89", "sm_120a"] {
            assert_eq!(Arch::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(Arch::parse("90a"), Some(Arch::SM90A));
        assert_eq!(Arch::parse("sm_x"), None);
        assert_eq!(Arch::parse("sm_9"), None);
    }

    #[test]
    fn hopper_gets_the_specific_target() {
        assert_eq!(Arch::for_device(9, 0), Arch::SM90A);
        assert_eq!(Arch::for_device(8, 9).to_string(), "sm_89");
        assert_eq!(Arch::for_device(10, 0), Arch::SM100);
    }
}
