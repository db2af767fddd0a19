//! Claims on runs, so that several processes on one results folder (shards on a shared
//! filesystem, or the same sweep started twice) do each run once. A claim is a file created
//! exclusively before a run starts, holding the owner's host, pid and start time; a thread
//! refreshes its modification time while the run goes on. A claim is stale when its owner
//! is a dead process on this host, or when it has not been refreshed for the timeout (an
//! owner on another host that died); a stale claim is taken over under a short exclusive
//! lock, so two processes never take over the same claim.

use crate::{ClusterError, Result};
use serde::{Deserialize, Serialize};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

/// How often a live claim's file is touched.
pub const HEARTBEAT: Duration = Duration::from_secs(20);

/// Who holds a claim (the claim file's contents).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// Host name.
    pub host: String,
    /// Process id on that host.
    pub pid: u32,
    /// Seconds since the Unix epoch when the run was claimed.
    pub started: u64,
}

impl Owner {
    /// This process, now.
    pub fn me() -> Owner {
        Owner { host: host_name(), pid: std::process::id(), started: unix_now() }
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} pid {}", self.host, self.pid)
    }
}

/// This machine's host name (the kernel's, else `HOSTNAME`, else "unknown").
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// What trying to claim a run found.
#[derive(Debug)]
pub enum Attempt {
    /// The run is ours until the [`Claim`] is dropped.
    Claimed(Claim),
    /// Another live process holds it.
    Busy(Owner),
}

/// A held claim: refreshed in the background, removed on drop.
#[derive(Debug)]
pub struct Claim {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    beat: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(b) = self.beat.take() {
            b.thread().unpark();
            let _ = b.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Claim files of one results folder.
#[derive(Debug, Clone)]
pub struct Claims {
    dir: PathBuf,
    timeout: Duration,
}

impl Claims {
    /// Claims under `<out>/claims/`; a claim not refreshed for `timeout` is stale.
    pub fn new(out: &Path, timeout: Duration) -> Claims {
        Claims { dir: out.join("claims"), timeout }
    }

    /// How long an unrefreshed claim stays live.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.claim"))
    }

    /// Claims run `id`, taking over a stale claim.
    pub fn try_claim(&self, id: &str) -> Result<Attempt> {
        std::fs::create_dir_all(&self.dir).map_err(ClusterError::io("creating", &self.dir))?;
        let path = self.path(id);
        if let Some(claim) = self.create(&path)? {
            return Ok(Attempt::Claimed(claim));
        }
        let Some(owner) = self.stale_owner(&path) else {
            return Ok(Attempt::Busy(read_owner(&path).unwrap_or_else(unknown_owner)));
        };
        // Take over under an exclusive lock, re-checking staleness while holding it.
        let lock = self.dir.join(format!("{id}.takeover"));
        match OpenOptions::new().write(true).create_new(true).open(&lock) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // A taker that died while holding the lock leaves it behind: clear it later.
                if age(&lock).is_some_and(|a| a > self.timeout) {
                    let _ = std::fs::remove_file(&lock);
                }
                return Ok(Attempt::Busy(owner));
            }
            Err(e) => return Err(ClusterError::io("creating", &lock)(e)),
        }
        if self.stale_owner(&path).is_some() {
            let _ = std::fs::remove_file(&path);
        }
        let result = self.create(&path);
        let _ = std::fs::remove_file(&lock);
        match result? {
            Some(c) => Ok(Attempt::Claimed(c)),
            None => Ok(Attempt::Busy(read_owner(&path).unwrap_or(owner))),
        }
    }

    /// Creates the claim file exclusively; `None` if it exists.
    fn create(&self, path: &Path) -> Result<Option<Claim>> {
        let mut f = match OpenOptions::new().write(true).create_new(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
            Err(e) => return Err(ClusterError::io("creating claim", path)(e)),
        };
        let owner = serde_json::to_string(&Owner::me()).map_err(std::io::Error::other);
        owner
            .and_then(|o| f.write_all(o.as_bytes()))
            .and_then(|_| f.sync_all())
            .map_err(ClusterError::io("writing claim", path))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (path.to_path_buf(), stop.clone());
        let beat = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                std::thread::park_timeout(HEARTBEAT);
                if let Ok(f) = OpenOptions::new().write(true).open(&p) {
                    let _ = f.set_modified(SystemTime::now());
                }
            }
        });
        Ok(Some(Claim { path: path.to_path_buf(), stop, beat: Some(beat) }))
    }

    /// The owner of a stale claim at `path`, `None` while it is live (or gone).
    fn stale_owner(&self, path: &Path) -> Option<Owner> {
        let age = age(path)?;
        // A claim being written is a few bytes short for an instant: only its age decides then.
        let owner = read_owner(path);
        let dead_here = owner.as_ref().is_some_and(|o| o.host == host_name() && !pid_alive(o.pid));
        (dead_here || age > self.timeout).then(|| owner.unwrap_or_else(unknown_owner))
    }
}

