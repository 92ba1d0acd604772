//! The tuning database: launch parameters measured fastest per GPU model, arch, op, dtype and
//! shape bucket, written by `dsa tune` and read by each op's planner.
//!
//! 1. **Where.** `$DSA_TUNING_DB` if set, else `tuning.json` in the JIT cache folder
//!    ([`crate::CacheConfig::from_env`]; with `DSA_JIT_CACHE=off` only `$DSA_TUNING_DB` is read).
//! 2. **When.** [`TuningDb::global`] loads the file once per process, on the first plan. A
//!    missing file is an empty database; a corrupt one, or one written in another format
//!    version, is ignored after one warning on stderr: the planners then use their heuristics.
//! 3. **What.** An [`Entry`] holds integer parameters by name (topk: `threads`, `cluster`, `keys`); the
//!    op validates them when planning and ignores values it does not support, so a stale entry
//!    can cost speed, never correctness (every op's parameters change speed, never results).
//! 4. **Keys.** GPU model ([`crate::gpu::name_hash`] of its name), arch (`sm_90a`), op, dtype
//!    and a bucket string from the op's shape, e.g. [`topk_bucket`]
//!    (`k2048.rows64.stride131072`): sizes are rounded up to powers of two ([`pow2_bucket`]).
//!
//! ```
//! use dsa_jit_cache::tuning::{Entry, TuningDb, topk_bucket};
//! use dsa_jit_cache::DeviceInfo;
//! let mut db = TuningDb::empty();
//! let bucket = topk_bucket(2048, 64, 131072);
//! db.upsert(Entry::new("NVIDIA H100 80GB HBM3", "sm_90a", "topk", "f32", &bucket, [("threads", 512), ("parts", 4)]));
//! let params = db.lookup(&DeviceInfo::H100, "topk", "f32", &bucket).unwrap();
//! assert_eq!(params.get("parts"), Some(&4));
//! ```

use crate::arch::Arch;
use crate::cache::CacheConfig;
use crate::gpu::{DeviceInfo, name_hash};
use once_cell::sync::Lazy;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Env var naming the tuning database file.
pub const TUNING_DB_ENV: &str = "DSA_TUNING_DB";
/// File name of the database in the cache folder.
pub const TUNING_DB_FILE: &str = "tuning.json";
/// Version of the file layout; a file of another version is stale and ignored.
pub const FORMAT_VERSION: u32 = 1;

/// Named integer launch parameters (`threads`, `parts`, ...).
pub type Params = BTreeMap<String, u64>;

/// One tuned bucket: its key, the winning parameters and the measurement behind them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The GPU's name as the driver reports it (`NVIDIA H100 80GB HBM3`).
    pub gpu: String,
    /// Compilation target, `sm_90a`.
    pub arch: String,
    /// The op (`topk`).
    pub op: String,
    /// Element type (`f32`, `bf16`, `f16`).
    pub dtype: String,
    /// The op's shape bucket, e.g. [`topk_bucket`].
    pub bucket: String,
    /// The winning parameters.
    pub params: Params,
    /// What the built-in heuristic picks for the tuned shape.
    #[serde(default)]
    pub default_params: Params,
    /// Median GPU time of the winner on the tuned shape, microseconds (0: not measured).
    #[serde(default)]
    pub tuned_us: f64,
    /// Median GPU time of the heuristic's choice, microseconds (0: not measured).
    #[serde(default)]
    pub default_us: f64,
    /// The shape the timings were taken on (`64x131072`).
    #[serde(default)]
    pub shape: String,
}

impl Entry {
    /// An entry with no measurement attached.
    pub fn new<'a>(
        gpu: &str,
        arch: &str,
        op: &str,
        dtype: &str,
        bucket: &str,
        params: impl IntoIterator<Item = (&'a str, u64)>,
    ) -> Self {
        Entry {
            gpu: gpu.into(),
            arch: arch.into(),
            op: op.into(),
            dtype: dtype.into(),
            bucket: bucket.into(),
            params: params
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            default_params: Params::new(),
            tuned_us: 0.0,
            default_us: 0.0,
            shape: String::new(),
        }
    }

