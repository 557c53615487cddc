//! `sshfleet fleet up`: start a test fleet, say where its files are, write `DIR/ready`, hold
//! it until SIGINT/SIGTERM/SIGHUP, tear it down. Used by the demo and benchmark scripts:
//!
//! ```text
//! sshfleet fleet up --hosts 10 --dir /tmp/demo &   # background it
//! while [ ! -e /tmp/demo/ready ]; do sleep 0.1; done
//! sshfleet -i /tmp/demo/inventory.ini ping
//! kill %1; wait                                      # teardown
//! ```
//!
//! Stdin is ignored on purpose (a backgrounded script has none). `DIR/fleet.json` describes
//! the hosts (name, port, sshd pid) for scripts.

use std::path::PathBuf;

use super::{Fleet, FleetError};

type Result<T> = std::result::Result<T, FleetError>;

/// What `fleet up` was asked for (domain form of its flags).
#[derive(Debug, Clone)]
pub struct UpConfig {
    pub hosts: usize,
    pub dir: Option<PathBuf>,
    /// Login users; None = the builder's default (admin, deploy, backup).
    pub users: Option<Vec<String>>,
    pub keep: bool,
    /// Extra sshd_config lines for every host.
    pub sshd_options: Vec<String>,
    pub max_startups: Option<String>,
    pub log_level: Option<String>,
    /// 0-based hosts that take only passwords ([`DEMO_PASSWORD`], no authorized_keys).
    pub password_hosts: Vec<usize>,
    /// 0-based hosts where sudo asks for the password (and root has it, for su).
    pub sudo_password_hosts: Vec<usize>,
    /// Every host hidden; the first one the bastion ([`super::FleetBuilder::relay_port`]).
    pub behind_bastion: bool,
}

/// The password of the demo fleet's password hosts (a demo, not a secret: it is printed).
pub const DEMO_PASSWORD: &str = "sshfleet-demo";

/// A JSON description of a running fleet (written to `DIR/fleet.json`).
pub fn describe(fleet: &Fleet) -> serde_json::Value {
    describe_with(fleet, &[], &[])
}

/// [`describe`] with the password and sudo-password hosts (0-based) marked.
pub fn describe_with(
    fleet: &Fleet,
    password_hosts: &[usize],
    sudo_hosts: &[usize],
) -> serde_json::Value {
    serde_json::json!({
        "dir": fleet.dir(),
        "inventory": fleet.inventory(),
        "private_key": fleet.client_key(),
        "known_hosts": fleet.known_hosts(),
        "users": fleet.users(),
        "hosts": fleet.hosts().iter().map(|h| serde_json::json!({
            "name": h.name(),
            "address": h.addr(),
            "port": h.port(),
            "hidden": h.is_hidden(),
            "relay_port": h.relay_port(),
            "pid": h.pid(),
            "home_root": h.home_root(),
            "password_only": password_hosts.contains(&h.index()),
            "sudo_password": sudo_hosts.contains(&h.index()),
        })).collect::<Vec<_>>(),
    })
}

