//! Resolve the hosts a command works on: load the inventory, select `pattern` then
//! `--limit`, build each host's [`ConnSpec`] and apply the command-line overrides. Every
//! fleet command calls [`resolve_targets`].
//!
//! Overrides (command line beats inventory, as the flags promise): `-u` → user,
//! `--private-key` → the only identity file, `--known-hosts` → the only known_hosts file,
//! `--host-key-checking` → policy, `-b`/`--become-user` → become. `-T` applies to hosts whose
//! inventory sets no `ansible_ssh_timeout`/`ansible_timeout` (it always has a value, so it
//! cannot tell "given" from "default").

use crate::error::{Error, Result};
use crate::inventory::Inventory;
use crate::inventory::conn::{ConnSpec, HostKeyPolicy};
use crate::run::GlobalConfig;

/// `--host-key-checking` values: yes/true/strict, accept-new, no/false/off.
pub fn parse_policy(s: &str) -> Result<HostKeyPolicy> {
    match s.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "strict" | "1" | "on" => Ok(HostKeyPolicy::Strict),
        "accept-new" | "accept_new" | "new" => Ok(HostKeyPolicy::AcceptNew),
        "no" | "false" | "off" | "0" => Ok(HostKeyPolicy::Off),
        other => Err(Error::Usage(format!(
            "--host-key-checking: unknown mode {other:?} (use yes, accept-new or no)"
        ))),
    }
}

/// Apply the command-line overrides of `g` to one host's spec.
pub fn apply_overrides(mut spec: ConnSpec, g: &GlobalConfig) -> Result<ConnSpec> {
    if let Some(u) = &g.remote_user {
        spec.user = Some(u.clone());
    }
    if let Some(k) = &g.private_key {
        spec.identity_files = vec![k.clone()];
    }
    if let Some(f) = &g.known_hosts {
        spec.known_hosts_files = vec![f.clone()];
    }
    if let Some(m) = &g.host_key_checking {
        spec.host_key_policy = Some(parse_policy(m)?);
    }
    if spec.connect_timeout.is_none() {
        spec.connect_timeout = Some(g.connect_timeout);
    }
    if g.r#become {
        spec.r#become.enabled = true;
    }
    if let Some(u) = &g.become_user {
        spec.r#become.user = Some(u.clone());
    }
    Ok(spec)
}

/// The connection specs of the hosts `pattern` (then `--limit`) selects, in Ansible's order.
/// Inventory warnings go to stderr; an empty selection is `Ok(vec![])` (callers print
/// Ansible's "no hosts matched" warning and exit 0).
pub fn resolve_targets(g: &GlobalConfig, pattern: &str) -> Result<Vec<ConnSpec>> {
    let inv = Inventory::load(&g.inventory)?;
    for w in inv.warnings() {
        eprintln!("[WARNING]: {w}");
    }
    let hosts = inv.select(pattern, g.limit.as_deref())?;
    hosts
        .iter()
        .map(|h| apply_overrides(inv.conn_spec(h)?, g))
        .collect()
}

/// A [`GlobalConfig`] with every flag at its default (no inventory, 5 forks, 7 s timeout):
/// the base unit tests of fleet commands start from.
#[cfg(test)]
pub(crate) fn test_global() -> GlobalConfig {
    GlobalConfig {
        inventory: vec![],
        limit: None,
        forks: 5,
        remote_user: None,
        private_key: None,
        passphrase_env: None,
        known_hosts: None,
        host_key_checking: None,
        connect_timeout: std::time::Duration::from_secs(7),
        host_timeout: None,
        r#become: false,
        become_user: None,
        check: false,
        diff: false,
        output: crate::run::OutputMode::Text,
        verbose: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::time::Duration;

    fn global() -> GlobalConfig {
        test_global()
    }

    #[test]
    fn policies() {
        assert_eq!(parse_policy("yes").unwrap(), HostKeyPolicy::Strict);
        assert_eq!(
            parse_policy("accept-new").unwrap(),
            HostKeyPolicy::AcceptNew
        );
        assert_eq!(parse_policy("False").unwrap(), HostKeyPolicy::Off);
        assert!(parse_policy("maybe").is_err());
    }

    #[test]
    fn cli_overrides_inventory() {
        let mut spec = ConnSpec::new("h");
        spec.user = Some("inv".into());
        spec.identity_files = vec![PathBuf::from("/inv/key")];
        spec.connect_timeout = Some(Duration::from_secs(3));
        let s = apply_overrides(spec.clone(), &global()).unwrap();
        assert_eq!(s.user.as_deref(), Some("inv"));
        assert_eq!(s.connect_timeout, Some(Duration::from_secs(3)));
        assert!(!s.r#become.enabled);

        let mut g = global();
        g.remote_user = Some("cli".into());
        g.private_key = Some(PathBuf::from("/cli/key"));
        g.known_hosts = Some(PathBuf::from("/cli/kh"));
        g.host_key_checking = Some("accept-new".into());
        g.r#become = true;
        g.become_user = Some("postgres".into());
        let s = apply_overrides(spec, &g).unwrap();
        assert_eq!(s.user.as_deref(), Some("cli"));
        assert_eq!(s.identity_files, vec![PathBuf::from("/cli/key")]);
        assert_eq!(s.known_hosts_files, vec![PathBuf::from("/cli/kh")]);
        assert_eq!(s.host_key_policy, Some(HostKeyPolicy::AcceptNew));
        assert!(s.r#become.enabled);
        assert_eq!(s.r#become.user.as_deref(), Some("postgres"));
        let s = apply_overrides(ConnSpec::new("x"), &global()).unwrap();
        assert_eq!(s.connect_timeout, Some(Duration::from_secs(7)));
    }
}
