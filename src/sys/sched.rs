//! Protection of the daemon's timing against a loaded machine: a real-time scheduling class,
//! locked memory and an OOM score adjustment (`globals` options `sched_policy`,
//! `sched_priority`, `lock_memory`, `oom_score_adj`; the schema says why each default).
//!
//! Raw syscalls for the scheduler: musl's `sched_setscheduler`/`sched_getscheduler` are stubs
//! that return ENOSYS (POSIX gives them per-process semantics Linux does not have).

use nix::errno::Errno;

/// `sched_setscheduler` flag: children created by fork get SCHED_OTHER at nice 0 (and a
/// negative nice is reset), so notify scripts, hooks and checks never run real-time, without
/// any code in the child. Not in the libc crate; value from linux/sched.h.
pub const SCHED_RESET_ON_FORK: i32 = 0x4000_0000;

/// A scheduling class the daemon can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Round-robin real-time (keepalived's `vrrp_rt_priority` uses it).
    RoundRobin,
    /// First-in first-out real-time.
    Fifo,
    /// The normal time-sharing class (no real-time).
    Other,
}

impl Policy {
    fn raw(self) -> i32 {
        match self {
            Policy::RoundRobin => libc::SCHED_RR,
            Policy::Fifo => libc::SCHED_FIFO,
            Policy::Other => libc::SCHED_OTHER,
        }
    }

    /// The class of a raw policy number (the reset-on-fork flag masked off).
    pub fn from_raw(p: i32) -> Option<Policy> {
        match p & !SCHED_RESET_ON_FORK {
            libc::SCHED_RR => Some(Policy::RoundRobin),
            libc::SCHED_FIFO => Some(Policy::Fifo),
            libc::SCHED_OTHER => Some(Policy::Other),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Policy::RoundRobin => "SCHED_RR",
            Policy::Fifo => "SCHED_FIFO",
            Policy::Other => "SCHED_OTHER",
        }
    }
}

/// The kernel's `struct sched_param` (one int). musl's `libc::sched_param` carries more
/// (the SCHED_SPORADIC fields), so the raw system call gets this one.
#[repr(C)]
struct KernelSchedParam {
    sched_priority: libc::c_int,
}

/// Put the calling process in `policy` at `priority` (1..99 for the real-time classes, ignored
/// for `Other`), always with [`SCHED_RESET_ON_FORK`]: what the daemon forks starts as a normal
/// process.
pub fn set_policy(policy: Policy, priority: u8) -> Result<(), Errno> {
    let param = KernelSchedParam {
        sched_priority: if policy == Policy::Other {
            0
        } else {
            libc::c_int::from(priority)
        },
    };
    // SAFETY: pid 0 is the caller; param is the kernel's sched_param, valid for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_sched_setscheduler,
            0 as libc::pid_t,
            policy.raw() | SCHED_RESET_ON_FORK,
            &param as *const KernelSchedParam,
        )
    };
    Errno::result(r).map(drop)
}

/// The raw policy of process `pid` (0: the caller), reset-on-fork flag included.
pub fn raw_policy(pid: i32) -> Result<i32, Errno> {
    // SAFETY: no pointers.
    let r = unsafe { libc::syscall(libc::SYS_sched_getscheduler, pid as libc::pid_t) };
    Errno::result(r).map(|p| p as i32)
}

/// How much of the memory got locked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Locked {
    /// Everything mapped now and everything mapped later (MCL_FUTURE).
    CurrentAndFuture,
    /// Only what is mapped now: the memlock limit is finite and the process lacks
    /// CAP_IPC_LOCK, so MCL_FUTURE could make a later allocation fail.
    CurrentOnly,
}

/// Lock the daemon's memory so no page it needs during a failover is swapped out or (for its
/// code, read from flash) evicted and read back.
///
/// * The program's file mappings (code and read-only data) are locked and read in whole: a
///   path first run at a takeover must not wait for the flash.
/// * Everything else is locked as it is touched (MCL_ONFAULT): the loop reserves its tables
///   for the largest configuration and touches only what the running one uses; populating
///   the rest would cost every router that RAM for nothing.
/// * MCL_FUTURE (also on fault) only where it cannot bite: with CAP_IPC_LOCK or an unlimited
///   RLIMIT_MEMLOCK. Otherwise every locked page counts against the limit and an allocation
///   past it (a reload's second config, thousands of checked servers, the TPACKET ring's
///   mmap) would fail; the heap is then locked as it is at start only.
pub fn lock_memory() -> Result<Locked, Errno> {
    let future = may_lock_unlimited();
    let mut flags = libc::MCL_CURRENT | libc::MCL_ONFAULT;
    if future {
        flags |= libc::MCL_FUTURE;
    }
    // Before Linux 4.4 there is no MCL_ONFAULT (EINVAL): lock nothing rather than make every
    // reserved page resident.
    // SAFETY: no pointers.
    Errno::result(unsafe { libc::mlockall(flags) })?;
    lock_file_mappings();
    Ok(if future {
        Locked::CurrentAndFuture
    } else {
        Locked::CurrentOnly
    })
}

/// Undo [`lock_memory`] (a reload turned `lock_memory` off).
pub fn unlock_memory() {
    // SAFETY: no pointers.
    unsafe { libc::munlockall() };
}

