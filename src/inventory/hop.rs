//! Jump hosts (`ProxyJump`) resolved as OpenSSH resolves them: each hop is its own `ssh`
//! invocation — `ssh [-l USER] [-p PORT] [-J EARLIER,HOPS] [-F FILE] HOST` — so it gets
//! the settings the configuration gives *that* host (its own User, IdentityFile,
//! known_hosts, its own ProxyJump when it is the first hop), and nothing of the target's
//! command-line options. [`HopResolver`] is handed to the SSH layer as a trait object
//! ([`ResolveHop`]), so the transport can resolve hops without importing the inventory.

use std::sync::Arc;

use super::InventoryError;
use super::conn::{ConnSpec, SshCommandLine, SshOption, SshSettings};
use crate::ssh_config::{ConfigFiles, jump};

/// Resolves the hop a spec connects through.
pub trait ResolveHop: Send + Sync + std::fmt::Debug {
    /// The spec of the hop `spec` connects through (the last host of its `proxy_jump`), or
    /// `None` without `proxy_jump`. The hop's own `proxy_jump` holds the hops before it
    /// (`a,b,c` → hop `c` with `proxy_jump = "a,b"`), so calling this again on the result
    /// walks the chain towards the controller. The hop's name is the hop as written
    /// (`ops@bastion:2222`).
    fn jump_host(&self, spec: &ConnSpec) -> Result<Option<ConnSpec>, InventoryError>;
}

/// A final touch on every hop spec (the controller applies its trust flags:
/// `--known-hosts`, `--host-key-checking`, the default connect timeout).
pub type HopPost = Arc<dyn Fn(ConnSpec) -> ConnSpec + Send + Sync>;

/// [`ResolveHop`] through the OpenSSH client configuration.
#[derive(Clone)]
pub struct HopResolver {
    settings: SshSettings,
    post: Option<HopPost>,
}

impl std::fmt::Debug for HopResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HopResolver")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl HopResolver {
    pub fn new(settings: SshSettings, post: Option<HopPost>) -> HopResolver {
        HopResolver { settings, post }
    }

    /// Resolve one hop `[user@]host[:port]` (or `ssh://...`), reached through the hops in
    /// `earlier` (`-J`), with config `files`.
    pub fn resolve_hop(
        &self,
        hop: &str,
        earlier: Option<&str>,
        files: &ConfigFiles,
    ) -> Result<ConnSpec, InventoryError> {
        let bad = |msg: String| InventoryError::Other(format!("ProxyJump hop {hop:?}: {msg}"));
        let h = jump::parse_hop(hop).ok_or_else(|| bad("not [user@]host[:port]".into()))?;
        let mut options = Vec::new();
        let flag = |f: char, key: &str, value: String| SshOption {
            flag: f,
            key: key.to_string(),
            value,
        };
        if let Some(u) = &h.user {
            options.push(flag('l', "user", u.clone()));
        }
        if let Some(p) = h.port {
            options.push(flag('p', "port", p.to_string()));
        }
        if let Some(e) = earlier {
            options.push(flag('J', "proxyjump", e.to_string()));
        }
        let cl = SshCommandLine {
            destination: h.host.clone(),
            options,
        };
        let settings = SshSettings {
            ctx: self.settings.ctx.clone(),
            files: files.clone(),
            forced: true,
        };
        let resolved = settings.resolve(hop, &cl)?;
        let mut spec = ConnSpec::from_resolved(hop, &resolved)?;
        spec.ssh_config_files = files.clone();
        Ok(match &self.post {
            Some(p) => p(spec),
            None => spec,
        })
    }
}

impl ResolveHop for HopResolver {
    fn jump_host(&self, spec: &ConnSpec) -> Result<Option<ConnSpec>, InventoryError> {
        let Some(pj) = &spec.proxy_jump else {
            return Ok(None);
        };
        let (earlier, last) = match pj.rfind(',') {
            Some(p) => (Some(&pj[..p]), &pj[p + 1..]),
            None => (None, pj.as_str()),
        };
        self.resolve_hop(last, earlier, &spec.ssh_config_files)
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::PathBuf;

    #[test]
    fn hops_resolve_through_the_same_config_as_their_own_hosts() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("cfg");
        std::fs::write(
            &f,
            "Host bastion\n  HostName 192.0.2.1\n  User jumper\n  IdentityFile /keys/bastion\n  ProxyJump outer\nHost inner*\n  ProxyJump ops@first:2201,bastion\n  User target\nHost *\n  Port 2222\n",
        )
        .unwrap();
        let settings = SshSettings::new(ConfigFiles::File(f), false).unwrap();
        let vars = json!({}).as_object().unwrap().clone();
        let target = ConnSpec::from_vars_with("inner1", &vars, &settings).unwrap();
        assert_eq!(target.proxy_jump.as_deref(), Some("ops@first:2201,bastion"));
        let r = HopResolver::new(settings, None);
        // The last hop: its own User/HostName/IdentityFile, the earlier hops as its -J
        // (which beats its own ProxyJump), nothing of the target's User.
        let b = r.jump_host(&target).unwrap().unwrap();
        assert_eq!(b.name, "bastion");
        assert_eq!(b.address, "192.0.2.1");
        assert_eq!(b.user.as_deref(), Some("jumper"));
        assert_eq!(b.port, 2222);
        assert_eq!(b.identity_files, [PathBuf::from("/keys/bastion")]);
        assert_eq!(b.proxy_jump.as_deref(), Some("ops@first:2201"));
        // The first hop: -l and -p from the hop text beat the config.
        let first = r.jump_host(&b).unwrap().unwrap();
        assert_eq!(first.name, "ops@first:2201");
        assert_eq!((first.address.as_str(), first.port), ("first", 2201));
        assert_eq!(first.user.as_deref(), Some("ops"));
        assert_eq!(first.proxy_jump, None);
        assert!(r.jump_host(&first).unwrap().is_none());
        // Asked directly, bastion goes through its own ProxyJump.
        let own = r
            .resolve_hop("bastion", None, &target.ssh_config_files)
            .unwrap();
        assert_eq!(own.proxy_jump.as_deref(), Some("outer"));
    }
}
