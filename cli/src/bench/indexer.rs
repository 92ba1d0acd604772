//! `dsa bench indexer`: the indexer's figures against their physical floors, timed by
//! [`dsa_indexer::timing`] (CUDA events, median of many runs after warm-up, random inputs).
//!
//! | figure | floor |
//! | --- | --- |
//! | decode scores `BxL` | FP8 key cache + scales read once ([`timing::decode_cache_bytes`]) at the measured copy bandwidth |
//! | prefill scores `T` causal | useful FLOPs ([`timing::causal_prefill_flops`]) at the dense FP8 tensor-core peak ([`fp8_peak`]) |
//! | decode step `BxL`, eager and CUDA-graph replay | the same key-cache read as the decode scores |

use super::write;
use crate::args::{BatchContext, IndexerBenchArgs, IndexerPart};
use crate::error::{CliError, Result};
use crate::table::Table;
use dsa_benches::Gpu;
use dsa_indexer::IndexerConfig;
use dsa_indexer::timing::{self, Runs};
use indicatif::ProgressBar;
use serde::Serialize;
use std::path::Path;

/// The decode scores kernel's goal: this share of its HBM floor, percent.
pub const DECODE_GOAL_PCT: f64 = 60.0;
/// Largest key cache one decode shape may ask for (generated on the host, uploaded once).
const MAX_CACHE_BYTES: usize = 16 << 30;
/// Largest causal prefill (its `[T, T]` f32 logits are 16 GiB at this size).
const MAX_PREFILL_TOKENS: usize = 65536;

/// Dense FP8 tensor-core peaks, TFLOP/s, by device name: NVIDIA's datasheets list these with
/// 2:4 sparsity, at twice the dense figure (H100 SXM and H200 / GH200: 3,958; H100 NVL and H200
/// NVL: 3,341; H100 PCIe: 3,026). Checked in order; every listed word must be in the name.
const DENSE_FP8_TFLOPS: [(&str, &[&str], f64); 5] = [
    ("H100 NVL", &["H100", "NVL"], 1670.5),
    ("H100 PCIe", &["H100", "PCIe"], 1513.0),
    ("H100 SXM", &["H100"], 1979.0),
    ("H200 NVL", &["H200", "NVL"], 1670.5),
    ("H200 SXM / GH200", &["H200"], 1979.0),
];

/// The FP8 peak the prefill floor uses, and where it comes from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Fp8Peak {
    /// Dense FP8 tensor-core TFLOP/s.
    pub tflops: f64,
    /// `--fp8-peak-tflops`, or the datasheet entry; never measured here (the codebase has no
    /// peak-FLOPs kernel).
    pub source: String,
}

/// The prefill floor's peak: `given` (`--fp8-peak-tflops`) if any, else the datasheet figure of
/// a known device, else none (the prefill rows then have no floor).
pub fn fp8_peak(device_name: &str, given: Option<f64>) -> Option<Fp8Peak> {
    if let Some(tflops) = given {
        return Some(Fp8Peak {
            tflops,
            source: "--fp8-peak-tflops".into(),
        });
    }
    DENSE_FP8_TFLOPS
        .iter()
        .find(|(_, words, _)| words.iter().all(|w| device_name.contains(w)))
        .map(|&(model, _, tflops)| Fp8Peak {
            tflops,
            source: format!(
                "datasheet constant for {model}: dense FP8, half the {:.0} TFLOP/s listed with \
                 2:4 sparsity; not measured",
                2.0 * tflops
            ),
        })
}

/// Microseconds to read `bytes` once at `copy_gbs` GB/s.
pub fn hbm_floor_us(bytes: usize, copy_gbs: f64) -> f64 {
    bytes as f64 / (copy_gbs * 1e3)
}

/// Microseconds to do `flops` at `tflops` TFLOP/s.
pub fn flop_floor_us(flops: f64, tflops: f64) -> f64 {
    flops / (tflops * 1e6)
}