/// CAP_IPC_LOCK in the effective set, or an unlimited RLIMIT_MEMLOCK.
fn may_lock_unlimited() -> bool {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid rlimit struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } == 0
        && lim.rlim_cur == libc::RLIM_INFINITY
    {
        return true;
    }
    // CapEff in /proc/self/status, a hex mask; CAP_IPC_LOCK is bit 14.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|m| m & (1 << 14) != 0)
}

/// mlock (which populates) every file-backed mapping: the program's code and constants (and
/// the C library's in a dynamic build). Failures are ignored: the mapping stays locked on fault.
fn lock_file_mappings() {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    for line in maps.lines() {
        if let Some((start, end)) = file_mapping(line) {
            // SAFETY: the range is a mapping of this process (from its own maps file).
            unsafe { libc::mlock(start as *const libc::c_void, end - start) };
        }
    }
}

/// `(start, end)` of a `/proc/self/maps` line that maps a file (a path, not `[heap]`, `[vdso]`
/// or an anonymous mapping).
fn file_mapping(line: &str) -> Option<(usize, usize)> {
    let mut f = line.split_whitespace();
    let range = f.next()?;
    let path = f.nth(4)?;
    if !path.starts_with('/') {
        return None;
    }
    let (a, b) = range.split_once('-')?;
    let (a, b) = (
        usize::from_str_radix(a, 16).ok()?,
        usize::from_str_radix(b, 16).ok()?,
    );
    (b > a).then_some((a, b))
}

/// Write `/proc/self/oom_score_adj` (-1000..1000): a negative value makes the kernel's OOM
/// killer pick other processes first.
pub fn set_oom_score_adj(v: i32) -> Result<(), std::io::Error> {
    std::fs::write("/proc/self/oom_score_adj", v.to_string())
}

/// The time this thread spent runnable but waiting for a CPU, read from
/// `/proc/thread-self/schedstat` (its second field, `run_delay`, in nanoseconds; kept by
/// kernels with CONFIG_SCHED_INFO, which every distribution and OpenWrt build enables).
///
/// Why: a timer that fires late was either woken late (the timer interrupt itself came late:
/// interrupts off, or a virtual machine's CPU not running) or woken on time and then kept
/// waiting for the CPU (a higher-priority task, interrupt and softirq work, or, on a kernel
/// without full preemption, another process's system call that a real-time task cannot
/// interrupt). The growth of `run_delay` across the wait tells the two apart.
pub struct RunDelay {
    fd: std::os::fd::OwnedFd,
}

impl RunDelay {
    /// Open the file once; `None` where the kernel does not keep it.
    pub fn open() -> Option<RunDelay> {
        let f = std::fs::File::open("/proc/thread-self/schedstat")
            .or_else(|_| std::fs::File::open("/proc/self/schedstat"))
            .ok()?;
        let r = RunDelay { fd: f.into() };
        r.read().map(|_| r)
    }

    /// The total wait so far (one `pread`, about a microsecond).
    pub fn read(&self) -> Option<core::time::Duration> {
        use std::os::fd::AsRawFd;
        let mut buf = [0u8; 96];
        // SAFETY: reads into a stack buffer of the given length from an fd we own.
        let n = unsafe {
            libc::pread(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                0,
            )
        };
        let n = usize::try_from(n).ok()?;
        parse_run_delay(buf.get(..n)?)
    }
}

/// `run_delay` from a schedstat line: "<on-CPU ns> <run_delay ns> <timeslices>".
fn parse_run_delay(line: &[u8]) -> Option<core::time::Duration> {
    let text = core::str::from_utf8(line).ok()?;
    let ns: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    Some(core::time::Duration::from_nanos(ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_mappings_are_recognised_and_others_are_not() {
        assert_eq!(
            file_mapping("00400000-0048c000 r-xp 00000000 08:01 1234   /usr/sbin/minivrrp"),
            Some((0x40_0000, 0x48_c000))
        );
        assert_eq!(
            file_mapping("7ffd1000-7ffd3000 r-xp 00000000 00:00 0      [vdso]"),
            None
        );
        assert_eq!(
            file_mapping("01a4b000-01a6c000 rw-p 00000000 00:00 0 "),
            None
        );
        assert_eq!(file_mapping("garbage"), None);
    }

    #[test]
    fn run_delay_is_the_second_schedstat_field() {
        assert_eq!(
            parse_run_delay(b"39341452 32304112 47\n"),
            Some(core::time::Duration::from_nanos(32_304_112))
        );
        assert_eq!(parse_run_delay(b"39341452\n"), None);
        assert_eq!(parse_run_delay(b"a b c"), None);
        // This thread's own figure reads, and never goes down.
        if let Some(r) = RunDelay::open() {
            let a = r.read().unwrap();
            std::thread::yield_now();
            assert!(r.read().unwrap() >= a);
        }
    }

    #[test]
    fn policy_names_round_trip_through_raw_numbers() {
        for p in [Policy::RoundRobin, Policy::Fifo, Policy::Other] {
            assert_eq!(Policy::from_raw(p.raw() | SCHED_RESET_ON_FORK), Some(p));
        }
        assert_eq!(Policy::from_raw(libc::SCHED_BATCH), None);
    }
}
