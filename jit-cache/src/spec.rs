//! Kernel variants: the typed description of one compiled module.
//!
//! A kernel crate describes each compiled form of its kernels with a typed struct (dtype, block
//! size, flags, ...) that implements [`KernelVariant`]. The struct renders a [`KernelSpec`]: the
//! `.cu` source, `-D` defines, and the entry-point symbols, which are generated here from the
//! variant (never typed by hand). The `.cu` file declares each entry point as
//! `extern "C" __global__ void DSA_ENTRY_<ROLE>(...)`; the spec defines that macro to the symbol.

use std::fmt;
use std::hash::Hash;

/// The prelude every kernel source is compiled with (conversions, vector loads, warp helpers).
pub const PRELUDE: &str = include_str!("prelude.cuh");

/// Options every kernel is compiled with. `-lineinfo` costs nothing at run time and lets
/// compute-sanitizer and ncu point at source lines.
const BASE_OPTIONS: [&str; 3] = [
    "--std=c++17",
    "-lineinfo",
    "--device-as-default-execution-space",
];

/// One compilable module: source, defines and the entry points it exports.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KernelSpec {
    /// Kernel family (the crate's op), e.g. `topk`.
    pub family: &'static str,
    /// Readable id naming every parameter, e.g. `topk.select[f32,threads=1024]`.
    pub id: String,
    /// The `.cu` source (without the prelude).
    pub source: &'static str,
    /// `-D NAME=VALUE` defines rendered from the variant.
    pub defines: Vec<(String, String)>,
    /// Entry points: (role, symbol). Role `SELECT` defines `DSA_ENTRY_SELECT` to the symbol.
    pub entries: Vec<(&'static str, String)>,
    /// Extra NVRTC options (e.g. `--maxrregcount=64`).
    pub extra_options: Vec<String>,
}

impl KernelSpec {
    /// A spec with generated entry symbols for `roles`.
    pub fn new(
        family: &'static str,
        id: impl Into<String>,
        source: &'static str,
        defines: Vec<(String, String)>,
        roles: &[&'static str],
    ) -> Self {
        let id = id.into();
        let entries = roles
            .iter()
            .map(|role| (*role, entry_symbol(family, role, &id)))
            .collect();
        KernelSpec {
            family,
            id,
            source,
            defines,
            entries,
            extra_options: Vec::new(),
        }
    }

    /// The translation unit handed to NVRTC: prelude, then the kernel's source.
    pub fn full_source(&self) -> String {
        format!("{PRELUDE}\n#line 1 \"{}.cu\"\n{}", self.family, self.source)
    }

    /// Every NVRTC option except the target arch.
    pub fn options(&self) -> Vec<String> {
        let mut opts: Vec<String> = BASE_OPTIONS.iter().map(|s| s.to_string()).collect();
        opts.extend(self.defines.iter().map(|(k, v)| format!("-D{k}={v}")));
        opts.extend(
            self.entries
                .iter()
                .map(|(role, sym)| format!("-DDSA_ENTRY_{role}={sym}")),
        );
        opts.extend(self.extra_options.iter().cloned());
        opts
    }

    /// The symbol of the entry point with `role`. Panics if the spec has no such role, which
    /// is a bug in the kernel crate caught by its variant tests.
    pub fn symbol(&self, role: &str) -> &str {
        self.entries
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, s)| s.as_str())
            .unwrap_or_else(|| panic!("kernel {} has no entry point {role}", self.id))
    }
}

/// `dsa_<family>_<role>_<id with every non-identifier char as _>`: readable in profilers.
fn entry_symbol(family: &str, role: &str, id: &str) -> String {
    let clean: String = id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("dsa_{family}_{}_{clean}", role.to_ascii_lowercase())
}

/// A typed kernel variant. Equality and hashing of the struct are the in-memory cache key, so
/// a launch never re-renders or re-hashes the source on a hit.
pub trait KernelVariant: Clone + Eq + Hash + fmt::Display + Send + Sync + 'static {
    /// The spec for this variant (used only on a miss).
    fn spec(&self) -> KernelSpec;
}

/// A kernel family's list of every supported variant, registered with `inventory` so that the
/// all-variants compile test sees each crate's kernels without a hand-kept list.
pub struct VariantFamily {
    /// Family name (`topk`, `hadamard`, ...).
    pub name: &'static str,
    /// Every supported variant's spec.
    pub all: fn() -> Vec<KernelSpec>,
}

inventory::collect!(VariantFamily);

/// Every registered family, sorted by name.
pub fn registered_families() -> Vec<&'static VariantFamily> {
    let mut v: Vec<_> = inventory::iter::<VariantFamily>.into_iter().collect();
    v.sort_by_key(|f| f.name);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_define_entries_and_defines() {
        let spec = KernelSpec::new(
            "demo",
            "demo.x[f32,n=4]",
            "",
            vec![("N".into(), "4".into())],
            &["MAIN"],
        );
        assert_eq!(spec.symbol("MAIN"), "dsa_demo_main_demo_x_f32_n_4_");
        let opts = spec.options();
        assert!(opts.contains(&"-DN=4".to_string()));
        assert!(opts.contains(&"-DDSA_ENTRY_MAIN=dsa_demo_main_demo_x_f32_n_4_".to_string()));
        assert!(spec.full_source().starts_with(PRELUDE));
    }
}