/// `floor_us / us` in percent.
pub fn pct_of_floor(floor_us: f64, us: f64) -> f64 {
    100.0 * floor_us / us
}

/// The checked options: what to time.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexerBench {
    /// Decode scores shapes.
    pub decode: Vec<BatchContext>,
    /// Causal prefill token counts.
    pub prefill: Vec<usize>,
    /// Whole decode step shapes.
    pub step: Vec<BatchContext>,
    /// Warm-up and timed runs per figure.
    pub runs: Runs,
    /// `--fp8-peak-tflops`.
    pub peak: Option<f64>,
}

impl IndexerBench {
    /// Checks `a` on the host, before any GPU work.
    pub fn from_args(a: &IndexerBenchArgs, config: &IndexerConfig) -> Result<Self> {
        let wants = |p| a.only.is_empty() || a.only.contains(&p);
        let keep = |p, v: &[BatchContext]| if wants(p) { v.to_vec() } else { vec![] };
        let bench = IndexerBench {
            decode: keep(IndexerPart::Decode, &a.decode),
            prefill: if wants(IndexerPart::Prefill) {
                a.prefill.clone()
            } else {
                vec![]
            },
            step: keep(IndexerPart::Step, &a.step),
            runs: Runs {
                warmup: a.warmup,
                iters: a.iters,
            },
            peak: a.fp8_peak_tflops,
        };
        let usage = |m: String| Err(CliError::Usage(m));
        if a.iters == 0 {
            return usage("--iters must be at least 1".into());
        }
        if let Some(p) = a.fp8_peak_tflops
            && !(p.is_finite() && p > 0.0)
        {
            return usage(format!("--fp8-peak-tflops {p} must be a positive number"));
        }
        for s in bench.decode.iter().chain(&bench.step) {
            let bytes = s
                .batch
                .checked_mul(s.context)
                .and_then(|n| n.checked_mul(config.dim + 4));
            if s.batch == 0
                || s.context == 0
                || s.batch > i32::MAX as usize
                || s.context > i32::MAX as usize
                || bytes.is_none_or(|b| b > MAX_CACHE_BYTES)
            {
                return usage(format!(
                    "bad decode shape {s}: batch and context must be at least 1, with a key \
                     cache of at most {} GiB",
                    MAX_CACHE_BYTES >> 30
                ));
            }
        }
        if let Some(&t) = bench
            .prefill
            .iter()
            .find(|&&t| t == 0 || t > MAX_PREFILL_TOKENS)
        {
            return usage(format!(
                "bad prefill size {t}: tokens must be in 1..={MAX_PREFILL_TOKENS}"
            ));
        }
        if bench.decode.is_empty() && bench.prefill.is_empty() && bench.step.is_empty() {
            return usage("nothing to time: every figure's shape list is empty".into());
        }
        Ok(bench)
    }

    /// Figures to time (a step is one job for both its rows).
    fn jobs(&self) -> usize {
        self.decode.len() + self.prefill.len() + self.step.len()
    }
}

/// One figure of one shape.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    /// `decode scores`, `prefill scores`, `decode step eager`, `decode step graph`.
    pub figure: &'static str,
    /// `64x65536`, or `T=8192 causal`.
    pub shape: String,
    /// Median GPU time, µs.
    pub us: f64,
    /// The physical floor, µs (none: prefill on a device of unknown peak).
    pub floor_us: Option<f64>,
    /// `floor_us / us`, percent.
    pub pct_of_floor: Option<f64>,
    /// What the floor is.
    pub floor: String,
    /// Key-cache bytes read (decode figures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<usize>,
    /// Achieved `bytes / us`, GB/s (decode figures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gbs: Option<f64>,
    /// Useful FLOPs (prefill).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flops: Option<f64>,
    /// Achieved TFLOP/s (prefill).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tflops: Option<f64>,
    /// Copies of the key cache the runs rotated through to stay out of L2.
    pub l2_copies: usize,
}

