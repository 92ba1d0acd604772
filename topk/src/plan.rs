//! Planning: the launch shape from host-known sizes only, and the workspace it needs.

use crate::config::{MAX_K, TopkConfig};
use crate::error::{Result, TopkError};
use crate::variant::{KMAX, TopkVariant};
use dsa_jit_cache::DeviceInfo;
use dsa_jit_cache::tuning::{TuningDb, topk_bucket};

/// Host-side tuning knobs. Every choice gives bit-identical results; only speed changes.
/// A `None` field is taken from the tuning database ([`TuningDb`], written by `dsa tune`) for
/// this GPU and shape bucket, else from the built-in heuristic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Tuning {
    /// Threads per block (256, 512 or 1024); `None`: the heuristic.
    pub threads: Option<u32>,
    /// Blocks per row (parts), `None`: the heuristic.
    pub parts: Option<u32>,
}

/// A planned top-k for a fixed `[rows, stride]` shape.
///
/// The plan depends only on `rows`, `stride`, the config, the device's SM count and the tuning,
/// never on device data, so a launch can be captured in a CUDA graph and replayed with new
/// lengths and scores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopkPlan {
    pub(crate) config: TopkConfig,
    pub(crate) rows: usize,
    pub(crate) stride: usize,
    pub(crate) variant: TopkVariant,
    pub(crate) parts: u32,
}

/// Largest number of rows or row stride the kernels index (i32 indices).
const MAX_DIM: usize = i32::MAX as usize;
/// A part of a row spans at least this many candidates per kept index, so the merge reads at
/// most a quarter of what the parts read...
const MIN_PART_PER_K: usize = 4;
/// ...and at least this many, so a block has enough to stream to pay for its launch.
const MIN_PART: usize = 8192;
/// Blocks the heuristic aims for per SM.
const BLOCKS_PER_SM: usize = 2;

impl TopkPlan {
    /// Plan a top-k over `rows` rows of `stride` elements on `device`, consulting the
    /// process-wide tuning database ([`TuningDb::global`]) for the knobs `tuning` leaves open.
    pub fn new(
        config: TopkConfig,
        rows: usize,
        stride: usize,
        device: &DeviceInfo,
        tuning: Tuning,
    ) -> Result<Self> {
        Self::with_db(config, rows, stride, device, tuning, TuningDb::global())
    }

    /// As [`TopkPlan::new`], with an explicit tuning database (`TuningDb::empty()`: the
    /// built-in heuristic alone).
    pub fn with_db(
        config: TopkConfig,
        rows: usize,
        stride: usize,
        device: &DeviceInfo,
        tuning: Tuning,
        db: &TuningDb,
    ) -> Result<Self> {
        if config.k == 0 || config.k > MAX_K {
            return Err(TopkError::K {
                k: config.k,
                max: MAX_K,
            });
        }
        if rows > MAX_DIM || stride > MAX_DIM || stride == 0 {
            return Err(TopkError::Shape(format!(
                "rows = {rows}, stride = {stride}: need rows <= {MAX_DIM} and 1 <= stride <= {MAX_DIM}"
            )));
        }
        if let crate::Transform::Paged { page_size, .. } = config.transform
            && (!page_size.is_power_of_two() || page_size > 1 << 20)
        {
            return Err(TopkError::Shape(format!(
                "page size {page_size} is not a power of two in 1..=2^20"
            )));
        }
        let kmax = *KMAX
            .iter()
            .find(|&&m| m as usize >= config.k)
            .expect("MAX_K is the last class");
        let tuned = (!db.is_empty())
            .then(|| {
                let bucket = topk_bucket(kmax, rows, stride);
                db.lookup(device, "topk", &config.dtype.to_string(), &bucket)
            })
            .flatten();
        let from_db = |name: &str| {
            tuned
                .and_then(|p| p.get(name))
                .and_then(|&v| u32::try_from(v).ok())
        };
        let threads = match tuning.threads {
            Some(t) if crate::variant::THREADS.contains(&t) => t,
            Some(t) => {
                return Err(TopkError::Shape(format!(
                    "threads = {t} is not 256, 512 or 1024"
                )));
            }
            None => from_db("threads")
                .filter(|t| crate::variant::THREADS.contains(t))
                .unwrap_or(512),
        };
        let max_parts = (stride / (MIN_PART_PER_K * config.k).max(MIN_PART)).max(1);
        let parts = match tuning.parts {
            Some(p) if p >= 1 => (p as usize).min(max_parts),
            Some(_) => return Err(TopkError::Shape("parts must be >= 1".into())),
            None => match from_db("parts").filter(|&p| p >= 1) {
                Some(p) => (p as usize).min(max_parts),
                None => {
                    let target = device.sm_count as usize * BLOCKS_PER_SM;
                    target.div_ceil(rows.max(1)).clamp(1, max_parts)
                }
            },
        } as u32;
        Ok(TopkPlan {
            config,
            rows,
            stride,
            variant: TopkVariant {
                dtype: config.dtype,
                threads,
                kmax,
            },
            parts,
        })
    }

