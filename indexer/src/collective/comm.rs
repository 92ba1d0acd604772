//! The communicator handle: creation (unique id, borrowed raw comm, all local GPUs), NCCL
//! calls with non-blocking completion, timeouts with abort, and buffer registration.
//!
//! ## Failure model
//! A collective only enqueues: in blocking mode (the default, [`CommConfig::blocking`]) NCCL
//! returns once its kernel is on the stream, so the host never waits for a peer there; in
//! non-blocking mode a call that answers `ncclInProgress` is polled with
//! `ncclCommGetAsyncError` until done, for at most [`CommConfig::timeout`]. Waiting for the
//! device ([`Communicator::wait`], [`Communicator::check`]) polls a CUDA event and the
//! communicator's asynchronous error together. When the deadline passes, or NCCL reports an
//! asynchronous error, a communicator we own is aborted (`ncclCommAbort`, which also makes the
//! NCCL kernels still spinning on the device exit) and the call returns
//! [`CollectiveError::Timeout`] or [`CollectiveError::Nccl`]; later calls return
//! [`CollectiveError::Aborted`]. A borrowed communicator is never aborted: the error tells its
//! owner to do it.

use super::error::{CollectiveError, Result};
use super::nccl::{self, Status};
use cudarc::driver::{CudaContext, CudaStream};
use cudarc::nccl::sys;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Source of communicator identities (what registered buffers are bound to).
static NEXT_COMM_ID: AtomicU64 = AtomicU64::new(1);

/// Timeouts and failure handling of one communicator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommConfig {
    /// Longest wait for a collective to be enqueued or for the device to finish it.
    pub timeout: Duration,
    /// Longest wait for communicator creation (every rank must join); non-blocking
    /// communicators only (`blocking: false`): NCCL's blocking creation returns when every rank
    /// has joined, however long that takes.
    pub init_timeout: Duration,
    /// Abort a communicator we own when a wait times out (ignored for borrowed ones).
    pub abort_on_timeout: bool,
    /// Sleep between two polls of the device and of NCCL's asynchronous error, once a wait has
    /// lasted `spin`.
    pub poll_interval: Duration,
    /// How long a wait polls back to back (yielding the thread) before it sleeps between polls:
    /// an enqueue or a short collective completes within microseconds, and one sleep costs more
    /// than that (two GPUs, session 4: every eager verify or broadcast took ~130 µs with
    /// sleeps from the first poll).
    pub spin: Duration,
    /// Create our communicators in NCCL's blocking mode. Then each collective is enqueued by
    /// the calling thread. In non-blocking mode NCCL hands every call to a new host thread: on
    /// two H200s that made each eager verify or broadcast cost 50–70 µs of host time (session
    /// 5, BENCHMARKS.md). Device waits time out and abort in both modes. Only creation differs:
    /// non-blocking creation can time out ([`Self::init_timeout`]).
    pub blocking: bool,
}

impl Default for CommConfig {
    fn default() -> Self {
        CommConfig {
            timeout: Duration::from_secs(60),
            init_timeout: Duration::from_secs(300),
            abort_on_timeout: true,
            poll_interval: Duration::from_micros(50),
            spin: Duration::from_micros(500),
            blocking: true,
        }
    }
}

impl CommConfig {
    /// The default config with `timeout` for both collectives and creation.
    pub fn with_timeout(timeout: Duration) -> Self {
        CommConfig {
            timeout,
            init_timeout: timeout,
            ..CommConfig::default()
        }
    }
}

/// An NCCL unique id: made by one rank, sent to the others by the engine.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct UniqueId([u8; UniqueId::BYTES]);

impl UniqueId {
    /// Size of an NCCL unique id.
    pub const BYTES: usize = 128;

    /// A fresh id from NCCL (`ncclGetUniqueId`; needs libnccl).
    pub fn new() -> Result<Self> {
        nccl::ensure_loaded()?;
        let mut id = sys::ncclUniqueId { internal: [0; 128] };
        // SAFETY: the library is loaded; ncclGetUniqueId writes one ncclUniqueId.
        let res = unsafe { sys::ncclGetUniqueId(&mut id) };
        nccl::status("ncclGetUniqueId", res, std::ptr::null_mut())?;
        Ok(UniqueId(id.internal.map(|c| c as u8)))
    }

