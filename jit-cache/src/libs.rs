//! Finding the CUDA libraries with no configuration.
//!
//! cudarc loads `libnvrtc.so.13` and `libcuda.so.1` by soname on first use. For the driver that
//! is right (it comes with the GPU's driver). NVRTC, however, often lives somewhere the loader does
//! not look: a toolkit folder, or a Python wheel (`nvidia-cuda-nvrtc`, or the copy PyTorch ships).
//! We search those places and `dlopen` the file we find by its full path; the dynamic loader then
//! resolves cudarc's later `dlopen("libnvrtc.so.13")` to the already-loaded library by its soname.

use crate::error::{JitError, Result};
use once_cell::sync::OnceCell;
use std::path::{Path, PathBuf};

/// Env var naming the NVRTC library file, or a folder holding it. Checked first.
pub const NVRTC_PATH_ENV: &str = "DSA_NVRTC_PATH";

const NVRTC_SONAME: &str = "libnvrtc.so.13";

/// Where NVRTC was loaded from (`None`: the system loader found it by soname).
pub fn nvrtc_location() -> Result<Option<PathBuf>> {
    static FOUND: OnceCell<Option<PathBuf>> = OnceCell::new();
    FOUND.get_or_try_init(load_nvrtc).cloned()
}

/// Whether a CUDA driver (and so possibly a GPU) is present, without panicking if not.
pub fn driver_available() -> bool {
    // SAFETY: probing for the library only opens and closes it.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

fn load_nvrtc() -> Result<Option<PathBuf>> {
    let candidates = nvrtc_candidates();
    for path in &candidates {
        if path.is_file() {
            // NVRTC dlopens its builtins library by soname at compile time; load the copy
            // beside it first so that lookup succeeds outside the loader's search path.
            preload_builtins(path);
            // SAFETY: loading NVRTC runs only its (trusted, vendor) initialisers. The handle is
            // leaked on purpose: the library must stay loaded for the life of the process.
            match unsafe { libloading::Library::new(path) } {
                Ok(lib) => {
                    std::mem::forget(lib);
                    return Ok(Some(path.clone()));
                }
                Err(e) => eprintln!("dsa-jit-cache: could not load {}: {e}", path.display()),
            }
        }
    }
    // Last resort: the loader's own search path (LD_LIBRARY_PATH, ldconfig).
    // SAFETY: as above; only probes and closes.
    if unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Ok(None);
    }
    let mut searched = candidates;
    searched.push(PathBuf::from(format!("{NVRTC_SONAME} on the loader path")));
    Err(JitError::NvrtcNotFound { searched })
}

fn preload_builtins(nvrtc: &Path) {
    let Some(dir) = nvrtc.parent() else { return };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("libnvrtc-builtins.so.") {
            // SAFETY: as for NVRTC itself below; leaked so it stays loaded.
            if let Ok(lib) = unsafe { libloading::Library::new(e.path()) } {
                std::mem::forget(lib);
            }
        }
    }
}

/// Every file path tried, in order of preference.
fn nvrtc_candidates() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut files: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os(NVRTC_PATH_ENV) {
        let p = PathBuf::from(p);
        if p.is_dir() {
            dirs.push(p)
        } else {
            files.push(p)
        }
    }
    for var in ["CUDA_HOME", "CUDA_PATH"] {
        if let Some(root) = std::env::var_os(var) {
            dirs.push(Path::new(&root).join("lib64"));
            dirs.push(Path::new(&root).join("lib"));
        }
    }
    dirs.push(PathBuf::from("/usr/local/cuda/lib64"));
    for site in python_site_dirs() {
        // PyTorch's cu13 wheels and the standalone nvidia-cuda-nvrtc wheel.
        dirs.push(site.join("nvidia/cu13/lib"));
        dirs.push(site.join("nvidia/cuda_nvrtc/lib"));
    }
    files.extend(dirs.into_iter().map(|d| d.join(NVRTC_SONAME)));
    files
}

/// Python site-packages folders: those of an active virtualenv / conda env, then the ones the
/// `python3` on PATH reports (one subprocess, only reached when earlier places failed).
fn python_site_dirs() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for var in ["VIRTUAL_ENV", "CONDA_PREFIX"] {
        if let Some(prefix) = std::env::var_os(var) {
            out.extend(glob_python_site(Path::new(&prefix)));
        }
    }
    let script = "import site,sys;print('\\n'.join(site.getsitepackages()+[site.getusersitepackages()]+sys.path))";
    if let Ok(o) = std::process::Command::new("python3")
        .args(["-c", script])
        .output()
    {
        let text = String::from_utf8_lossy(&o.stdout);
        out.extend(text.lines().filter(|l| !l.is_empty()).map(PathBuf::from));
    }
    out
}

fn glob_python_site(prefix: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(prefix.join("lib")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
        .map(|e| e.path().join("site-packages"))
        .collect()
}
