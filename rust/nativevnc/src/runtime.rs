//! One tokio runtime per process, created on first use.
//!
//! Two facts about living inside perl shape this module:
//!
//! * os-autoinst forks after modules are loaded. A runtime created before `fork()` has no threads in the
//!   child, so the runtime has a [`ProcessOwner`]: a child creates its own and leaves the parent's alone
//!   (it is leaked; dropping it would try to join threads that do not exist in the child). Clients have one
//!   too, for the same reason: their connection tasks run in the parent's runtime.
//! * A signal delivered to a runtime thread would run perl's signal handler on a thread without a perl
//!   interpreter and crash a threaded perl. All signals are blocked in every runtime thread: the threads
//!   are created while the creating thread has them blocked (so they inherit the mask with no window),
//!   and block them again as their first action.

use std::sync::Mutex;

use tokio::runtime::{Handle, Runtime};

use crate::error::{Error, Result};

/// The process something was created in. After `fork()` the child has a copy of the parent's memory but
/// none of its threads, so what runs on threads (the runtime, a client's connection task) belongs to the
/// process that created it and must be neither used nor stopped from a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessOwner(u32);

impl ProcessOwner {
    /// The calling process.
    pub fn current() -> Self {
        ProcessOwner(std::process::id())
    }

    /// Whether the calling process is the owner (false in a child forked after creation).
    pub fn is_current(self) -> bool {
        self == Self::current()
    }

    /// A usage error in any process but the owner: a connection opened before `fork()` cannot be used in
    /// the child.
    pub fn check(self) -> Result<()> {
        if self.is_current() {
            return Ok(());
        }
        Err(Error::usage("this VNC connection was opened by the parent process; connect again in the child"))
    }
}

static RUNTIME: Mutex<Option<(ProcessOwner, Runtime)>> = Mutex::new(None);

/// The runtime of this process.
pub fn handle() -> Handle {
    let mut slot = RUNTIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((owner, rt)) = slot.as_ref() {
        if owner.is_current() {
            return rt.handle().clone();
        }
    }
    if let Some((_, inherited)) = slot.take() {
        std::mem::forget(inherited);
    }
    let rt = with_signals_blocked(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("nativevnc")
            .on_thread_start(block_all_signals)
            .enable_io()
            .enable_time()
            .build()
    })
    .expect("creating the tokio runtime");
    let handle = rt.handle().clone();
    *slot = Some((ProcessOwner::current(), rt));
    handle
}

/// Blocks every signal in the calling thread.
fn block_all_signals() {
    // SAFETY: sigfillset initialises the set; pthread_sigmask only changes this thread's mask.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
    }
}

/// Runs `f` with all signals blocked in the calling thread, then restores its mask.
fn with_signals_blocked<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: as above; the previous mask is saved and restored on the same thread.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut previous: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut previous);
        let result = f();
        libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_threads_block_all_signals() {
        let mask = handle()
            .block_on(async {
                tokio::spawn(async {
                    // SAFETY: reading this thread's signal mask.
                    unsafe {
                        let mut current: libc::sigset_t = std::mem::zeroed();
                        libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut current);
                        [libc::SIGINT, libc::SIGTERM, libc::SIGCHLD, libc::SIGALRM, libc::SIGUSR1]
                            .map(|s| libc::sigismember(&current, s))
                    }
                })
                .await
            })
            .unwrap();
        assert_eq!(mask, [1; 5]);
    }

    #[test]
    fn the_owner_is_the_creating_process() {
        let owner = ProcessOwner::current();
        assert!(owner.is_current() && owner.check().is_ok());
        let parent = ProcessOwner(owner.0 + 1);
        assert!(!parent.is_current());
        let e = parent.check().unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Usage);
        assert!(e.message().contains("opened by the parent process"), "{e}");
    }

    #[test]
    fn the_calling_thread_keeps_its_mask() {
        handle();
        // SAFETY: reading this thread's signal mask.
        let blocked = unsafe {
            let mut current: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut current);
            libc::sigismember(&current, libc::SIGUSR2)
        };
        assert_eq!(blocked, 0);
    }
}