    /// An id received as bytes. Refuses a wrong length and an all-zero id (never made by
    /// NCCL; the usual sign of an id that was not filled in).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; Self::BYTES] = bytes.try_into().map_err(|_| {
            CollectiveError::InvalidUniqueId(format!(
                "{} bytes, expected {}",
                bytes.len(),
                Self::BYTES
            ))
        })?;
        if arr.iter().all(|&b| b == 0) {
            return Err(CollectiveError::InvalidUniqueId(
                "all bytes are zero (not an id made by ncclGetUniqueId)".into(),
            ));
        }
        Ok(UniqueId(arr))
    }

    /// An id received as 256 hex digits.
    pub fn from_hex(hex: &str) -> Result<Self> {
        let hex = hex.trim();
        if hex.len() != 2 * Self::BYTES || !hex.is_ascii() {
            return Err(CollectiveError::InvalidUniqueId(format!(
                "{} hex characters, expected {}",
                hex.len(),
                2 * Self::BYTES
            )));
        }
        let bytes = (0..Self::BYTES)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
            .collect::<std::result::Result<Vec<u8>, _>>()
            .map_err(|e| CollectiveError::InvalidUniqueId(format!("bad hex: {e}")))?;
        Self::from_bytes(&bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; Self::BYTES] {
        &self.0
    }

    /// 256 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn to_sys(self) -> sys::ncclUniqueId {
        sys::ncclUniqueId {
            internal: self.0.map(|b| b as std::ffi::c_char),
        }
    }
}

impl fmt::Debug for UniqueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UniqueId({}..)", &self.to_hex()[..16])
    }
}

/// Checks a (rank, world size) pair and converts it to NCCL's ints.
pub fn validate_world(rank: usize, world_size: usize) -> Result<(i32, i32)> {
    let ws = i32::try_from(world_size)
        .ok()
        .filter(|&w| w >= 1)
        .ok_or(CollectiveError::InvalidWorldSize { world_size })?;
    if rank >= world_size {
        return Err(CollectiveError::InvalidRank { rank, world_size });
    }
    Ok((rank as i32, ws))
}

#[derive(Debug, Default)]
struct State {
    aborted: bool,
}

pub(crate) struct Inner {
    raw: sys::ncclComm_t,
    ctx: Arc<CudaContext>,
    rank: usize,
    world_size: usize,
    device: usize,
    pub(crate) id: u64,
    owned: bool,
    config: CommConfig,
    state: Mutex<State>,
}

// SAFETY: the raw communicator is only touched while holding `state`'s mutex (or in Drop,
// with exclusive access), which serialises this crate's NCCL calls on it as NCCL requires; the
// context is an Arc<CudaContext>, itself Send + Sync.
unsafe impl Send for Inner {}
// SAFETY: as above: shared access goes through the mutex.
unsafe impl Sync for Inner {}