fn unknown_owner() -> Owner {
    Owner { host: "unknown".into(), pid: 0, started: 0 }
}

fn read_owner(path: &Path) -> Option<Owner> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn age(path: &Path) -> Option<Duration> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(SystemTime::now().duration_since(modified).unwrap_or(Duration::ZERO))
}

/// Whether process `pid` exists on this host (Linux: `/proc/<pid>`; elsewhere assumed alive,
/// so only the timeout frees its claims). A zombie counts as dead.
fn pid_alive(pid: u32) -> bool {
    if !Path::new("/proc/self").exists() {
        return true;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let claims = Claims::new(dir.path(), Duration::from_secs(60));
        let Attempt::Claimed(c) = claims.try_claim("a").unwrap() else { panic!("first claim") };
        match claims.try_claim("a").unwrap() {
            Attempt::Busy(o) => assert_eq!(o.pid, std::process::id()),
            Attempt::Claimed(_) => panic!("claimed twice"),
        }
        assert!(matches!(claims.try_claim("b").unwrap(), Attempt::Claimed(_)));
        drop(c);
        assert!(!claims.path("a").exists());
        assert!(matches!(claims.try_claim("a").unwrap(), Attempt::Claimed(_)));
    }

    #[test]
    fn claims_of_dead_processes_and_silent_hosts_are_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let claims = Claims::new(dir.path(), Duration::from_secs(3600));
        std::fs::create_dir_all(&claims.dir).unwrap();
        // A process that has exited: its pid is free (reaped) on this host.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let dead_owner = Owner { host: host_name(), pid: dead, started: 1 };
        std::fs::write(claims.path("x"), serde_json::to_string(&dead_owner).unwrap()).unwrap();
        assert!(matches!(claims.try_claim("x").unwrap(), Attempt::Claimed(_)));
        // A live owner on another host is busy until the claim is older than the timeout.
        let far = Owner { host: "elsewhere".into(), pid: 1, started: 1 };
        std::fs::write(claims.path("y"), serde_json::to_string(&far).unwrap()).unwrap();
        assert!(matches!(claims.try_claim("y").unwrap(), Attempt::Busy(o) if o == far));
        let short = Claims::new(dir.path(), Duration::from_millis(0));
        std::thread::sleep(Duration::from_millis(20));
        assert!(matches!(short.try_claim("y").unwrap(), Attempt::Claimed(_)));
    }

    #[test]
    fn threads_racing_for_one_run_get_one_claim() {
        let dir = tempfile::tempdir().unwrap();
        let claims = Claims::new(dir.path(), Duration::from_secs(60));
        let barrier = std::sync::Barrier::new(8);
        let won: Vec<bool> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|_| {
                    let (c, b) = (claims.clone(), &barrier);
                    s.spawn(move || {
                        let attempt = c.try_claim("r").unwrap();
                        b.wait(); // everyone has tried before the winner lets go
                        matches!(attempt, Attempt::Claimed(_))
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    }
}
