//! Planning: the launch shape from host-known sizes only, and the workspace it needs.

use crate::config::{MAX_K, OutputOrder, TopkConfig, Transform};
use crate::error::{Result, TopkError};
use crate::variant::{
    KMAX, MAX_CLUSTER, PER_THREAD, RESIDENT, THREADS, TopkVariant, WIDE_RESIDENT,
};
use dsa_jit_cache::DeviceInfo;
use dsa_jit_cache::tuning::{TuningDb, topk_bucket};

/// Host-side tuning knobs. Every choice gives bit-identical results; only speed changes.
/// A `None` field is taken from the tuning database ([`TuningDb`], written by `dsa tune`) for
/// this GPU and shape bucket, else from the built-in heuristic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Tuning {
    /// Threads per block (256, 512 or 1024), which sets the chunk a block streams (8 scores
    /// per thread) and its candidate buffer; `None`: the heuristic.
    pub threads: Option<u32>,
    /// CTAs that share one row (a thread-block cluster, 1..=16, a power of two; sm_90 and
    /// newer only, else 1); `None`: the heuristic.
    pub cluster: Option<u32>,
    /// Scores a thread holds when every segment fits in registers: 16, or 32 with 256 or 512
    /// threads (a larger tile a block, fewer blocks an SM); `None`: the heuristic.
    pub keys: Option<u32>,
}

