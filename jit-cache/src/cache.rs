//! The compile cache: memory (per process) in front of disk (per machine) in front of NVRTC.
//!
//! Two levels of memory cache:
//! - [`JitCache`] maps a content key (source, options, NVRTC version, arch) to the compiled
//!   image. Needs no GPU: this is what CI exercises and what `dsa jit warm` fills.
//! - [`KernelCache`] maps (CUDA context, typed variant) to the loaded module and its functions.
//!   A launch hits only this map: no rendering, hashing of sources or allocation.
//!
//! Each level holds a `OnceCell` per key, so N threads asking for the same missing entry at once
//! compile or load it exactly once; the others block on the cell, not on the whole map.

use crate::arch::Arch;
use crate::disk::{DiskCache, FORMAT_VERSION, Key};
use crate::error::{JitError, Result};
use crate::nvrtc::{self, ImageKind};
use crate::spec::{KernelSpec, KernelVariant};
use cudarc::driver::{CudaContext, CudaFunction, sys};
use cudarc::nvrtc::Ptx;
use dashmap::DashMap;
use once_cell::sync::{Lazy, OnceCell};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Env var: the cache folder (default `$XDG_CACHE_HOME/dsa-kernels`, else `~/.cache/dsa-kernels`).
pub const CACHE_DIR_ENV: &str = "DSA_CACHE_DIR";
/// Env var: set to `off` (or `0`) for a memory-only cache.
pub const CACHE_SWITCH_ENV: &str = "DSA_JIT_CACHE";

/// Where compiled images are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// The disk folder; `None` keeps images in memory only.
    pub dir: Option<PathBuf>,
}

impl CacheConfig {
    /// From the environment (see [`CACHE_DIR_ENV`], [`CACHE_SWITCH_ENV`]).
    pub fn from_env() -> Self {
        let off = std::env::var(CACHE_SWITCH_ENV)
            .map(|v| {
                matches!(
                    v.to_ascii_lowercase().as_str(),
                    "off" | "0" | "false" | "no"
                )
            })
            .unwrap_or(false);
        if off {
            return CacheConfig { dir: None };
        }
        let dir = std::env::var_os(CACHE_DIR_ENV)
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("dsa-kernels"))
            })
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/dsa-kernels"))
            });
        CacheConfig { dir }
    }
}

/// A compiled image.
#[derive(Debug)]
pub struct Image {
    /// CUBIN or PTX.
    pub kind: ImageKind,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// NVRTC's warnings (empty for disk hits and clean compiles).
    pub log: String,
}

/// Counters, for the CLI and the cache's own tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Kernel lookups answered from memory (the launch fast path).
    pub memory_hits: u64,
    /// Images read from disk.
    pub disk_hits: u64,
    /// NVRTC compiles.
    pub compiles: u64,
    /// Total time spent in NVRTC, nanoseconds.
    pub compile_nanos: u64,
}

#[derive(Default)]
struct Counters {
    memory_hits: AtomicU64,
    disk_hits: AtomicU64,
    compiles: AtomicU64,
    compile_nanos: AtomicU64,
}

/// Images by content key, backed by a disk folder.
pub struct JitCache {
    disk: Option<DiskCache>,
    images: DashMap<Key, Arc<OnceCell<Arc<Image>>>>,
    counters: Counters,
}

static GLOBAL: Lazy<JitCache> = Lazy::new(|| JitCache::new(CacheConfig::from_env()));

impl JitCache {
    /// The process-wide cache every kernel crate uses, configured from the environment.
    pub fn global() -> &'static JitCache {
        &GLOBAL
    }

    /// A cache with its own configuration (tests, tools).
    pub fn new(config: CacheConfig) -> Self {
        JitCache {
            disk: config.dir.and_then(DiskCache::open),
            images: DashMap::new(),
            counters: Counters::default(),
        }
    }

    /// The disk level, if any.
    pub fn disk(&self) -> Option<&DiskCache> {
        self.disk.as_ref()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            memory_hits: c.memory_hits.load(Ordering::Relaxed),
            disk_hits: c.disk_hits.load(Ordering::Relaxed),
            compiles: c.compiles.load(Ordering::Relaxed),
            compile_nanos: c.compile_nanos.load(Ordering::Relaxed),
        }
    }

    /// The content key of `spec` compiled for `arch`: everything that changes the binary.
    pub fn key(spec: &KernelSpec, arch: Arch) -> Result<Key> {
        let (major, minor) = nvrtc::version()?;
        let mut h = blake3::Hasher::new();
        h.update(b"dsa-jit-cache");
        h.update(&FORMAT_VERSION.to_le_bytes());
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        h.update(&major.to_le_bytes());
        h.update(&minor.to_le_bytes());
        h.update(arch.to_string().as_bytes());
        for part in [spec.full_source(), spec.options().join("\x1f")] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        Ok(*h.finalize().as_bytes())
    }

    /// The image of `spec` for `arch`: from memory, disk, or a fresh compile (said on stderr).
    pub fn image(&self, spec: &KernelSpec, arch: Arch) -> Result<Arc<Image>> {
        let key = Self::key(spec, arch)?;
        let cell = self.images.entry(key).or_default().clone();
        cell.get_or_try_init(|| self.load_or_compile(spec, arch, &key))
            .cloned()
    }

    fn load_or_compile(&self, spec: &KernelSpec, arch: Arch, key: &Key) -> Result<Arc<Image>> {
        if let Some((kind, bytes)) = self.disk.as_ref().and_then(|d| d.load(key)) {
            self.counters.disk_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Arc::new(Image {
                kind,
                bytes,
                log: String::new(),
            }));
        }
        let start = Instant::now();
        let compiled = nvrtc::compile(&spec.id, &spec.full_source(), &spec.options(), arch)?;
        let elapsed = start.elapsed();
        self.counters.compiles.fetch_add(1, Ordering::Relaxed);
        self.counters
            .compile_nanos
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
        if std::env::var_os("DSA_JIT_QUIET").is_none() {
            eprintln!(
                "dsa-jit-cache: compiled {} for {arch} in {:.0} ms",
                spec.id,
                elapsed.as_secs_f64() * 1e3
            );
        }
        if let Some(d) = &self.disk {
            d.store(key, compiled.kind, &compiled.image);
        }
        Ok(Arc::new(Image {
            kind: compiled.kind,
            bytes: compiled.image,
            log: compiled.log,
        }))
    }

    fn count_memory_hit(&self) {
        self.counters.memory_hits.fetch_add(1, Ordering::Relaxed);
    }
}