impl Inner {
    fn lock(&self) -> Result<MutexGuard<'_, State>> {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.aborted {
            return Err(CollectiveError::Aborted(self.id));
        }
        Ok(st)
    }

    fn bind(&self) -> Result<()> {
        self.ctx
            .bind_to_thread()
            .map_err(|e| CollectiveError::driver("binding the communicator's context", e))
    }

    /// Aborts if we own the communicator; returns whether it is now aborted.
    fn abort_locked(&self, st: &mut State) -> bool {
        if !self.owned {
            return false;
        }
        if !st.aborted {
            // SAFETY: we own `raw`, it is live (not aborted) and the mutex is held.
            let _ = unsafe { sys::ncclCommAbort(self.raw) };
            st.aborted = true;
        }
        true
    }

    /// NCCL's asynchronous state: `Ok(true)` done, `Ok(false)` in progress; an error aborts a
    /// communicator we own (NCCL requires it after an asynchronous error).
    fn async_state(&self, st: &mut State, call: &'static str) -> Result<bool> {
        let mut e = sys::ncclResult_t::ncclSuccess;
        // SAFETY: `raw` is live (not aborted, mutex held); writes one ncclResult_t.
        let res = unsafe { sys::ncclCommGetAsyncError(self.raw, &mut e) };
        nccl::status("ncclCommGetAsyncError", res, self.raw)?;
        match e {
            sys::ncclResult_t::ncclSuccess => Ok(true),
            sys::ncclResult_t::ncclInProgress => Ok(false),
            other => {
                let err = nccl::error(call, other, self.raw);
                self.abort_locked(st);
                Err(err)
            }
        }
    }

    fn timed_out(&self, st: &mut State, what: &'static str, timeout: Duration) -> CollectiveError {
        let aborted = self.config.abort_on_timeout && self.abort_locked(st);
        CollectiveError::Timeout {
            what,
            timeout,
            aborted,
        }
    }

    /// Polls until a non-blocking operation completes.
    fn poll_ready(&self, st: &mut State, call: &'static str, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            if self.async_state(st, call)? {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(self.timed_out(st, call, timeout));
            }
            self.pause(start);
        }
    }

    /// Between two polls of a wait that began at `start`: yield during the first `spin`, then
    /// sleep `poll_interval`.
    fn pause(&self, start: Instant) {
        if start.elapsed() < self.config.spin {
            std::thread::yield_now();
        } else {
            std::thread::sleep(self.config.poll_interval);
        }
    }

    /// One NCCL call on this communicator, completed (non-blocking mode) before returning.
    pub(crate) fn call(
        &self,
        call: &'static str,
        f: impl FnOnce(sys::ncclComm_t) -> sys::ncclResult_t,
    ) -> Result<()> {
        let mut st = self.lock()?;
        self.bind()?;
        match nccl::status(call, f(self.raw), self.raw)? {
            Status::Done => Ok(()),
            Status::InProgress => self.poll_ready(&mut st, call, self.config.timeout),
        }
    }

    /// Waits for everything enqueued on `stream` so far, watching NCCL's asynchronous error.
    fn wait_stream(&self, stream: &CudaStream, what: &'static str) -> Result<()> {
        let mut st = self.lock()?;
        let drv = |c: &'static str| move |e| CollectiveError::driver(c, e);
        let event = stream
            .context()
            .new_event(None)
            .map_err(drv("creating the wait event"))?;
        event
            .record(stream)
            .map_err(drv("recording the wait event"))?;
        let start = Instant::now();
        loop {
            if event
                .try_is_complete()
                .map_err(drv("waiting for the stream"))?
            {
                return Ok(());
            }
            self.async_state(&mut st, what)?;
            if start.elapsed() > self.config.timeout {
                return Err(self.timed_out(&mut st, what, self.config.timeout));
            }
            self.pause(start);
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.owned {
            return; // borrowed: the engine owns it
        }
        let st = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        if st.aborted {
            return; // ncclCommAbort already freed it
        }
        let _ = self.ctx.bind_to_thread();
        let raw = self.raw;
        // SAFETY: we own `raw`, it is live, and Drop has exclusive access.
        let finalized = match unsafe { sys::ncclCommFinalize(raw) } {
            sys::ncclResult_t::ncclSuccess => true,
            sys::ncclResult_t::ncclInProgress => {
                let start = Instant::now();
                loop {
                    let mut e = sys::ncclResult_t::ncclSuccess;
                    // SAFETY: as above; writes one ncclResult_t.
                    unsafe { sys::ncclCommGetAsyncError(raw, &mut e) };
                    match e {
                        sys::ncclResult_t::ncclSuccess => break true,
                        sys::ncclResult_t::ncclInProgress
                            if start.elapsed() < self.config.timeout =>
                        {
                            std::thread::sleep(self.config.poll_interval)
                        }
                        _ => break false,
                    }
                }
            }
            _ => false,
        };
        // SAFETY: as above; after either call `raw` is never used again.
        unsafe {
            if finalized {
                sys::ncclCommDestroy(raw);
            } else {
                sys::ncclCommAbort(raw);
            }
        }
    }
}

/// A handle on one rank of an NCCL communicator, bound to one CUDA device.
///
/// Cloning shares the same communicator; it is finalised and destroyed (if we own it) when the
/// last clone and the last [`super::RegisteredBuffer`] on it are dropped.
#[derive(Clone)]
pub struct Communicator {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Communicator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Communicator")
            .field("id", &self.inner.id)
            .field("rank", &self.inner.rank)
            .field("world_size", &self.inner.world_size)
            .field("device", &self.inner.device)
            .field("borrowed", &!self.inner.owned)
            .finish()
    }
}

fn new_inner(
    raw: sys::ncclComm_t,
    ctx: &Arc<CudaContext>,
    rank: usize,
    world_size: usize,
    owned: bool,
    config: CommConfig,
) -> Inner {
    Inner {
        raw,
        ctx: ctx.clone(),
        rank,
        world_size,
        device: ctx.ordinal(),
        id: NEXT_COMM_ID.fetch_add(1, Ordering::Relaxed),
        owned,
        config,
        state: Mutex::new(State::default()),
    }
}