/// A planned top-k for a fixed `[rows, stride]` shape.
///
/// One kernel: each row is read once by `cluster` CTAs (a thread-block cluster on sm_90+), each
/// holding its segment in registers (the resident form, when every segment fits) or streaming
/// it through a running filter into a shared-memory candidate buffer; the final select runs
/// over the cluster's candidates. The launch follows from `rows`, `stride`, the
/// config and the tuning, never from device data, so it can be captured in a CUDA graph and
/// replayed with new lengths and scores. Every plan gives the same bits, and none needs a
/// workspace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopkPlan {
    pub(crate) config: TopkConfig,
    pub(crate) rows: usize,
    pub(crate) stride: usize,
    pub(crate) variant: TopkVariant,
    pub(crate) cluster: u32,
    /// The smallest buffer class holding `k` (one of `KMAX`).
    pub(crate) kmax: u32,
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
        let tuned = |name: &str| {
            (!db.is_empty())
                .then(|| {
                    let bucket = topk_bucket(kmax, rows, stride);
                    db.lookup(device, "topk", &config.dtype.to_string(), &bucket)
                })
                .flatten()
                .and_then(|p| p.get(name).copied())
                .and_then(|v| u32::try_from(v).ok())
        };
        let chosen_threads = match tuning.threads {
            Some(t) if THREADS.contains(&t) => Some(t),
            Some(t) => {
                return Err(TopkError::Shape(format!(
                    "threads = {t} is not one of {THREADS:?}"
                )));
            }
            None => tuned("threads").filter(|t| THREADS.contains(t)),
        };
        let clusters = device.compute_capability.0 >= 9;
        let valid = |c: u32| c.is_power_of_two() && c <= if clusters { MAX_CLUSTER } else { 1 };
        let cluster = match tuning.cluster {
            Some(c) if valid(c) => c,
            Some(c) => {
                return Err(TopkError::Shape(format!(
                    "cluster = {c}: need a power of two up to {} on this GPU",
                    if clusters { MAX_CLUSTER } else { 1 }
                )));
            }
            None => tuned("cluster").filter(|&c| valid(c)).unwrap_or_else(|| {
                if clusters {
                    let threads = chosen_threads.unwrap_or(CLUSTER_PLAN_THREADS);
                    default_cluster(threads * PER_THREAD, rows, stride, device)
                } else {
                    1
                }
            }),
        };
        let valid_keys = |k: u32| k == RESIDENT || k == WIDE_RESIDENT;
        let mut chosen_keys = match tuning.keys {
            Some(k) if valid_keys(k) => Some(k),
            Some(k) => {
                return Err(TopkError::Shape(format!(
                    "keys = {k}: need {RESIDENT} or {WIDE_RESIDENT}"
                )));
            }
            None => tuned("keys").filter(|&k| valid_keys(k)),
        };
        // 32 scores a thread need at most 512 threads. Asked for both: an error; otherwise the
        // knob the caller set wins over the database's (a stale entry costs speed, not a plan).
        let mut chosen_threads = chosen_threads;
        if chosen_keys == Some(WIDE_RESIDENT) && chosen_threads.is_some_and(|t| t > 512) {
            match (tuning.threads, tuning.keys) {
                (Some(t), Some(k)) => {
                    return Err(TopkError::Shape(format!(
                        "keys = {k} needs threads <= 512, not {t}"
                    )));
                }
                (None, Some(_)) => chosen_threads = None,
                _ => chosen_keys = None,
            }
        }
        let (threads, keys) = match (chosen_threads, chosen_keys) {
            (Some(t), Some(k)) => (t, k),
            (Some(t), None) => (t, RESIDENT),
            (None, Some(k)) => (default_threads(rows, stride, cluster, k, device), k),
            (None, None) => default_shape(rows, stride, cluster, device),
        };
        let resident = TopkVariant::resident(config.dtype, threads, keys);
        let variant = if segments_fit(&resident, stride, cluster) {
            resident
        } else {
            TopkVariant::streaming(config.dtype, threads, kmax)
        };
        Ok(TopkPlan {
            config,
            rows,
            stride,
            variant,
            cluster,
            kmax,
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

    /// CTAs per row (the cluster size; 1 without clusters).
    pub fn cluster(&self) -> u32 {
        self.cluster
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

    /// Workspace bytes the launch needs: none (kept so callers size buffers from the plan).
    pub fn workspace_bytes(&self) -> usize {
        0
    }

    /// Dynamic shared memory of the launch, bytes.
    pub fn dynamic_smem(&self) -> u32 {
        self.variant
            .dynamic_smem(self.cluster, self.buffer_entries())
    }

    /// Whether every row's segments fit in registers (the kernel then needs no streaming
    /// buffer): a segment is the row's share of one CTA rounded up to whole chunks, as on the
    /// device, and the row's length is at most the stride.
    pub fn resident(&self) -> bool {
        self.variant.resident
    }

    /// The smallest buffer class holding `k` (the tuning database's bucket key).
    pub fn kmax_class(&self) -> u32 {
        self.kmax
    }

    /// Entries of the shared buffer this launch gives the kernel: none for resident rows in
    /// index order, `kmax` for their sort, the streaming buffer otherwise.
    fn buffer_entries(&self) -> u32 {
        match (self.resident(), self.config.order) {
            (true, OutputOrder::Index) => 0,
            (true, _) => self.kmax,
            (false, _) => self.variant.buffer_entries(),
        }
    }
}

/// Whether every segment of a row of `stride` scores split over `cluster` CTAs (rounded up to
/// whole chunks, as on the device) fits in registers.
fn segments_fit(v: &TopkVariant, stride: usize, cluster: u32) -> bool {
    holds(stride.div_ceil(cluster as usize), v.threads, v.keys)
}

/// Whether `threads` threads of `keys` resident scores hold a segment of `seg` scores rounded
/// up to whole chunks (as on the device).
fn holds(seg: usize, threads: u32, keys: u32) -> bool {
    seg.next_multiple_of((threads * PER_THREAD) as usize) <= (threads * keys) as usize
}

/// Block size the default cluster is planned with.
const CLUSTER_PLAN_THREADS: u32 = 512;

/// Block size without a tuned entry, for `keys` resident scores a thread: the smallest block
/// that holds a row's segment in registers (1024 only when each CTA has an SM to itself), so
/// that more blocks share an SM and hide each other's barriers; for streamed rows 1024 threads
/// when each CTA has an SM of its own, else 512, so two CTAs share an SM and one's barriers
/// overlap the other's loads. These are the winners of the H100 block-size x cluster sweep in
/// BENCHMARKS.md (session 3).
fn default_threads(
    rows: usize,
    stride: usize,
    cluster: u32,
    keys: u32,
    device: &DeviceInfo,
) -> u32 {
    let own_sm = rows * cluster as usize <= device.sm_count as usize;
    let seg = stride.div_ceil(cluster as usize);
    THREADS
        .into_iter()
        .filter(|&t| (own_sm || t < 1024) && (keys == RESIDENT || t <= 512))
        .find(|&t| holds(seg, t, keys))
        .unwrap_or(if own_sm { 1024 } else { 512 })
}

/// Block size and resident scores a thread without a tuned entry: [`default_threads`] with 16
/// scores a thread, except where 32 were measured faster (H200, session 7, same call): rows of
/// one CTA that fill the GPU four times over and whose segment takes 256 threads of 32 rather
/// than 512 of 16 (1024 x 8192: 28.3 vs 30.9 us, 3 blocks of 256 an SM), and clusters of 8 or
/// 16 whose segment takes 512 threads of 32 rather than 1024 of 16 (1 x 262144: 16.6 vs 20.2,
/// 4 x 262144: 17.2 vs 20.5, 8 x 131072: 15.1 vs 16.5).
fn default_shape(rows: usize, stride: usize, cluster: u32, device: &DeviceInfo) -> (u32, u32) {
    let threads = default_threads(rows, stride, cluster, RESIDENT, device);
    let seg = stride.div_ceil(cluster as usize);
    let fits = |t: u32, keys: u32| holds(seg, t, keys);
    let many = rows * cluster as usize >= 4 * device.sm_count as usize;
    if cluster == 1 && many && threads == 512 && fits(512, RESIDENT) && fits(256, WIDE_RESIDENT) {
        (256, WIDE_RESIDENT)
    } else if cluster >= 8 && threads == 1024 && fits(1024, RESIDENT) && fits(512, WIDE_RESIDENT) {
        (512, WIDE_RESIDENT)
    } else {
        (threads, RESIDENT)
    }
}

/// CTAs per row without a tuned entry: the most that keep one CTA per SM for the whole batch,
/// each streaming at least two chunks; up to the portable cluster size, 8, and 16 for a few
/// rows on full-size parts, whose clusters of 16 each find most of a GPC free. (H200, `dsa tune
/// topk`, session 6: 1x131072 on 512x16 16.4 us vs 1024x8 17.6, 1x262144 on 1024x16 17.4 vs
/// 24.4; with 8 rows 1024x8 stays best. A cut-down part, e.g. 78 SMs, may have no GPC that holds
/// 16 CTAs, so it keeps 8.)
fn default_cluster(chunk: u32, rows: usize, stride: usize, device: &DeviceInfo) -> u32 {
    let sms = device.sm_count as usize;
    let most = if sms >= FULL_SIZE_SMS && rows * MAX_CLUSTER as usize <= sms / 2 {
        MAX_CLUSTER
    } else {
        DEFAULT_MAX_CLUSTER
    };
    let mut c = 1;
    while c < most
        && rows * (2 * c as usize) <= sms
        && stride / (2 * c as usize) >= 2 * chunk as usize
    {
        c *= 2;
    }
    c
}

/// The portable cluster size: larger clusters only for a few rows, when tuned or asked for.
const DEFAULT_MAX_CLUSTER: u32 = 8;

/// SMs of the parts clusters of 16 were measured on (H100 and H200 SXM); larger parts have
/// larger GPCs.
const FULL_SIZE_SMS: usize = 132;

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
    fn clusters_fill_the_gpu_in_one_wave_on_hopper() {
        let cluster = |rows, stride| plan_with(rows, stride, 2048, None).cluster();
        // One to four requests of 128K: clusters of 16; eight: the largest portable cluster.
        assert_eq!(cluster(1, 131072), 16);
        assert_eq!(cluster(4, 131072), 16);
        assert_eq!(cluster(8, 131072), 8);
        // 64 rows: one CTA per SM.
        assert_eq!(cluster(64, 131072), 2);
        // Rows enough to fill the GPU, or rows too short to split: one CTA per row.
        assert_eq!(cluster(256, 262144), 1);
        assert_eq!(cluster(1024, 8192), 1);
        assert_eq!(cluster(1, 8192), 1);
        assert_eq!(cluster(1, 32768), 4);
        // A cut-down part keeps the portable size.
        let small = DeviceInfo {
            sm_count: 78,
            ..DeviceInfo::H100
        };
        let p = TopkPlan::new(TopkConfig::new(2048), 1, 131072, &small, Tuning::default());
        assert_eq!(p.unwrap().cluster(), 8);
        // No clusters before sm_90.
        let a100 = DeviceInfo {
            compute_capability: (8, 0),
            ..DeviceInfo::H100
        };
        let p = TopkPlan::new(TopkConfig::new(2048), 1, 131072, &a100, Tuning::default());
        assert_eq!(p.unwrap().cluster(), 1);
        let forced = Tuning {
            cluster: Some(2),
            ..Tuning::default()
        };
        assert!(TopkPlan::new(TopkConfig::new(2048), 1, 131072, &a100, forced).is_err());
    }

    #[test]
    fn blocks_are_the_smallest_that_hold_a_segment_else_1024_with_an_sm_each() {
        let threads = |rows, stride| plan_with(rows, stride, 2048, None).variant().threads;
        assert_eq!(threads(1, 131072), 512); // 16 CTAs of 8192
        assert_eq!(threads(8, 262144), 1024); // streamed, 8 CTAs of 32768
        assert_eq!(threads(64, 131072), 1024);
        assert_eq!(threads(64, 8192), 512);
        assert_eq!(threads(1, 32768), 512);
        assert_eq!(threads(4096, 4096), 256);
        assert_eq!(threads(256, 262144), 512);
        assert_eq!(threads(256, 8192), 512);
        assert_eq!(plan_with(1, 131072, 2048, Some(256)).variant().threads, 256);
    }

    #[test]
    fn thirty_two_resident_scores_a_thread_where_measured_faster() {
        let shape = |rows, stride| {
            let p = plan_with(rows, stride, 2048, None);
            (
                p.variant().threads,
                p.variant().keys,
                p.resident(),
                p.cluster(),
            )
        };
        // Rows of one CTA filling the GPU four times over: 256 threads of 32, not 512 of 16.
        assert_eq!(shape(1024, 8192), (256, 32, true, 1));
        assert_eq!(shape(256, 8192), (512, 16, true, 1));
        assert_eq!(shape(4096, 4096), (256, 16, true, 1));
        // Clusters of 8 or 16 whose segment would take 1024 threads of 16: 512 of 32.
        assert_eq!(shape(1, 262144), (512, 32, true, 16));
        assert_eq!(shape(8, 131072), (512, 32, true, 8));
        assert_eq!(shape(1, 131072), (512, 16, true, 16));
        assert_eq!(shape(64, 32768), (1024, 16, true, 2));
        // Streamed rows keep 16 (the knob only shapes the resident form).
        assert_eq!(shape(64, 131072), (1024, 16, false, 2));
        // Forced: 32 needs at most 512 threads; only 16 or 32.
        let forced = |threads, keys| {
            let t = Tuning {
                threads,
                keys: Some(keys),
                ..Tuning::default()
            };
            TopkPlan::new(TopkConfig::new(2048), 1, 8192, &DeviceInfo::H100, t)
        };
        let p = forced(None, 32).unwrap();
        assert_eq!((p.variant().threads, p.variant().keys), (256, 32));
        assert_eq!(forced(Some(512), 32).unwrap().variant().tile(), 16384);
        assert!(forced(Some(1024), 32).is_err());
        assert!(forced(None, 8).is_err());
    }

    #[test]
    fn a_database_pairing_that_cannot_hold_32_a_thread_falls_back() {
        use dsa_jit_cache::tuning::Entry;
        let (rows, stride) = (1, 8192);
        let mut db = TuningDb::empty();
        db.upsert(Entry::topk(
            "NVIDIA H100 80GB HBM3",
            "sm_90a",
            "f32",
            (2048, rows, stride),
            [("threads", 1024), ("keys", 32)],
        ));
        let plan = |tuning| {
            let p = TopkPlan::with_db(
                TopkConfig::new(2048),
                rows,
                stride,
                &DeviceInfo::H100,
                tuning,
                &db,
            )
            .unwrap();
            (p.variant().threads, p.variant().keys)
        };
        // Both from the database: its threads stand, with 16 a thread.
        assert_eq!(plan(Tuning::default()), (1024, 16));
        // A caller's keys = 32 wins over the database's threads, and vice versa.
        let keys = Tuning {
            keys: Some(32),
            ..Tuning::default()
        };
        assert_eq!(plan(keys), (256, 32));
        let threads = Tuning {
            threads: Some(1024),
            ..Tuning::default()
        };
        assert_eq!(plan(threads), (1024, 16));
    }

    #[test]
    fn no_plan_needs_a_workspace() {
        for (rows, stride) in [(1, 1 << 20), (64, 131072), (4096, 4096)] {
            assert_eq!(plan_with(rows, stride, 4096, None).workspace_bytes(), 0);
        }
        let p = plan_with(8, 131072, 2048, Some(512));
        assert_eq!(p.cluster(), 8);
        assert_eq!(p.dynamic_smem(), (2048 + 2 * 512 * 8) * 8 + 3 * 2048 * 4);
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
        let bad = Tuning {
            cluster: Some(3),
            ..Tuning::default()
        };
        assert!(TopkPlan::new(TopkConfig::new(8), 1, 8, &dev, bad).is_err());
    }

    #[test]
    fn kmax_class_is_the_smallest_that_fits() {
        assert_eq!(plan_with(1, 100, 1, None).kmax_class(), 512);
        assert_eq!(plan_with(1, 100, 513, None).kmax_class(), 1024);
        assert_eq!(plan_with(1, 100, 2048, None).kmax_class(), 2048);
        assert_eq!(plan_with(1, 100, 4096, None).kmax_class(), 4096);
    }
}