    /// A top-k entry with no measurement attached, for the bucket of (`k_class`, `rows`,
    /// `stride`) ([`topk_bucket`]).
    pub fn topk<'a>(
        gpu: &str,
        arch: &str,
        dtype: &str,
        (k_class, rows, stride): (u32, usize, usize),
        params: impl IntoIterator<Item = (&'a str, u64)>,
    ) -> Self {
        let bucket = topk_bucket(k_class, rows, stride);
        Entry::new(gpu, arch, "topk", dtype, &bucket, params)
    }

    /// `default_us / tuned_us` (1.0 when not measured).
    pub fn speedup(&self) -> f64 {
        if self.tuned_us > 0.0 && self.default_us > 0.0 {
            self.default_us / self.tuned_us
        } else {
            1.0
        }
    }

    fn lookup_key(&self) -> Option<(u64, Arch, String)> {
        let arch = Arch::parse(&self.arch)?;
        Some((
            name_hash(&self.gpu),
            arch,
            inner_key(&self.op, &self.dtype, &self.bucket),
        ))
    }
}

/// The file's layout.
#[derive(Serialize, Deserialize)]
struct File {
    format: u32,
    entries: Vec<Entry>,
}

/// Why a database file was not used.
#[derive(Debug, thiserror::Error)]
pub enum TuningDbError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a tuning database.
    #[error("{path} is not a tuning database ({reason})")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// The file was written in another format version.
    #[error("{path} has format version {found}, this build reads version {FORMAT_VERSION}")]
    Stale {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
    },
}

/// Tuned launch parameters, indexed for lookup by (GPU, arch, op, dtype, bucket).
#[derive(Clone, Debug, Default)]
pub struct TuningDb {
    entries: Vec<Entry>,
    index: HashMap<(u64, Arch), HashMap<String, usize>>,
}

static GLOBAL: Lazy<TuningDb> = Lazy::new(|| match TuningDb::default_path() {
    Some(path) => TuningDb::load_or_warn(&path),
    None => TuningDb::empty(),
});

fn inner_key(op: &str, dtype: &str, bucket: &str) -> String {
    format!("{op}/{dtype}/{bucket}")
}

impl TuningDb {
    /// The process-wide database (see the module docs for where it comes from), loaded once.
    pub fn global() -> &'static TuningDb {
        &GLOBAL
    }

    /// A database with no entries: every op uses its heuristics.
    pub fn empty() -> Self {
        TuningDb::default()
    }

    /// `$DSA_TUNING_DB`, else `tuning.json` in the JIT cache folder (`None` with the cache off).
    pub fn default_path() -> Option<PathBuf> {
        std::env::var_os(TUNING_DB_ENV)
            .map(PathBuf::from)
            .or_else(|| CacheConfig::from_env().dir.map(|d| d.join(TUNING_DB_FILE)))
    }

    /// Read `path`. A missing file is an empty database.
    pub fn load(path: &Path) -> Result<Self, TuningDbError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(TuningDb::empty()),
            Err(source) => {
                return Err(TuningDbError::Io {
                    path: path.into(),
                    source,
                });
            }
        };
        let corrupt = |e: serde_json::Error| TuningDbError::Corrupt {
            path: path.into(),
            reason: e.to_string(),
        };
        let value: serde_json::Value = serde_json::from_str(&text).map_err(corrupt)?;
        let found = value.get("format").and_then(|v| v.as_u64());
        if let Some(found) = found.filter(|&f| f != FORMAT_VERSION as u64) {
            return Err(TuningDbError::Stale {
                path: path.into(),
                found: found as u32,
            });
        }
        let file: File = serde_json::from_value(value).map_err(corrupt)?;
        let mut db = TuningDb::empty();
        for e in file.entries {
            db.upsert(e);
        }
        Ok(db)
    }

    /// [`TuningDb::load`], falling back to an empty database after one warning on stderr.
    pub fn load_or_warn(path: &Path) -> Self {
        TuningDb::load(path).unwrap_or_else(|e| {
            eprintln!(
                "dsa-jit-cache: ignoring the tuning database: {e}; using built-in heuristics"
            );
            TuningDb::empty()
        })
    }

    /// Write to `path` atomically (temp file in the same folder, then rename).
    pub fn save(&self, path: &Path) -> Result<(), TuningDbError> {
        let io = |source| TuningDbError::Io {
            path: path.into(),
            source,
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let file = File {
            format: FORMAT_VERSION,
            entries: self.entries.clone(),
        };
        let text = serde_json::to_string_pretty(&file).expect("entries serialize");
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        tmp.write_all(text.as_bytes()).map_err(io)?;
        tmp.write_all(b"\n").map_err(io)?;
        tmp.persist(path).map_err(|e| io(e.error))?;
        Ok(())
    }

    /// Every entry, in insertion order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Add `entry`, replacing one with the same key. Entries with an unparsable arch are kept
    /// in the file but never found.
    pub fn upsert(&mut self, entry: Entry) {
        let Some((gpu, arch, key)) = entry.lookup_key() else {
            self.entries.push(entry);
            return;
        };
        let slot = self.index.entry((gpu, arch)).or_default();
        match slot.get(&key) {
            Some(&i) => self.entries[i] = entry,
            None => {
                slot.insert(key, self.entries.len());
                self.entries.push(entry);
            }
        }
    }

    /// The parameters tuned for `op`/`dtype`/`bucket` on `device`'s GPU model and arch.
    pub fn lookup(
        &self,
        device: &DeviceInfo,
        op: &str,
        dtype: &str,
        bucket: &str,
    ) -> Option<&Params> {
        if self.entries.is_empty() {
            return None;
        }
        let (major, minor) = device.compute_capability;
        let arch = Arch::for_device(major, minor);
        let i = *self
            .index
            .get(&(device.name_hash, arch))?
            .get(&inner_key(op, dtype, bucket))?;
        Some(&self.entries[i].params)
    }
}