/// Connects new communicators' ranks ([`super::connect`]); aborts them if that fails.
fn connect_or_abort(comms: &[Communicator]) -> Result<()> {
    super::connect::connect(comms).inspect_err(|_| {
        for c in comms {
            let _ = c.abort();
        }
    })
}

impl Communicator {
    /// Joins the communicator of `id` as `rank` of `world_size` on `ctx`'s device (every rank,
    /// in any process or node, calls this with the same id). Waits for all ranks: up to
    /// [`CommConfig::init_timeout`] when not [`CommConfig::blocking`], else as long as it takes.
    /// Then the ranks are connected for the verify and the broadcast (a few collectives, on a
    /// stream of their own), so that later enqueues never wait for a peer and can be captured.
    pub fn from_unique_id(
        ctx: &Arc<CudaContext>,
        id: &UniqueId,
        rank: usize,
        world_size: usize,
        config: CommConfig,
    ) -> Result<Self> {
        let (r, ws) = validate_world(rank, world_size)?;
        let version = nccl::ensure_loaded()?;
        ctx.bind_to_thread()
            .map_err(|e| CollectiveError::driver("binding the context", e))?;
        let mut cfg = nccl::config(config.blocking, version);
        let mut raw: sys::ncclComm_t = std::ptr::null_mut();
        // SAFETY: the library is loaded; NCCL writes the new comm to `raw` and reads `cfg`.
        let res = unsafe { sys::ncclCommInitRankConfig(&mut raw, ws, id.to_sys(), r, &mut cfg) };
        let status = nccl::status("ncclCommInitRankConfig", res, raw);
        if raw.is_null() {
            status?;
            return Err(CollectiveError::Nccl {
                call: "ncclCommInitRankConfig",
                code: "ncclInternalError".into(),
                message: "no communicator returned".into(),
            });
        }
        // From here the Inner owns `raw`: errors abort it through Drop or abort_locked.
        let timeout = config.init_timeout;
        let comm = Communicator {
            inner: Arc::new(new_inner(raw, ctx, rank, world_size, true, config)),
        };
        let mut st = comm.inner.lock()?;
        match status {
            Ok(Status::Done) => {}
            Ok(Status::InProgress) => {
                comm.inner
                    .poll_ready(&mut st, "ncclCommInitRankConfig", timeout)?
            }
            Err(e) => {
                comm.inner.abort_locked(&mut st);
                return Err(e);
            }
        }
        drop(st);
        connect_or_abort(std::slice::from_ref(&comm))?;
        Ok(comm)
    }

    /// Wraps a communicator created and owned by an engine. We never finalise, destroy or
    /// abort it; rank, world size and device are read from NCCL.
    ///
    /// # Safety
    /// `raw` must be a live `ncclComm_t` that stays live while this handle, its clones and any
    /// buffer registered through it exist, and the engine must not call NCCL on it concurrently
    /// with this crate (NCCL communicators are not thread-safe).
    pub unsafe fn from_raw_borrowed(
        raw: sys::ncclComm_t,
        ctx: &Arc<CudaContext>,
        config: CommConfig,
    ) -> Result<Self> {
        if raw.is_null() {
            return Err(CollectiveError::Nccl {
                call: "ncclCommCount",
                code: "ncclInvalidArgument".into(),
                message: "null communicator handle".into(),
            });
        }
        nccl::ensure_loaded()?;
        let (mut count, mut rank, mut dev) = (0, 0, 0);
        // SAFETY: the caller promises `raw` is live; each call writes one int.
        unsafe {
            nccl::status("ncclCommCount", sys::ncclCommCount(raw, &mut count), raw)?;
            nccl::status(
                "ncclCommUserRank",
                sys::ncclCommUserRank(raw, &mut rank),
                raw,
            )?;
            nccl::status(
                "ncclCommCuDevice",
                sys::ncclCommCuDevice(raw, &mut dev),
                raw,
            )?;
        }
        let (world_size, rank) = (count.max(0) as usize, rank.max(0) as usize);
        validate_world(rank, world_size)?;
        if dev as usize != ctx.ordinal() {
            return Err(CollectiveError::DeviceMismatch {
                what: "context",
                comm_device: dev as usize,
                other_device: ctx.ordinal(),
            });
        }
        let config = CommConfig {
            abort_on_timeout: false,
            ..config
        };
        Ok(Communicator {
            inner: Arc::new(new_inner(raw, ctx, rank, world_size, false, config)),
        })
    }

