//! One fleet host's process: `sshd` as PID 1 of its own PID namespace, inside its own mount
//! namespace where the host's directories are bound over `/home` (and `/root`).
//!
//! Process tree per host:
//!
//! ```text
//! this process (spawner thread)
//!  └─ unshare --pid --fork --kill-child      ← our child; PR_SET_PDEATHSIG=SIGKILL; own mount ns
//!      └─ sshd -D -e                         ← PID 1 of a new PID namespace; reads the
//!                                               host's /etc/ssh/sshd_config, writes its
//!                                               /run/sshd.pid (SIGHUP: re-exec, same PID)
//!          └─ per-connection sshd, sessions, everything they start (setsid or not)
//! ```
//!
//! Killing the namespace's PID 1 makes the kernel kill every process in the namespace, so
//! session processes that called `setsid` cannot survive. `unshare --kill-child` SIGKILLs sshd
//! when `unshare` dies, and `unshare` gets SIGKILL when the thread that spawned it exits
//! (`PR_SET_PDEATHSIG`). All hosts are spawned from one process-wide spawner thread that never
//! exits, so the fleet lives exactly as long as the owning process (or until teardown) no
//! matter which thread started it.

use std::ffi::CString;
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::FleetError;
use super::procs::{self, NsKind};
use super::system::{self, SSHD};

/// Where one host's files are and what to bind in its namespace.
#[derive(Debug, Clone)]
pub struct HostPaths {
    /// The controller path of the host's `/etc/ssh/sshd_config` (sshd reads it there, in the
    /// host's mount namespace, as on a real host).
    pub config: PathBuf,
    pub log: PathBuf,
    /// Bound over `/home`.
    pub home_root: PathBuf,
    /// Bound over `/root` when root login is set up.
    pub root_home: Option<PathBuf>,
    /// Further per-host directories: (controller path, path on the host it is bound over).
    pub private: Vec<(PathBuf, PathBuf)>,
    /// Per-host pieces of `/etc` (see [`super::etc`]): (controller path, path on the host).
    pub etc: Vec<(PathBuf, PathBuf)>,
    /// sshd's LogLevel is below INFO, so "Server listening" is never logged: readiness is a
    /// LISTEN socket on the port in `/proc/net/tcp` instead.
    pub quiet_log: bool,
    /// Run in the fleet's hidden network namespace instead of the controller's.
    pub netns: Option<super::net::HiddenNet>,
}

/// A started host process.
#[derive(Debug)]
pub struct Running {
    /// The `unshare` process (our child).
    pub child: Child,
    /// sshd, PID 1 of the host's PID namespace (its PID as seen from here).
    pub sshd_pid: u32,
    pub mnt_ns: u64,
    pub pid_ns: u64,
}

/// State of a host that is starting.
pub enum Poll {
    /// Still starting.
    Starting,
    /// sshd is listening: the namespace's PID 1 and namespace inodes.
    Listening {
        sshd_pid: u32,
        mnt_ns: u64,
        pid_ns: u64,
    },
    /// sshd could not bind its port (someone took it between our probe and sshd's bind).
    PortTaken,
}

type Job = Box<dyn FnOnce() + Send>;

/// Run `f` on the process-wide spawner thread (see the module doc for why).
pub(super) fn on_spawner_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    static SPAWNER: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    let tx = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("testfleet-spawner".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
            })
            .expect("spawn testfleet spawner thread");
        tx
    });
    let (rtx, rrx) = mpsc::sync_channel(1);
    tx.send(Box::new(move || {
        let _ = rtx.send(f());
    }))
    .expect("testfleet spawner thread is alive");
    rrx.recv().expect("testfleet spawner thread answered")
}

fn cstring(p: &Path) -> Result<CString, FleetError> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| FleetError::Setup(format!("path with NUL byte: {}", p.display())))
}

/// Start one host's sshd. Returns the `unshare` child and the log offset where this run's
/// output starts.
pub fn spawn(paths: &HostPaths) -> Result<(Child, u64), FleetError> {
    let unshare = system::which("unshare")
        .ok_or_else(|| FleetError::Setup("unshare (util-linux) not found".into()))?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&paths.log)
        .map_err(|e| FleetError::io(paths.log.display(), e))?;
    let offset = log
        .metadata()
        .map_err(|e| FleetError::io(paths.log.display(), e))?
        .len();
    let log2 = log
        .try_clone()
        .map_err(|e| FleetError::io(paths.log.display(), e))?;
    let mut binds = vec![(cstring(&paths.home_root)?, c"/home".to_owned())];
    if let Some(root) = &paths.root_home {
        binds.push((cstring(root)?, c"/root".to_owned()));
    }
    for (src, dst) in paths.private.iter().chain(&paths.etc) {
        binds.push((cstring(src)?, cstring(dst)?));
    }
    let parent = std::process::id() as libc::pid_t;
    let mut cmd = Command::new(unshare);
    cmd.args(["--pid", "--fork", "--kill-child", "--", SSHD, "-D", "-e"])
        .stdin(Stdio::null())
        .stdout(log2)
        .stderr(log)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("LANG", "C.UTF-8")
        // Own process group: a terminal's Ctrl-C reaches only the owner, which tears down.
        .process_group(0);
    if let Some(n) = &paths.netns {
        n.enter_on_exec(&mut cmd);
    }
    // SAFETY: the closure only makes async-signal-safe syscalls (prctl, getppid, unshare,
    // mount) on data prepared before fork; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The owner may have died between fork and prctl.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            for (src, dst) in &binds {
                if libc::mount(
                    src.as_ptr(),
                    dst.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = on_spawner_thread(move || cmd.spawn())
        .map_err(|e| FleetError::io("spawning unshare/sshd", e))?;
    Ok((child, offset))
}

