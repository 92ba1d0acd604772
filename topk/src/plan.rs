//! Planning: the launch shape from host-known sizes only, and the workspace it needs.

use crate::config::{MAX_K, TopkConfig, Transform};
use crate::error::{Result, TopkError};
use crate::variant::{ITEMS, KMAX, THREADS, TopkVariant};
use dsa_jit_cache::DeviceInfo;
use dsa_jit_cache::tuning::{TuningDb, topk_bucket};

/// Host-side tuning knobs. Every choice gives bit-identical results; only speed changes.
/// A `None` field is taken from the tuning database ([`TuningDb`], written by `dsa tune`) for
/// this GPU and shape bucket, else from the built-in heuristic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Tuning {
    /// Threads per block (256, 512 or 1024), which sets the tile a block selects from
    /// (32 candidates per thread); `None`: the heuristic.
    pub threads: Option<u32>,
    /// CTAs that share one row (a thread-block cluster, 1..=16, a power of two; sm_90 and
    /// newer only, else 1); `None`: the heuristic.
    pub cluster: Option<u32>,
}

/// A planned top-k for a fixed `[rows, stride]` shape.
///
/// Each row is cut into tiles of [`TopkVariant::tile`] candidates (`parts`); each tile's top-k
/// goes to the workspace and merge levels, each reducing the lists of a row by the variant's
/// fan-in, end in the output. All of it follows from `rows`, `stride`, the config and the
/// tuning, never from device data, so a launch can be captured in a CUDA graph and replayed
/// with new lengths and scores. Every plan gives the same bits.
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
        if rows > MAX_DIM || rows > u32::MAX as usize || stride > MAX_DIM || stride == 0 {
            return Err(TopkError::Shape(format!(
                "rows = {rows}, stride = {stride}: need rows <= {MAX_DIM} and 1 <= stride <= {MAX_DIM}"
            )));
        }
        if let Transform::Paged { page_size, .. } = config.transform
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
        let threads = match tuning.threads {
            Some(t) if THREADS.contains(&t) => t,
            Some(t) => {
                return Err(TopkError::Shape(format!(
                    "threads = {t} is not one of {THREADS:?}"
                )));
            }
            None => (!db.is_empty())
                .then(|| {
                    let bucket = topk_bucket(kmax, rows, stride);
                    db.lookup(device, "topk", &config.dtype.to_string(), &bucket)
                })
                .flatten()
                .and_then(|p| p.get("threads"))
                .and_then(|&v| u32::try_from(v).ok())
                .filter(|t| THREADS.contains(t))
                .unwrap_or_else(|| default_threads(stride, kmax)),
        };
        let variant = TopkVariant {
            dtype: config.dtype,
            threads,
            kmax,
        };
        let parts = stride.div_ceil(variant.tile() as usize) as u32;
        Ok(TopkPlan {
            config,
            rows,
            stride,
            variant,
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

    /// Tiles (blocks) per row in the first kernel.
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

    /// Lists per row after each merge level (empty when one tile covers a row).
    pub fn merge_levels(&self) -> Vec<u32> {
        let fan_in = self.variant.merge_fan_in();
        let mut lists = self.parts;
        let mut levels = Vec::new();
        while lists > 1 {
            lists = lists.div_ceil(fan_in);
            levels.push(lists);
        }
        levels
    }

    /// List slots per row in workspace buffers 0 and 1 (tiles write buffer 0, merge levels
    /// alternate).
    pub(crate) fn ws_lists(&self) -> [usize; 2] {
        if self.parts == 1 {
            return [0, 0];
        }
        let second = self.parts.div_ceil(self.variant.merge_fan_in());
        [
            self.parts as usize,
            if second > 1 { second as usize } else { 0 },
        ]
    }

    /// Byte offsets of (buffer 0, buffer 1, counts 0, counts 1) in the workspace, and its size.
    pub(crate) fn ws_layout(&self) -> ([usize; 4], usize) {
        let [l0, l1] = self.ws_lists();
        let list_bytes = 2 * self.variant.kmax as usize * 4; // keys and indices
        let pad = |b: usize| b.div_ceil(16) * 16;
        let b0 = pad(self.rows * l0 * list_bytes);
        let b1 = pad(self.rows * l1 * list_bytes);
        let c0 = pad(self.rows * l0 * 4);
        let c1 = pad(self.rows * l1 * 4);
        ([0, b0, b0 + b1, b0 + b1 + c0], b0 + b1 + c0 + c1)
    }

    /// Workspace bytes the launch needs (0 when one tile covers a row).
    pub fn workspace_bytes(&self) -> usize {
        self.ws_layout().1
    }
}

/// The block size with the fewest passes over a row: the smallest block whose tile covers the
/// whole stride (no merge at all); for longer rows the one with the fewest merge levels, ties to
/// 512 (a 1024-thread merge block is held to 64 registers and spills). This picks the fastest
/// entry of every shape in the H100 sweep recorded in BENCHMARKS.md.
fn default_threads(stride: usize, kmax: u32) -> u32 {
    if let Some(&t) = THREADS.iter().find(|&&t| (t * ITEMS) as usize >= stride) {
        return t;
    }
    let levels = |threads: u32| {
        let v = TopkVariant {
            dtype: crate::ScoreDtype::F32,
            threads,
            kmax,
        };
        let (mut lists, mut n) = (stride.div_ceil(v.tile() as usize), 0);
        while lists > 1 {
            lists = lists.div_ceil(v.merge_fan_in() as usize);
            n += 1;
        }
        n
    };
    *THREADS
        .iter()
        .min_by_key(|&&t| (levels(t), t != 512))
        .expect("THREADS is not empty")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RequestMap;

    fn plan_with(rows: usize, stride: usize, k: usize, threads: Option<u32>) -> TopkPlan {
        TopkPlan::new(
            TopkConfig::new(k),
            rows,
            stride,
            &DeviceInfo::H100,
            Tuning {
                threads,
                ..Tuning::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn tiles_and_merge_levels_follow_the_stride() {
        let p = plan_with(64, 131072, 2048, Some(512));
        assert_eq!((p.variant().tile(), p.parts()), (16384, 8));
        assert_eq!(p.merge_levels(), vec![1]);
        let p = plan_with(1024, 8192, 2048, Some(512));
        assert_eq!((p.parts(), p.workspace_bytes()), (1, 0));
        assert!(p.merge_levels().is_empty());
        let p = plan_with(1, 1 << 20, 2048, Some(1024));
        assert_eq!(p.parts(), 32);
        assert_eq!(p.merge_levels(), vec![2, 1]);
        let p = plan_with(2, 1 << 20, 4096, Some(256));
        assert_eq!(p.variant().merge_fan_in(), 2);
        assert_eq!(p.merge_levels(), vec![64, 32, 16, 8, 4, 2, 1]);
    }

    #[test]
    fn default_block_size_minimises_passes_over_a_row() {
        let threads = |rows, stride| plan_with(rows, stride, 2048, None).variant().threads;
        // One tile covers the row.
        assert_eq!(threads(4096, 4096), 256);
        assert_eq!(threads(1024, 8192), 256);
        assert_eq!(threads(16384, 16384), 512);
        assert_eq!(threads(64, 32768), 1024);
        // One merge level either way: 512; 1024 saves a level at 256K.
        assert_eq!(threads(64, 131072), 512);
        assert_eq!(threads(256, 262144), 1024);
    }

    #[test]
    fn workspace_holds_both_buffers_and_counts() {
        let p = plan_with(3, 100_000, 2048, Some(512));
        assert_eq!(p.parts(), 7);
        assert_eq!(p.ws_lists(), [7, 0]);
        assert_eq!(
            p.workspace_bytes(),
            3 * 7 * 2048 * 8 + (3 * 7 * 4usize).div_ceil(16) * 16
        );
        let p = plan_with(1, 1 << 20, 2048, Some(256));
        assert_eq!(p.ws_lists(), [128, 32]);
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
        let bad = Tuning {
            threads: Some(100),
            ..Tuning::default()
        };
        assert!(TopkPlan::new(TopkConfig::new(8), 1, 8, &dev, bad).is_err());
    }

    #[test]
    fn kmax_class_is_the_smallest_that_fits() {
        assert_eq!(plan_with(1, 100, 1, None).variant().kmax, 512);
        assert_eq!(plan_with(1, 100, 513, None).variant().kmax, 1024);
        assert_eq!(plan_with(1, 100, 2048, None).variant().kmax, 2048);
        assert_eq!(plan_with(1, 100, 4096, None).variant().kmax, 4096);
    }
}