    /// One communicator over all the given devices of this process (rank i on `ctxs[i]`),
    /// created together in one NCCL group. For tests and tools; engines pass ids or comms.
    /// Drive each returned handle from its own thread: a collective waits for its peers, so one
    /// thread issuing them for several ranks in turn would time out.
    pub fn all_local(ctxs: &[Arc<CudaContext>], config: CommConfig) -> Result<Vec<Self>> {
        validate_world(0, ctxs.len())?;
        let id = UniqueId::new()?;
        let version = nccl::ensure_loaded()?;
        let n = ctxs.len() as i32;
        let mut cfgs: Vec<sys::ncclConfig_t> = (0..ctxs.len())
            .map(|_| nccl::config(config.blocking, version))
            .collect();
        let mut raws: Vec<sys::ncclComm_t> = vec![std::ptr::null_mut(); ctxs.len()];
        let mut first_err = None;
        // SAFETY: the library is loaded; group start/end bracket the inits, each of which
        // writes one comm and reads one config that outlive the group.
        unsafe {
            nccl::status(
                "ncclGroupStart",
                sys::ncclGroupStart(),
                std::ptr::null_mut(),
            )?;
            for (i, ctx) in ctxs.iter().enumerate() {
                if let Err(e) = ctx.bind_to_thread() {
                    first_err.get_or_insert(CollectiveError::driver("binding a context", e));
                    continue;
                }
                let res = sys::ncclCommInitRankConfig(
                    &mut raws[i],
                    n,
                    id.to_sys(),
                    i as i32,
                    &mut cfgs[i],
                );
                if let Err(e) = nccl::status("ncclCommInitRankConfig", res, raws[i]) {
                    first_err.get_or_insert(e);
                }
            }
            if let Err(e) = nccl::status("ncclGroupEnd", sys::ncclGroupEnd(), std::ptr::null_mut())
            {
                first_err.get_or_insert(e);
            }
        }
        let comms: Vec<Communicator> = raws
            .iter()
            .zip(ctxs)
            .enumerate()
            .filter(|(_, (raw, _))| !raw.is_null())
            .map(|(i, (&raw, ctx))| Communicator {
                inner: Arc::new(new_inner(raw, ctx, i, ctxs.len(), true, config.clone())),
            })
            .collect();
        if let Some(e) = first_err {
            for c in &comms {
                let _ = c.abort();
            }
            return Err(e);
        }
        if comms.len() != ctxs.len() {
            return Err(CollectiveError::Nccl {
                call: "ncclCommInitRankConfig",
                code: "ncclInternalError".into(),
                message: "a communicator was not returned".into(),
            });
        }
        for c in &comms {
            let mut st = c.inner.lock()?;
            if let Err(e) =
                c.inner
                    .poll_ready(&mut st, "ncclCommInitRankConfig", config.init_timeout)
            {
                drop(st);
                for c in &comms {
                    let _ = c.abort();
                }
                return Err(e);
            }
        }
        connect_or_abort(&comms)?;
        Ok(comms)
    }