impl Row {
    /// A decode figure (scores or step) reading `bytes` of key cache in `us`.
    pub fn decode(
        figure: &'static str,
        s: BatchContext,
        us: f64,
        bytes: usize,
        copies: usize,
        copy_gbs: f64,
    ) -> Self {
        let floor_us = hbm_floor_us(bytes, copy_gbs);
        Row {
            figure,
            shape: s.to_string(),
            us,
            floor_us: Some(floor_us),
            pct_of_floor: Some(pct_of_floor(floor_us, us)),
            floor: format!(
                "{:.1} MB key cache read @ {copy_gbs:.0} GB/s",
                bytes as f64 / 1e6
            ),
            bytes: Some(bytes),
            gbs: Some(bytes as f64 / (us * 1e3)),
            flops: None,
            tflops: None,
            l2_copies: copies,
        }
    }

    /// The prefill scores of `tokens` causal tokens: `flops` in `us`.
    pub fn prefill(tokens: usize, us: f64, flops: f64, peak: Option<&Fp8Peak>) -> Self {
        let floor_us = peak.map(|p| flop_floor_us(flops, p.tflops));
        Row {
            figure: "prefill scores",
            shape: format!("T={tokens} causal"),
            us,
            floor_us,
            pct_of_floor: floor_us.map(|f| pct_of_floor(f, us)),
            floor: match peak {
                Some(p) => format!(
                    "{:.3} TFLOP @ FP8 peak {:.0} TFLOP/s",
                    flops / 1e12,
                    p.tflops
                ),
                None => format!("{:.3} TFLOP; FP8 peak unknown", flops / 1e12),
            },
            bytes: None,
            gbs: None,
            flops: Some(flops),
            tflops: Some(flops / (us * 1e6)),
            l2_copies: 1,
        }
    }

    /// The achieved rate, for the table.
    fn achieved(&self) -> String {
        match (self.gbs, self.tflops) {
            (Some(g), _) => format!("{g:.0} GB/s"),
            (_, Some(t)) => format!("{t:.1} TFLOP/s"),
            _ => "-".into(),
        }
    }
}

/// The JSON document `--json` writes.
#[derive(Serialize)]
struct Document<'a> {
    op: &'static str,
    device: &'a str,
    arch: String,
    copy_bandwidth_gbs: f64,
    fp8_peak: Option<&'a Fp8Peak>,
    warmup: usize,
    iters: usize,
    heads: usize,
    dim: usize,
    page_size: usize,
    k: usize,
    decode_goal_pct: f64,
    results: &'a [Row],
}

/// `dsa bench indexer`.
pub fn run(a: &IndexerBenchArgs, json: Option<&Path>, plot: Option<&Path>) -> Result<()> {
    let config = IndexerConfig::default();
    if plot.is_some() {
        return Err(CliError::Usage(
            "`dsa bench indexer` draws no plot; use --json for its figures".into(),
        ));
    }
    let bench = IndexerBench::from_args(a, &config)?;
    let gpu = Gpu::open()?;
    // SAFETY: this command orders all its device work on `gpu.stream` and nothing has been
    // allocated yet; the decode step is captured into CUDA graphs, which event tracking breaks.
    unsafe { gpu.ctx.disable_event_tracking() };
    let copy_gbs = gpu.copy_bandwidth_gbs()?;
    let peak = fp8_peak(&gpu.name, bench.peak);
    println!(
        "dsa bench indexer on {} ({}): copy bandwidth {copy_gbs:.0} GB/s (read + write, 1 GiB)",
        gpu.name, gpu.arch
    );
    match &peak {
        Some(p) => println!("FP8 peak {:.0} TFLOP/s ({})", p.tflops, p.source),
        None => println!(
            "FP8 peak unknown for this device (pass --fp8-peak-tflops); prefill rows have no floor"
        ),
    }
    println!(
        "H={} D={} P={} k={} {:?} inputs, random data; median of {} runs after {} warm-up, CUDA \
         events; decode caches under 3x L2 replicated and rotated\n",
        config.heads,
        config.dim,
        config.page_size,
        config.k,
        config.input,
        bench.runs.iters,
        bench.runs.warmup
    );
    let rows = time_all(&gpu, &config, &bench, copy_gbs, peak.as_ref())?;
    print!("{}", table(&rows));
    if let Some(g) = goal(&rows) {
        println!("\n{g}");
    }
    if let Some(path) = json {
        let doc = Document {
            op: "indexer",
            device: &gpu.name,
            arch: gpu.arch.to_string(),
            copy_bandwidth_gbs: copy_gbs,
            fp8_peak: peak.as_ref(),
            warmup: bench.runs.warmup,
            iters: bench.runs.iters,
            heads: config.heads,
            dim: config.dim,
            page_size: config.page_size,
            k: config.k,
            decode_goal_pct: DECODE_GOAL_PCT,
            results: &rows,
        };
        let text = serde_json::to_string_pretty(&doc).expect("results serialize");
        write(path, text.as_bytes())?;
        println!("\nwrote {}", path.display());
    }
    Ok(())
}