/// A size's bucket: the next power of two (0 and 1 are bucket 1).
pub fn pow2_bucket(n: usize) -> usize {
    n.max(1).next_power_of_two()
}

/// Top-k's shape bucket: the k class (the kernel's `kmax`), rows and stride rounded up to
/// powers of two: `k2048.rows64.stride131072`.
pub fn topk_bucket(k_class: u32, rows: usize, stride: usize) -> String {
    format!(
        "k{k_class}.rows{}.stride{}",
        pow2_bucket(rows),
        pow2_bucket(stride)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(bucket: &str, parts: u64) -> Entry {
        Entry::new(
            "NVIDIA H100 80GB HBM3",
            "sm_90a",
            "topk",
            "f32",
            bucket,
            [("threads", 512), ("parts", parts)],
        )
    }

    #[test]
    fn buckets_round_up_to_powers_of_two() {
        assert_eq!(pow2_bucket(0), 1);
        assert_eq!(pow2_bucket(64), 64);
        assert_eq!(pow2_bucket(65), 128);
        assert_eq!(topk_bucket(2048, 19, 100_000), "k2048.rows32.stride131072");
    }

    #[test]
    fn round_trip_and_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/tuning.json");
        let mut db = TuningDb::empty();
        db.upsert(entry("k2048.rows64.stride131072", 4));
        db.upsert(entry("k2048.rows1.stride131072", 16));
        db.upsert(entry("k2048.rows64.stride131072", 8)); // replaces the first
        db.save(&path).unwrap();
        let back = TuningDb::load(&path).unwrap();
        assert_eq!(back.entries(), db.entries());
        assert_eq!(back.entries().len(), 2);
        let dev = DeviceInfo::H100;
        let p = back.lookup(&dev, "topk", "f32", "k2048.rows64.stride131072");
        assert_eq!(p.and_then(|p| p.get("parts")), Some(&8));
        assert!(
            back.lookup(&dev, "topk", "bf16", "k2048.rows64.stride131072")
                .is_none()
        );
        let other = DeviceInfo {
            name_hash: name_hash("NVIDIA A100-SXM4-80GB"),
            ..dev
        };
        assert!(
            back.lookup(&other, "topk", "f32", "k2048.rows64.stride131072")
                .is_none()
        );
    }

    #[test]
    fn missing_corrupt_and_stale_files() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.json");
        assert!(TuningDb::load(&missing).unwrap().is_empty());
        let corrupt = dir.path().join("corrupt.json");
        std::fs::write(&corrupt, "{\"format\": 1, \"entries\": [{\"gpu\": 3}]").unwrap();
        assert!(matches!(
            TuningDb::load(&corrupt),
            Err(TuningDbError::Corrupt { .. })
        ));
        assert!(TuningDb::load_or_warn(&corrupt).is_empty());
        let stale = dir.path().join("stale.json");
        std::fs::write(&stale, "{\"format\": 999, \"whatever\": true}").unwrap();
        assert!(matches!(
            TuningDb::load(&stale),
            Err(TuningDbError::Stale { found: 999, .. })
        ));
    }
}
