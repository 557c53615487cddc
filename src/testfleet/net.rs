//! The fleet's hidden network: hosts the controller cannot reach directly.
//!
//! A network namespace of its own with nothing but its own loopback (`lo` up, no veth, no
//! other address), held open by a file descriptor ([`HiddenNet`]). Hidden hosts' sshds join
//! it (`setns` before they start, see [`super::host::spawn`]), so they listen on *its*
//! 127.0.0.1, which the controller's 127.0.0.1 is not. The only ways in are relays through
//! unix sockets (socket files are visible in every network namespace):
//!
//! ```text
//!  controller netns                     │ hidden netns
//!  127.0.0.1:RELAY ── socat ── HOST.sock ── socat ── 127.0.0.1:PORT (sshd)
//!  (relay_port)                 (relay_socket)
//! ```
//!
//! Each relay is `unshare --pid --fork --kill-child -- socat …` spawned like a host (from
//! the process-wide spawner thread, `PR_SET_PDEATHSIG`), so socat is PID 1 of its own PID
//! namespace: killing it by PID takes every forked connection handler with it. The
//! namespace disappears once its last sshd and relay are gone and the descriptor is closed.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::FleetError;
use super::host;
use super::procs::{self, NsKind};
use super::system;

/// The hidden network namespace, held open by a descriptor.
#[derive(Debug, Clone)]
pub struct HiddenNet {
    fd: Arc<OwnedFd>,
    /// Its inode (`/proc/PID/ns/net`), to find what runs in it.
    pub inode: u64,
}

impl HiddenNet {
    /// Create the namespace (from a short-lived thread, so no thread of ours stays in it) and
    /// bring its loopback up.
    pub fn create() -> Result<HiddenNet, FleetError> {
        let made = std::thread::spawn(|| -> std::io::Result<File> {
            // SAFETY: unshare(2) affects only this (about to exit) thread.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            File::open("/proc/thread-self/ns/net")
        })
        .join()
        .map_err(|_| FleetError::Setup("network namespace thread panicked".into()))?
        .map_err(|e| FleetError::io("creating the hidden network namespace", e))?;
        let inode = std::fs::read_link(format!("/proc/self/fd/{}", made.as_raw_fd()))
            .ok()
            .and_then(|l| procs::parse_ns_link(&l.to_string_lossy()))
            .unwrap_or(0);
        let net = HiddenNet {
            fd: Arc::new(OwnedFd::from(made)),
            inode,
        };
        let ip = system::which("ip")
            .ok_or_else(|| FleetError::Setup("ip (iproute2) not found".into()))?;
        let mut cmd = Command::new(ip);
        cmd.args(["link", "set", "lo", "up"]);
        net.enter_on_exec(&mut cmd);
        let out = cmd
            .output()
            .map_err(|e| FleetError::io("ip link set lo up", e))?;
        if !out.status.success() {
            return Err(FleetError::Setup(format!(
                "ip link set lo up in the hidden namespace: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(net)
    }

    /// Make `cmd` join this namespace between fork and exec.
    pub fn enter_on_exec(&self, cmd: &mut Command) {
        let fd = self.fd.clone();
        // SAFETY: setns(2) is async-signal-safe; the descriptor outlives the fork (held by the
        // closure, inherited by the child until exec).
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

/// One running socat relay (PID 1 of its own PID namespace).
#[derive(Debug)]
pub struct Relay {
    child: Child,
    socat_pid: u32,
    pid_ns: u64,
}

impl Relay {
    /// Inside `net`: accept on the unix socket `sock`, connect each to its 127.0.0.1:`port`.
    pub fn unix_to_port(net: &HiddenNet, sock: &Path, port: u16) -> Result<Relay, FleetError> {
        let _ = std::fs::remove_file(sock);
        let listen = format!("UNIX-LISTEN:{},fork,unlink-early,mode=600", sock.display());
        let connect = format!("TCP:127.0.0.1:{port},nodelay");
        let mut r = spawn_socat(&[&listen, &connect], Some(net))?;
        r.wait_ready(&format!("relay {}", sock.display()), || {
            std::fs::metadata(sock).is_ok_and(|m| m.file_type().is_socket())
        })?;
        Ok(r)
    }

    /// In the controller's namespace: listen on 127.0.0.1:`port`, connect each to `sock`.
    pub fn port_to_unix(port: u16, sock: &Path) -> Result<Relay, FleetError> {
        let listen =
            format!("TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr,nodelay,backlog=1024");
        let connect = format!("UNIX-CONNECT:{}", sock.display());
        let mut r = spawn_socat(&[&listen, &connect], None)?;
        // This thread is in the controller's namespace, as the relay is.
        r.wait_ready(&format!("relay 127.0.0.1:{port}"), || {
            std::fs::read_to_string("/proc/thread-self/net/tcp")
                .is_ok_and(|t| host::proc_net_tcp_listens(&t, port))
        })?;
        Ok(r)
    }

    fn wait_ready(&mut self, what: &str, ready: impl Fn() -> bool) -> Result<(), FleetError> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.socat_pid != 0 && ready() {
                return Ok(());
            }
            if self.socat_pid == 0
                && let Some(&p) = procs::children(self.child.id()).first()
            {
                self.socat_pid = p;
                self.pid_ns = procs::ns_inode(p, NsKind::Pid).unwrap_or(0);
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                return Err(FleetError::Setup(format!("{what}: socat exited ({st})")));
            }
            if Instant::now() > deadline {
                return Err(FleetError::Setup(format!("{what}: not ready after 20 s")));
            }
            std::thread::sleep(Duration::from_millis(3));
        }
    }

    /// socat's PID (PID 1 of the relay's PID namespace).
    pub fn pid(&self) -> u32 {
        self.socat_pid
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if self.socat_pid != 0 && procs::ns_inode(self.socat_pid, NsKind::Pid) == Some(self.pid_ns)
        {
            procs::signal(self.socat_pid, libc::SIGKILL);
        }
        procs::reap_by(&mut self.child, Instant::now() + Duration::from_secs(2));
    }
}

fn spawn_socat(args: &[&str], net: Option<&HiddenNet>) -> Result<Relay, FleetError> {
    let socat = system::which("socat").ok_or_else(|| {
        FleetError::Setup("socat not found (scripts/setup.sh installs it)".into())
    })?;
    let unshare = system::which("unshare")
        .ok_or_else(|| FleetError::Setup("unshare (util-linux) not found".into()))?;
    let mut cmd = Command::new(unshare);
    cmd.args(["--pid", "--fork", "--kill-child", "--"])
        .arg(socat)
        .args(["-ly", "-lh"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    if let Some(n) = net {
        n.enter_on_exec(&mut cmd);
    }
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: async-signal-safe calls only (prctl, getppid, _exit).
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let child = host::on_spawner_thread(move || cmd.spawn())
        .map_err(|e| FleetError::io("spawning the socat relay", e))?;
    Ok(Relay {
        child,
        socat_pid: 0,
        pid_ns: 0,
    })
}

/// Where hidden host `name`'s unix socket relay lives in fleet directory `dir`.
pub fn socket_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.sock"))
}