fn read_from(path: &Path, offset: u64) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(path)
        && f.seek(SeekFrom::Start(offset)).is_ok()
    {
        let _ = f.read_to_string(&mut s);
    }
    s
}

/// The last `n` lines of a log text.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// One host waiting to come up.
pub struct Pending {
    pub child: Child,
    pub offset: u64,
}

impl Pending {
    /// The started host, once [`poll`] said it is listening.
    pub fn into_running(self, sshd_pid: u32, mnt_ns: u64, pid_ns: u64) -> Running {
        Running {
            child: self.child,
            sshd_pid,
            mnt_ns,
            pid_ns,
        }
    }
}

/// Check a starting host once; an error when sshd exited for another reason than its port.
pub fn poll(name: &str, paths: &HostPaths, port: u16, p: &mut Pending) -> Result<Poll, FleetError> {
    let text = read_from(&paths.log, p.offset);
    let listening = if paths.quiet_log {
        // The host's own network namespace (the hidden one, for hidden hosts).
        std::fs::read_to_string(format!("/proc/{}/net/tcp", p.child.id()))
            .is_ok_and(|t| proc_net_tcp_listens(&t, port))
    } else {
        text.contains("Server listening on ")
    };
    if listening {
        let unshare_pid = p.child.id();
        let Some(&sshd_pid) = procs::children(unshare_pid).first() else {
            return Ok(Poll::Starting);
        };
        let (Some(mnt_ns), Some(pid_ns)) = (
            procs::ns_inode(sshd_pid, NsKind::Mnt),
            procs::ns_inode(sshd_pid, NsKind::Pid),
        ) else {
            return Ok(Poll::Starting);
        };
        return Ok(Poll::Listening {
            sshd_pid,
            mnt_ns,
            pid_ns,
        });
    }
    if let Some(status) = p
        .child
        .try_wait()
        .map_err(|e| FleetError::io("waiting for sshd", e))?
    {
        let text = read_from(&paths.log, p.offset);
        if text.contains("Address already in use") || text.contains("Cannot bind any address") {
            return Ok(Poll::PortTaken);
        }
        return Err(FleetError::Start {
            host: name.to_string(),
            msg: format!("sshd exited ({status}) before listening"),
            log_tail: tail(&text, 15),
        });
    }
    Ok(Poll::Starting)
}

/// Whether `/proc/net/tcp` text has a LISTEN socket on 127.0.0.1:`port`.
pub fn proc_net_tcp_listens(text: &str, port: u16) -> bool {
    let want = format!("0100007F:{port:04X}");
    text.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 3 && f[1] == want && f[3] == "0A"
    })
}

/// Stop a running host: SIGKILL its namespace's PID 1 (the kernel then kills every process
/// in the PID namespace), let `unshare` reap it and exit (SIGKILL it if it does not), then
/// kill by PID anything that was already running in the host's mount or PID namespace before
/// the stop began (e.g. a process that entered it with `nsenter`), and wait until none is
/// left.
pub fn stop(mut r: Running) {
    let began = procs::now_ticks();
    // Only signal the recorded sshd PID while it is still the process we started.
    if procs::ns_inode(r.sshd_pid, NsKind::Pid) == Some(r.pid_ns) {
        procs::signal(r.sshd_pid, libc::SIGKILL);
    }
    // Unknown sshd (it never came up): unshare's --kill-child takes it down with unshare.
    let reap_deadline = if r.sshd_pid == 0 {
        Instant::now()
    } else {
        Instant::now() + Duration::from_millis(2000)
    };
    procs::reap_by(&mut r.child, reap_deadline);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<u32> = procs::pids_in_ns_started_before(NsKind::Pid, r.pid_ns, began)
            .into_iter()
            .chain(
                // A process that started before the stop but is *entering* a new mount
                // namespace whose inode reuses this host's (another host's `unshare`) is not
                // ours: killing it killed that host's sshd before it listened.
                procs::pids_in_ns_started_before(NsKind::Mnt, r.mnt_ns, began)
                    .into_iter()
                    .filter(|&p| !procs::is_starting_pid_ns(p)),
            )
            .filter(|&p| p != std::process::id() && !procs::is_zombie(p))
            .collect();
        if left.is_empty() || Instant::now() > deadline {
            break;
        }
        for pid in left {
            procs::signal(pid, libc::SIGCONT);
            procs::signal(pid, libc::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Send `sig` to every process in the host's PID namespace, PID 1 (sshd) first.
pub fn signal_all(r: &Running, sig: i32) {
    if procs::ns_inode(r.sshd_pid, NsKind::Pid) == Some(r.pid_ns) {
        procs::signal(r.sshd_pid, sig);
    }
    for pid in procs::pids_in_ns(NsKind::Pid, r.pid_ns) {
        if pid != r.sshd_pid {
            procs::signal(pid, sig);
        }
    }
}

/// Is any process of the host stopped (state `T`)?
pub fn any_stopped(r: &Running) -> bool {
    procs::pids_in_ns(NsKind::Pid, r.pid_ns)
        .into_iter()
        .any(procs::is_stopped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_tcp_listen_is_found() {
        let t = "  sl  local_address rem_address   st tx_queue rx_queue\n   \
                 0: 0100007F:1F90 00000000:0000 0A 00000000:00000000\n   \
                 1: 0100007F:1F91 0100007F:D431 01 00000000:00000000\n";
        assert!(proc_net_tcp_listens(t, 0x1F90));
        assert!(
            !proc_net_tcp_listens(t, 0x1F91),
            "ESTABLISHED is not LISTEN"
        );
        assert!(!proc_net_tcp_listens(t, 22));
    }

    #[test]
    fn tail_keeps_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