fn time_all(
    gpu: &Gpu,
    config: &IndexerConfig,
    bench: &IndexerBench,
    copy_gbs: f64,
    peak: Option<&Fp8Peak>,
) -> Result<Vec<Row>> {
    let (s, runs) = (&gpu.stream, bench.runs);
    let bar = ProgressBar::new(bench.jobs() as u64);
    let mut rows = Vec::new();
    for &d in &bench.decode {
        bar.set_message(format!("decode scores {d}"));
        let t = timing::decode_scores(s, config, d.batch, d.context, runs)?;
        rows.push(Row::decode(
            "decode scores",
            d,
            t.us,
            t.bytes,
            t.copies,
            copy_gbs,
        ));
        bar.inc(1);
    }
    for &tokens in &bench.prefill {
        bar.set_message(format!("prefill scores {tokens}"));
        let t = timing::prefill_scores(s, config, tokens, runs)?;
        rows.push(Row::prefill(tokens, t.us, t.flops, peak));
        bar.inc(1);
    }
    for &d in &bench.step {
        bar.set_message(format!("decode step {d}"));
        let t = timing::decode_step(s, config, d.batch, d.context, runs)?;
        let bytes = timing::decode_cache_bytes(config, d.batch, d.context);
        for (figure, us) in [
            ("decode step eager", t.eager_us),
            ("decode step graph", t.graph_us),
        ] {
            rows.push(Row::decode(figure, d, us, bytes, t.copies, copy_gbs));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(rows)
}

fn table(rows: &[Row]) -> Table {
    let mut t = Table::new(&[
        "figure",
        "shape",
        "median us",
        "floor us",
        "% of floor",
        "achieved",
        "floor",
    ]);
    for r in rows {
        t.push(vec![
            r.figure.into(),
            r.shape.clone(),
            format!("{:.1}", r.us),
            r.floor_us.map_or("-".into(), |f| format!("{f:.1}")),
            r.pct_of_floor.map_or("-".into(), |p| format!("{p:.0}%")),
            r.achieved(),
            r.floor.clone(),
        ]);
    }
    t
}

/// The decode scores rows against [`DECODE_GOAL_PCT`], if any.
fn goal(rows: &[Row]) -> Option<String> {
    let verdicts: Vec<String> = rows
        .iter()
        .filter(|r| r.figure == "decode scores")
        .filter_map(|r| {
            r.pct_of_floor.map(|p| {
                let ok = if p >= DECODE_GOAL_PCT {
                    "met"
                } else {
                    "MISSED"
                };
                format!("{} {p:.0}% {ok}", r.shape)
            })
        })
        .collect();
    (!verdicts.is_empty()).then(|| {
        format!(
            "decode scores goal >= {DECODE_GOAL_PCT:.0}% of floor: {}",
            verdicts.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{BenchOp, Cli, Command};
    use clap::Parser;

    fn parse(extra: &[&str]) -> IndexerBenchArgs {
        let argv = [&["dsa", "bench", "indexer"][..], extra].concat();
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Bench(b) => match b.op {
                BenchOp::Indexer(a) => a,
                op => panic!("{op:?}"),
            },
            c => panic!("{c:?}"),
        }
    }

    fn bc(batch: usize, context: usize) -> BatchContext {
        BatchContext { batch, context }
    }

    #[test]
    fn defaults_are_the_issue_shapes() {
        let c = IndexerConfig::default();
        let b = IndexerBench::from_args(&parse(&[]), &c).unwrap();
        assert_eq!(b.decode, [bc(64, 65536), bc(1, 65536), bc(64, 8192)]);
        assert_eq!(b.prefill, [8192, 4096]);
        assert_eq!(b.step, [bc(64, 65536)]);
        assert_eq!(b.runs, Runs::default());
        assert_eq!(b.peak, None);
        assert_eq!(b.jobs(), 6);
    }

    #[test]
    fn options_parse_and_select() {
        let c = IndexerConfig::default();
        let a = parse(&[
            "--decode",
            "8x1024,2X77",
            "--prefill",
            "99",
            "--only",
            "decode,step",
            "--iters",
            "7",
            "--warmup",
            "0",
            "--fp8-peak-tflops",
            "1000",
        ]);
        let b = IndexerBench::from_args(&a, &c).unwrap();
        assert_eq!(b.decode, [bc(8, 1024), bc(2, 77)]);
        assert!(b.prefill.is_empty(), "--only drops the prefill");
        assert_eq!(b.step, [bc(64, 65536)]);
        assert_eq!(
            b.runs,
            Runs {
                warmup: 0,
                iters: 7
            }
        );
        assert_eq!(b.peak, Some(1000.0));
        let json = Cli::try_parse_from(["dsa", "bench", "indexer", "--json", "o.json"]).unwrap();
        let Command::Bench(j) = json.command else {
            panic!()
        };
        assert_eq!(j.json.as_deref(), Some(Path::new("o.json")));
    }

    #[test]
    fn malformed_options_fail_to_parse() {
        for bad in [
            &["--decode", "64"][..],
            &["--decode", "64x"],
            &["--decode", "ax5"],
            &["--step", "1x-2"],
            &["--prefill", "4k"],
            &["--only", "topk"],
            &["--iters", "-1"],
        ] {
            let argv = [&["dsa", "bench", "indexer"][..], bad].concat();
            assert!(Cli::try_parse_from(&argv).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn senseless_options_are_usage_errors() {
        let c = IndexerConfig::default();
        for bad in [
            &["--decode", "0x65536"][..],
            &["--step", "64x0"],
            &["--decode", "4096x4194304"],
            &["--prefill", "0"],
            &["--prefill", "65537"],
            &["--iters", "0"],
            &["--fp8-peak-tflops", "0"],
            &["--fp8-peak-tflops", "nan"],
        ] {
            let r = IndexerBench::from_args(&parse(bad), &c);
            assert!(matches!(r, Err(CliError::Usage(_))), "{bad:?}: {r:?}");
        }
        let nothing = IndexerBenchArgs {
            prefill: vec![],
            ..parse(&["--only", "prefill"])
        };
        let r = IndexerBench::from_args(&nothing, &c);
        assert!(matches!(r, Err(CliError::Usage(m)) if m.contains("nothing to time")));
        // The largest allowed cache: 16 GiB.
        let ok = IndexerBench::from_args(&parse(&["--decode", "128x1016800"]), &c);
        assert!(ok.is_ok());
    }

    #[test]
    fn floors_by_hand() {
        // 553,648,128 bytes at 3000 GB/s: 184.5 us.
        let f = hbm_floor_us(553_648_128, 3000.0);
        assert!((f - 184.549_376).abs() < 1e-6, "{f}");
        // 5.498e11 FLOPs at 1979 TFLOP/s: 277.8 us.
        let flops = 16384.0 * 33_558_528.0;
        let p = flop_floor_us(flops, 1979.0);
        assert!((p - 277.828_66).abs() < 1e-3, "{p}");
        assert_eq!(pct_of_floor(150.0, 200.0), 75.0);
        let r = Row::decode(
            "decode scores",
            bc(64, 65536),
            250.0,
            553_648_128,
            1,
            3000.0,
        );
        assert!((r.pct_of_floor.unwrap() - 73.82).abs() < 0.01);
        assert!((r.gbs.unwrap() - 2214.59).abs() < 0.01);
        assert_eq!(r.achieved(), "2215 GB/s");
        let peak = Fp8Peak {
            tflops: 1000.0,
            source: "test".into(),
        };
        let pre = Row::prefill(8192, 1000.0, flops, Some(&peak));
        assert!((pre.tflops.unwrap() - 549.8).abs() < 0.1);
        assert!((pre.pct_of_floor.unwrap() - 54.98).abs() < 0.01);
        assert_eq!(Row::prefill(8192, 1000.0, flops, None).pct_of_floor, None);
    }

    #[test]
    fn fp8_peaks_come_from_the_datasheets_or_the_flag() {
        let h100 = fp8_peak("NVIDIA H100 80GB HBM3", None).unwrap();
        assert_eq!(h100.tflops, 1979.0);
        assert!(h100.source.contains("H100 SXM") && h100.source.contains("3958"));
        assert_eq!(fp8_peak("NVIDIA H100 PCIe", None).unwrap().tflops, 1513.0);
        assert_eq!(fp8_peak("NVIDIA H100 NVL", None).unwrap().tflops, 1670.5);
        assert_eq!(fp8_peak("NVIDIA H200", None).unwrap().tflops, 1979.0);
        assert_eq!(fp8_peak("NVIDIA H200 NVL", None).unwrap().tflops, 1670.5);
        assert_eq!(fp8_peak("NVIDIA A100-SXM4-80GB", None), None);
        let given = fp8_peak("NVIDIA A100-SXM4-80GB", Some(500.0)).unwrap();
        assert_eq!(
            (given.tflops, given.source.as_str()),
            (500.0, "--fp8-peak-tflops")
        );
    }

    #[test]
    fn json_rows_name_their_floor() {
        let r = Row::decode("decode step graph", bc(1, 8), 10.0, 1056, 64, 1000.0);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["figure"], "decode step graph");
        assert_eq!(v["shape"], "1x8");
        assert_eq!(v["l2_copies"], 64);
        assert!(v.get("flops").is_none());
        let p = serde_json::to_value(Row::prefill(4, 1.0, 163840.0, None)).unwrap();
        assert!(p["floor_us"].is_null() && p["bytes"].is_null());
    }

    #[test]
    fn table_and_goal_lines() {
        let peak = Fp8Peak {
            tflops: 1979.0,
            source: "test".into(),
        };
        let flops = 16384.0 * 33_558_528.0;
        let rows = [
            Row::decode(
                "decode scores",
                bc(64, 65536),
                250.0,
                553_648_128,
                1,
                3000.0,
            ),
            Row::decode("decode scores", bc(1, 65536), 20.0, 8_650_752, 19, 3000.0),
            Row::prefill(8192, 1000.0, flops, Some(&peak)),
            Row::prefill(4096, 300.0, flops / 4.0, None),
        ];
        let t = table(&rows).to_string();
        assert!(t.contains("median us") && t.contains("% of floor"), "{t}");
        assert!(t.contains("74%") && t.contains("2215 GB/s"), "{t}");
        assert!(t.contains("28%") && t.contains("549.8 TFLOP/s"), "{t}");
        assert!(t.contains("FP8 peak unknown"), "{t}");
        assert_eq!(
            goal(&rows).unwrap(),
            "decode scores goal >= 60% of floor: 64x65536 74% met, 1x65536 14% MISSED"
        );
        assert_eq!(goal(&rows[2..]), None);
        println!("{t}");
    }
}
