//! NVRTC: compile one source to a CUBIN (or PTX), keeping the log on success too.
//!
//! cudarc's safe layer returns PTX only and drops the log of a successful compile; we need
//! CUBIN for the exact arch and the warnings (CI fails on any), so this goes one layer down.

use crate::arch::Arch;
use crate::error::{JitError, Result};
use crate::libs;
use cudarc::nvrtc::{result, sys};
use std::ffi::{CStr, CString, c_char, c_int};

/// What NVRTC produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageKind {
    /// Machine code for exactly one arch.
    Cubin,
    /// PTX, JIT-compiled by the driver at load (used for archs NVRTC cannot target directly).
    Ptx,
}

/// A compiled kernel image and NVRTC's log (empty when there were no warnings).
#[derive(Clone, Debug)]
pub struct Compiled {
    /// CUBIN or PTX bytes (PTX without the trailing NUL).
    pub image: Vec<u8>,
    /// Which of the two.
    pub kind: ImageKind,
    /// NVRTC's log: warnings on success.
    pub log: String,
}

/// NVRTC's version, e.g. (13, 0). Loads NVRTC if needed.
pub fn version() -> Result<(i32, i32)> {
    libs::nvrtc_location()?;
    let (mut major, mut minor) = (0, 0);
    // SAFETY: NVRTC is loaded (above); both out-pointers are valid for writes.
    unsafe { sys::nvrtcVersion(&mut major, &mut minor) }
        .result()
        .map_err(|e| nvrtc_err("nvrtcVersion", e))?;
    Ok((major, minor))
}

/// The real architectures (`sm_XY` codes) this NVRTC can emit CUBIN for.
pub fn supported_archs() -> Result<Vec<u32>> {
    libs::nvrtc_location()?;
    let mut n: c_int = 0;
    // SAFETY: NVRTC is loaded; `n` is a valid out-pointer.
    unsafe { sys::nvrtcGetNumSupportedArchs(&mut n) }
        .result()
        .map_err(|e| nvrtc_err("nvrtcGetNumSupportedArchs", e))?;
    let mut codes = vec![0 as c_int; n.max(0) as usize];
    // SAFETY: `codes` holds exactly the number of entries NVRTC reported.
    unsafe { sys::nvrtcGetSupportedArchs(codes.as_mut_ptr()) }
        .result()
        .map_err(|e| nvrtc_err("nvrtcGetSupportedArchs", e))?;
    Ok(codes.into_iter().map(|c| c as u32).collect())
}

/// How to target `arch`: CUBIN when NVRTC knows it, else PTX for the newest virtual arch not
/// above it (the driver finishes the job at load time).
pub fn target_for(arch: Arch) -> Result<(String, ImageKind)> {
    let supported = supported_archs()?;
    if supported.contains(&arch.code()) {
        return Ok((arch.to_string(), ImageKind::Cubin));
    }
    let best = supported
        .iter()
        .copied()
        .filter(|&c| c <= arch.code())
        .max()
        .ok_or_else(|| JitError::Arch(format!("{arch}: NVRTC supports only {supported:?}")))?;
    Ok((format!("compute_{best}"), ImageKind::Ptx))
}

/// Compile `source` (a whole translation unit) with `options` for `arch`.
/// `variant` names the kernel in errors.
pub fn compile(variant: &str, source: &str, options: &[String], arch: Arch) -> Result<Compiled> {
    libs::nvrtc_location()?;
    let (target, kind) = target_for(arch)?;
    let mut all = options.to_vec();
    all.push(format!("--gpu-architecture={target}"));

    let src = CString::new(source).expect("kernel sources contain no NUL byte");
    let name = CString::new(format!("{variant}.cu")).expect("variant ids contain no NUL byte");
    let prog = Program(
        result::create_program(&src, Some(&name))
            .map_err(|e| nvrtc_err("nvrtcCreateProgram", e))?,
    );
    // SAFETY: `prog` is a live program; `src` and `name` outlive it (dropped after `prog`).
    let status = unsafe { result::compile_program(prog.0, &all) };
    let log = prog.log()?;
    if let Err(e) = status {
        return Err(JitError::Compile {
            variant: variant.to_string(),
            status: format!("{:?}", e.0),
            options: all,
            log,
        });
    }
    let image = match kind {
        ImageKind::Cubin => prog.cubin()?,
        ImageKind::Ptx => {
            // SAFETY: `prog` compiled successfully.
            let ptx =
                unsafe { result::get_ptx(prog.0) }.map_err(|e| nvrtc_err("nvrtcGetPTX", e))?;
            let mut bytes: Vec<u8> = ptx.into_iter().map(|c| c as u8).collect();
            while bytes.last() == Some(&0) {
                bytes.pop();
            }
            bytes
        }
    };
    Ok(Compiled { image, kind, log })
}

/// Owns an `nvrtcProgram` and destroys it on drop, on every path.
struct Program(sys::nvrtcProgram);

impl Program {
    fn log(&self) -> Result<String> {
        // SAFETY: `self.0` is a live program.
        let raw = unsafe { result::get_program_log(self.0) }
            .map_err(|e| nvrtc_err("nvrtcGetProgramLog", e))?;
        // SAFETY: NVRTC NUL-terminates the log within the buffer it sized.
        let text = unsafe { CStr::from_ptr(raw.as_ptr() as *const c_char) };
        Ok(text.to_string_lossy().trim().to_string())
    }

    fn cubin(&self) -> Result<Vec<u8>> {
        let mut size = 0usize;
        // SAFETY: `self.0` compiled successfully; `size` is a valid out-pointer.
        unsafe { sys::nvrtcGetCUBINSize(self.0, &mut size) }
            .result()
            .map_err(|e| nvrtc_err("nvrtcGetCUBINSize", e))?;
        let mut bytes = vec![0u8; size];
        // SAFETY: `bytes` has exactly the size NVRTC reported.
        unsafe { sys::nvrtcGetCUBIN(self.0, bytes.as_mut_ptr() as *mut c_char) }
            .result()
            .map_err(|e| nvrtc_err("nvrtcGetCUBIN", e))?;
        Ok(bytes)
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        // SAFETY: created by nvrtcCreateProgram and destroyed only here.
        let _ = unsafe { result::destroy_program(self.0) };
    }
}

fn nvrtc_err(call: &'static str, e: result::NvrtcError) -> JitError {
    JitError::Nvrtc {
        call,
        status: format!("{:?}", e.0),
    }
}