    /// This rank.
    pub fn rank(&self) -> usize {
        self.inner.rank
    }
    /// Ranks in the communicator.
    pub fn world_size(&self) -> usize {
        self.inner.world_size
    }
    /// The CUDA device ordinal the communicator runs on.
    pub fn device(&self) -> usize {
        self.inner.device
    }
    /// The CUDA context given at creation.
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.inner.ctx
    }
    /// This handle's identity, unique in the process (what registered buffers are bound to).
    pub fn id(&self) -> u64 {
        self.inner.id
    }
    /// Whether the communicator is borrowed from an engine (never destroyed or aborted by us).
    pub fn is_borrowed(&self) -> bool {
        !self.inner.owned
    }
    /// The timeouts in force.
    pub fn config(&self) -> &CommConfig {
        &self.inner.config
    }
    /// The raw `ncclComm_t` (still owned by this handle or by the engine that lent it).
    pub fn raw(&self) -> sys::ncclComm_t {
        self.inner.raw
    }
    /// Whether the communicator has been aborted.
    pub fn is_aborted(&self) -> bool {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .aborted
    }

    /// Aborts a communicator we own (`ncclCommAbort`); returns `false` for a borrowed one,
    /// which is left alone.
    pub fn abort(&self) -> Result<bool> {
        let mut st = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        Ok(self.inner.abort_locked(&mut st))
    }

    /// NCCL's asynchronous error for this communicator, as a typed error (an error aborts a
    /// communicator we own).
    pub fn async_error(&self) -> Result<()> {
        let mut st = self.inner.lock()?;
        self.inner
            .async_state(&mut st, "ncclCommGetAsyncError")
            .map(|_| ())
    }

    /// Waits until `stream` has finished everything enqueued so far, for at most
    /// [`CommConfig::timeout`], failing on NCCL's asynchronous errors (see the module docs).
    pub fn wait(&self, stream: &CudaStream) -> Result<()> {
        self.check_stream(stream)?;
        self.inner.wait_stream(stream, "waiting for the stream")
    }

    pub(crate) fn wait_for(&self, stream: &CudaStream, what: &'static str) -> Result<()> {
        self.check_stream(stream)?;
        self.inner.wait_stream(stream, what)
    }

    pub(crate) fn call(
        &self,
        call: &'static str,
        f: impl FnOnce(sys::ncclComm_t) -> sys::ncclResult_t,
    ) -> Result<()> {
        self.inner.call(call, f)
    }

    /// Waits (at most [`CommConfig::timeout`]) until NCCL has finished the calls issued so far
    /// (a non-blocking communicator's group may still be in progress after `ncclGroupEnd`).
    pub(crate) fn ready(&self, call: &'static str) -> Result<()> {
        let mut st = self.inner.lock()?;
        self.inner
            .poll_ready(&mut st, call, self.inner.config.timeout)
    }

    /// Refuses a stream on another device than the communicator's.
    pub fn check_stream(&self, stream: &CudaStream) -> Result<()> {
        let other = stream.context().ordinal();
        if other != self.inner.device {
            return Err(CollectiveError::DeviceMismatch {
                what: "stream",
                comm_device: self.inner.device,
                other_device: other,
            });
        }
        Ok(())
    }

    /// Refuses a buffer registered with another communicator.
    pub fn check_binding(&self, what: &'static str, registered_with: Option<u64>) -> Result<()> {
        match registered_with {
            Some(other) if other != self.inner.id => Err(CollectiveError::ForeignBuffer {
                what,
                registered_with: other,
                used_with: self.inner.id,
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn world_validation() {
        assert_eq!(validate_world(0, 1).unwrap(), (0, 1));
        assert_eq!(validate_world(7, 8).unwrap(), (7, 8));
        assert!(matches!(
            validate_world(0, 0),
            Err(CollectiveError::InvalidWorldSize { world_size: 0 })
        ));
        assert!(matches!(
            validate_world(2, 2),
            Err(CollectiveError::InvalidRank {
                rank: 2,
                world_size: 2
            })
        ));
        assert!(matches!(
            validate_world(0, i32::MAX as usize + 1),
            Err(CollectiveError::InvalidWorldSize { .. })
        ));
    }

    #[test]
    fn unique_id_validation_and_hex_round_trip() {
        assert!(matches!(
            UniqueId::from_bytes(&[1; 127]),
            Err(CollectiveError::InvalidUniqueId(_))
        ));
        assert!(matches!(
            UniqueId::from_bytes(&[0; 128]),
            Err(CollectiveError::InvalidUniqueId(_))
        ));
        let bytes: Vec<u8> = (0..128u32).map(|i| (i * 37 % 256) as u8).collect();
        let id = UniqueId::from_bytes(&bytes).unwrap();
        assert_eq!(id.as_bytes().as_slice(), bytes.as_slice());
        let hex = id.to_hex();
        assert_eq!(hex.len(), 256);
        assert_eq!(UniqueId::from_hex(&hex).unwrap(), id);
        assert!(UniqueId::from_hex(&hex[..254]).is_err());
        assert!(UniqueId::from_hex(&"zz".repeat(128)).is_err());
        assert!(format!("{id:?}").starts_with("UniqueId("));
    }

    #[test]
    fn config_defaults_are_bounded() {
        let c = CommConfig::default();
        assert!(c.abort_on_timeout && c.blocking);
        assert!(c.timeout <= Duration::from_secs(600));
        let t = CommConfig::with_timeout(Duration::from_secs(2));
        assert_eq!(
            (t.timeout, t.init_timeout),
            (Duration::from_secs(2), Duration::from_secs(2))
        );
    }
}