    /// The config this plan computes.
    pub fn config(&self) -> &TopkConfig {
        &self.config
    }

    /// The kernel variant it launches.
    pub fn variant(&self) -> TopkVariant {
        self.variant
    }

    /// Blocks per row.
    pub fn parts(&self) -> u32 {
        self.parts
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Elements between rows of the scores.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// The output's shape, `[rows, k]` i32.
    pub fn output_shape(&self) -> [usize; 2] {
        [self.rows, self.config.k]
    }

    /// Workspace bytes the launch needs (0 with one block per row). 16-byte aligned.
    pub fn workspace_bytes(&self) -> usize {
        if self.parts == 1 {
            return 0;
        }
        let slots = self.rows * self.parts as usize;
        2 * self.ws_words_per_array() * 4 + (slots * 4).div_ceil(16) * 16
    }

    /// u32 words in each of the workspace's key and index arrays.
    pub(crate) fn ws_words_per_array(&self) -> usize {
        self.rows * self.parts as usize * self.variant.kmax as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RequestMap, Transform};

    fn plan(rows: usize, stride: usize, k: usize) -> TopkPlan {
        let db = TuningDb::empty();
        TopkPlan::with_db(
            TopkConfig::new(k),
            rows,
            stride,
            &DeviceInfo::H100,
            Tuning::default(),
            &db,
        )
        .unwrap()
    }

    #[test]
    fn few_long_rows_split_many_rows_do_not() {
        assert_eq!(plan(1, 131072, 2048).parts(), 16);
        assert_eq!(plan(64, 131072, 2048).parts(), 5);
        assert_eq!(plan(256, 262144, 2048).parts(), 2);
        assert_eq!(plan(1024, 8192, 2048).parts(), 1);
        assert_eq!(plan(1, 4096, 2048).parts(), 1);
        assert_eq!(plan(0, 4096, 2048).parts(), 1);
        assert_eq!(plan(1, 131072, 2048).workspace_bytes(), 16 * 2048 * 8 + 64);
        assert_eq!(plan(1024, 8192, 2048).workspace_bytes(), 0);
    }

    #[test]
    fn bad_configs_are_typed_errors() {
        let dev = DeviceInfo::H100;
        let t = Tuning::default();
        assert!(matches!(
            TopkPlan::new(TopkConfig::new(0), 1, 8, &dev, t),
            Err(TopkError::K { .. })
        ));
        assert!(matches!(
            TopkPlan::new(TopkConfig::new(4097), 1, 8, &dev, t),
            Err(TopkError::K { .. })
        ));
        assert!(matches!(
            TopkPlan::new(TopkConfig::new(8), 1, 0, &dev, t),
            Err(TopkError::Shape(_))
        ));
        let paged = TopkConfig::new(8).transform(Transform::Paged {
            page_size: 3,
            requests: RequestMap::PerRow,
        });
        assert!(matches!(
            TopkPlan::new(paged, 1, 8, &dev, t),
            Err(TopkError::Shape(_))
        ));
        let bad_threads = Tuning {
            threads: Some(100),
            parts: None,
        };
        assert!(TopkPlan::new(TopkConfig::new(8), 1, 8, &dev, bad_threads).is_err());
    }

    #[test]
    fn kmax_class_is_the_smallest_that_fits() {
        assert_eq!(plan(1, 100, 1).variant().kmax, 512);
        assert_eq!(plan(1, 100, 513).variant().kmax, 1024);
        assert_eq!(plan(1, 100, 2048).variant().kmax, 2048);
        assert_eq!(plan(1, 100, 4096).variant().kmax, 4096);
    }
}