/// A module loaded into one context, with its entry points resolved in spec order.
pub struct LoadedKernel {
    // Each function holds its module alive.
    functions: Vec<(&'static str, CudaFunction)>,
}

impl LoadedKernel {
    /// The entry point with `role`. Roles come from the same variant that built the spec, so a
    /// missing one is a bug in the kernel crate (caught by its variant test).
    pub fn function(&self, role: &str) -> &CudaFunction {
        self.functions
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, f)| f)
            .unwrap_or_else(|| panic!("kernel has no entry point {role}"))
    }
}

/// Loaded kernels of one family, by (context, variant). Kernel crates hold one in a static.
pub struct KernelCache<V: KernelVariant> {
    loaded: DashMap<(usize, V), Arc<OnceCell<Arc<LoadedKernel>>>>,
    /// Dynamic shared memory (bytes) each variant's functions may use above the 48 KB default.
    max_dynamic_smem: fn(&V) -> u32,
}

impl<V: KernelVariant> KernelCache<V> {
    /// An empty cache; `max_dynamic_smem` tells, per variant, the opt-in shared memory to set.
    pub fn new(max_dynamic_smem: fn(&V) -> u32) -> Self {
        KernelCache {
            loaded: DashMap::new(),
            max_dynamic_smem,
        }
    }

    /// The variant's kernel in `ctx`, compiled/loaded on first use.
    pub fn get(&self, ctx: &Arc<CudaContext>, variant: &V) -> Result<Arc<LoadedKernel>> {
        self.get_in(JitCache::global(), ctx, variant)
    }

    /// As [`KernelCache::get`], with an explicit image cache.
    pub fn get_in(
        &self,
        jit: &JitCache,
        ctx: &Arc<CudaContext>,
        variant: &V,
    ) -> Result<Arc<LoadedKernel>> {
        let key = (ctx.cu_ctx() as usize, variant.clone());
        if let Some(k) = self.loaded.get(&key).and_then(|c| c.get().cloned()) {
            jit.count_memory_hit();
            return Ok(k);
        }
        let cell = self.loaded.entry(key).or_default().clone();
        cell.get_or_try_init(|| self.load(jit, ctx, variant))
            .cloned()
    }

    fn load(
        &self,
        jit: &JitCache,
        ctx: &Arc<CudaContext>,
        variant: &V,
    ) -> Result<Arc<LoadedKernel>> {
        let spec = variant.spec();
        let (major, minor) = ctx
            .compute_capability()
            .map_err(|e| JitError::driver("reading the compute capability", e))?;
        let arch = Arch::for_device(major as u32, minor as u32);
        let image = jit.image(&spec, arch)?;
        let ptx = match image.kind {
            ImageKind::Cubin => Ptx::from_binary(image.bytes.clone()),
            ImageKind::Ptx => Ptx::from_src(String::from_utf8_lossy(&image.bytes).into_owned()),
        };
        let module = ctx
            .load_module(ptx)
            .map_err(|e| JitError::driver(format!("loading module {}", spec.id), e))?;
        let smem = (self.max_dynamic_smem)(variant);
        let mut functions = Vec::with_capacity(spec.entries.len());
        for (role, symbol) in &spec.entries {
            let f = module
                .load_function(symbol)
                .map_err(|e| JitError::driver(format!("finding {symbol} in {}", spec.id), e))?;
            if smem > 0 {
                f.set_attribute(
                    sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                    smem as i32,
                )
                .map_err(|e| JitError::driver(format!("raising shared memory of {symbol}"), e))?;
            }
            functions.push((*role, f));
        }
        Ok(Arc::new(LoadedKernel { functions }))
    }
}