/// Run `fleet up` to completion.
pub fn run_up(cfg: UpConfig) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| FleetError::io("tokio runtime", e))?;
    let _guard = rt.enter();
    // Signals are caught before the fleet starts, so one that arrives during start-up still
    // ends in a clean teardown.
    use tokio::signal::unix::{SignalKind, signal};
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| FleetError::io("SIGINT", e))?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| FleetError::io("SIGTERM", e))?;
    let mut sighup = signal(SignalKind::hangup()).map_err(|e| FleetError::io("SIGHUP", e))?;

    let mut b = Fleet::builder().hosts(cfg.hosts).keep(cfg.keep);
    if let Some(d) = &cfg.dir {
        b = b.dir(d);
    }
    if let Some(u) = &cfg.users {
        b = b.users(u.iter().cloned());
    }
    for line in &cfg.sshd_options {
        b = b.sshd_option_all(line.clone());
    }
    if let Some(m) = &cfg.max_startups {
        b = b.max_startups(m.clone());
    }
    if let Some(l) = &cfg.log_level {
        b = b.log_level(l.clone());
    }
    if cfg.behind_bastion {
        if cfg.hosts < 2 {
            return Err(FleetError::Setup(
                "--behind-bastion needs at least 2 hosts".into(),
            ));
        }
        b = b.relay_port(0);
        for i in 1..cfg.hosts {
            b = b.hidden(i);
        }
    }
    let users: Vec<String> = cfg
        .users
        .clone()
        .unwrap_or_else(|| ["admin", "deploy", "backup"].map(String::from).to_vec());
    for &h in &cfg.password_hosts {
        b = b.sshd_option(h, "PasswordAuthentication yes");
        for u in &users {
            b = b
                .password(h, u.clone(), DEMO_PASSWORD)
                .no_authorized_keys(h, u.clone());
        }
    }
    for &h in &cfg.sudo_password_hosts {
        b = b.sudo_password(h).password(h, "root", DEMO_PASSWORD);
        for u in &users {
            b = b.password(h, u.clone(), DEMO_PASSWORD);
        }
    }
    let fleet = b.start()?;

    let desc = describe_with(&fleet, &cfg.password_hosts, &cfg.sudo_password_hosts);
    let json = serde_json::to_string_pretty(&desc)
        .map_err(|e| FleetError::Setup(format!("fleet.json: {e}")))?;
    std::fs::write(fleet.dir().join("fleet.json"), json + "\n")
        .map_err(|e| FleetError::io(fleet.dir().join("fleet.json").display(), e))?;
    let hosts = fleet.hosts();
    let shown: Vec<String> = hosts
        .iter()
        .take(5)
        .map(|h| format!("{}=127.0.0.1:{}", h.name(), h.port()))
        .collect();
    println!(
        "test fleet: {} hosts up in {} ms ({}{})",
        hosts.len(),
        fleet.started_in().as_millis(),
        shown.join(" "),
        if hosts.len() > 5 { " ..." } else { "" }
    );
    println!(
        "  dir:         {}  (fleet.json lists every host)",
        fleet.dir().display()
    );
    println!("  inventory:   {}", fleet.inventory().display());
    println!("  private key: {}", fleet.client_key().display());
    println!("  known_hosts: {}", fleet.known_hosts().display());
    println!("  users:       {}", fleet.users().join(", "));
    let login = fleet
        .users()
        .iter()
        .find(|u| *u == "deploy")
        .or(fleet.users().first())
        .map_or("root", String::as_str);
    println!(
        "  try:         ssh {} id",
        fleet
            .ssh_args(0, login)
            .iter()
            .map(|a| crate::target::shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let names = |hs: &[usize]| {
        hs.iter()
            .filter_map(|&i| fleet.hosts().get(i).map(|h| h.name().to_string()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !cfg.password_hosts.is_empty() {
        println!(
            "  password only: {} (password {DEMO_PASSWORD:?}, no authorized_keys; try: \
             SSHFLEET_PW={DEMO_PASSWORD} sshfleet -i {} --password-env SSHFLEET_PW keys add \
             --user deploy --key {})",
            names(&cfg.password_hosts),
            fleet.inventory().display(),
            fleet.client_key_pub().display()
        );
    }
    if !cfg.sudo_password_hosts.is_empty() {
        println!(
            "  sudo asks a password: {} (password {DEMO_PASSWORD:?}, root too for \
             --become-method su; use -K or --become-password-env)",
            names(&cfg.sudo_password_hosts)
        );
    }
    println!("Stop with Ctrl-C or SIGTERM (pid {}).", std::process::id());
    // `ready` last, atomically: its existence means everything above is in place.
    let ready = fleet.dir().join("ready");
    let tmp = fleet.dir().join(".ready.tmp");
    std::fs::write(&tmp, format!("{}\n", std::process::id()))
        .and_then(|_| std::fs::rename(&tmp, &ready))
        .map_err(|e| FleetError::io(ready.display(), e))?;

    let got = rt.block_on(async {
        tokio::select! {
            _ = sigint.recv() => "SIGINT",
            _ = sigterm.recv() => "SIGTERM",
            _ = sighup.recv() => "SIGHUP",
        }
    });
    eprintln!("{got}: tearing down the test fleet");
    let _ = std::fs::remove_file(&ready);
    drop(fleet);
    Ok(())
}
