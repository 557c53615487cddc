//! Resolve the hosts a command works on: load the inventory, select `pattern` then
//! `--limit`, build each host's [`ConnSpec`] (its variables as the ssh command line
//! Ansible would build, resolved with the OpenSSH client configuration: `--ssh-config`,
//! else `-F` in the host's ssh args, else `~/.ssh/config` + `/etc/ssh/ssh_config`; see
//! [`ssh_settings`]) and apply the command-line overrides ([`ConnOverrides`]). Every fleet
//! command calls [`resolve_targets`].
//!
//! Precedence, as ansible-core 2.19 resolves it (checked against `ansible -vvv` by the
//! differential test `tests/integration/ansible_config.rs`): ansible.cfg < `ANSIBLE_*` < the
//! Ansible flags (`-u`, `--private-key`, `-T`, `-b`, `--become-user`, `--ssh-common-args`,
//! `--ssh-extra-args`) < inventory and host variables. The first three are the *defaults of
//! the connection variables* ([`ConnDefaults`], filled into each host's variables by
//! [`HostVars`]); the ssh option list built from the variables then decides, first value
//! winning, so ansible.cfg's `ssh_args` (which Ansible puts first on the `ssh` command line)
//! beats everything. sshfleet's own flags `--known-hosts` and `--host-key-checking` override
//! the inventory.
//!
//! The variables' ssh option list is then resolved through the OpenSSH client configuration
//! (`--ssh-config FILE`, else `-F` in the ssh args, else `~/.ssh/config` and
//! `/etc/ssh/ssh_config`), as `ssh` resolves its command line against its config files.
//!
//! Passwords from `-k`/`-K` (or their `--*-env` variables, or `ask_pass`/`become_ask_pass` in
//! ansible.cfg) fill in hosts whose inventory sets none: as in Ansible, `ansible_password` and
//! `ansible_become_password` win over the command line.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::ansible_config::conn::ConnDefaults;
use crate::inventory::conn::{ConnSpec, HostKeyPolicy, SshSettings};
use crate::inventory::hop::{HopPost, HopResolver, ResolveHop};
use crate::inventory::{Inventory, InventoryError};
use crate::secret::{Secret, SecretSource};
use crate::ssh_config::ConfigFiles;

pub use super::explain::HostVars;

/// Resolving hosts failed (the inventory could not be read, a pattern is bad, or the
/// configuration asks for something sshfleet cannot do).
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    /// ansible.cfg / `ANSIBLE_BECOME_METHOD` names a method other than sudo for a host that
    /// becomes.
    #[error("host {host}: become_method {method:?} ({origin}) is not supported (sudo, su)")]
    BecomeMethod {
        host: String,
        method: String,
        origin: String,
    },
    /// A command-line password could not be had (`--password-env` unset, no terminal).
    #[error("{0}")]
    Secret(String),
}

/// Which hosts: a pattern, then `--limit`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection<'a> {
    pub pattern: &'a str,
    pub limit: Option<&'a str>,
}

/// The connection flags of the command line (`-u`, `--private-key`, `--known-hosts`,
/// `--host-key-checking`, `-T`, `-b`, `--become-user`, `--passphrase-env`), already parsed,
/// and the connection defaults they make with ansible.cfg and `ANSIBLE_*`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnOverrides {
    /// `-u` (already part of [`ConnOverrides::defaults`]).
    pub remote_user: Option<String>,
    /// `--private-key` (already part of [`ConnOverrides::defaults`]).
    pub private_key: Option<PathBuf>,
    /// Environment variable holding the passphrase of an encrypted private key.
    pub passphrase_env: Option<String>,
    pub known_hosts: Option<PathBuf>,
    pub host_key_policy: Option<HostKeyPolicy>,
    /// The connect timeout of a spec without one (`-T`, else `timeout`, else 10 s).
    pub connect_timeout: Duration,
    /// `-b` (already part of [`ConnOverrides::defaults`]).
    pub r#become: bool,
    /// `--become-user` (already part of [`ConnOverrides::defaults`]).
    pub become_user: Option<String>,
    /// ansible.cfg < `ANSIBLE_*` < the Ansible flags: the defaults of each host's connection
    /// variables.
    pub defaults: Arc<ConnDefaults>,
    /// `--ssh-config FILE` (`none`: no file): the OpenSSH client config instead of
    /// `~/.ssh/config` + `/etc/ssh/ssh_config`; beats `-F` in the inventory's ssh args.
    pub ssh_config: Option<String>,
    /// `--become-method` (sudo, su; checked by the command line).
    pub become_method: Option<String>,
    /// `-k` / `--password-env`: the login password for every host.
    pub password: SecretSource,
    /// `-K` / `--become-password-env`: the become password for every host.
    pub become_password: SecretSource,
}

impl Default for ConnOverrides {
    /// No overrides, no configuration: Ansible's defaults, `-T 10`.
    fn default() -> Self {
        ConnOverrides {
            remote_user: None,
            private_key: None,
            passphrase_env: None,
            known_hosts: None,
            host_key_policy: None,
            connect_timeout: Duration::from_secs(10),
            r#become: false,
            become_user: None,
            defaults: Arc::new(ConnDefaults::default()),
            ssh_config: None,
            become_method: None,
            password: SecretSource::None,
            become_password: SecretSource::None,
        }
    }
}

/// The command line's login and become passwords, asked for (or read from their environment
/// variables) once per run. Like Ansible, an empty become answer means "the SSH password".
pub fn command_line_secrets(
    g: &ConnOverrides,
) -> Result<(Option<Secret>, Option<Secret>), ResolveError> {
    let get =
        |src: &SecretSource, flag: &str, prompt: &str| -> Result<Option<Secret>, ResolveError> {
            match src {
                SecretSource::None => Ok(None),
                SecretSource::Env(var) => Secret::from_env(var).map(Some).ok_or_else(|| {
                    ResolveError::Secret(format!("{flag}: environment variable {var} is not set"))
                }),
                SecretSource::Prompt => crate::ssh::keys::prompt(prompt)
                    .map(|s| Some(Secret::new(s)))
                    .map_err(|e| {
                        ResolveError::Secret(format!(
                            "{flag}: cannot read a password from the terminal: {e}"
                        ))
                    }),
            }
        };
    // ansible.cfg's `ask_pass` / `become_ask_pass` (or `ANSIBLE_ASK_PASS`, ...) ask as -k / -K.
    let or_config = |src: &SecretSource,
                     on: &crate::ansible_config::conn::Sourced<bool>,
                     flag: &str,
                     key: &str| {
        match src {
            SecretSource::None if on.value => (
                SecretSource::Prompt,
                format!("{key} ({})", on.origin.label()),
            ),
            other => (other.clone(), flag.to_string()),
        }
    };
    let (password, pw_label) =
        or_config(&g.password, &g.defaults.ask_pass, "--ask-pass", "ask_pass");
    let (become_password, bpw_label) = or_config(
        &g.become_password,
        &g.defaults.become_ask_pass,
        "--ask-become-pass",
        "become_ask_pass",
    );
    let login = get(&password, &pw_label, "SSH password: ")?;
    let become_prompt = if login.is_some() {
        "BECOME password[defaults to SSH password]: "
    } else {
        "BECOME password: "
    };
    let mut become_pw = get(&become_password, &bpw_label, become_prompt)?;
    if become_password == SecretSource::Prompt
        && become_pw.as_ref().is_some_and(|s| s.expose().is_empty())
    {
        become_pw = login.clone();
    }
    Ok((login, become_pw))
}

/// Fill in the command line's passwords (see [`command_line_secrets`]) where the inventory
/// sets none.
pub fn apply_secrets(
    mut spec: ConnSpec,
    login: &Option<Secret>,
    become_pw: &Option<Secret>,
) -> ConnSpec {
    if spec.password.is_none() {
        spec.password = login.clone();
    }
    if spec.r#become.password.is_none() {
        spec.r#become.password = become_pw.clone();
    }
    spec
}

/// Resolves `ProxyJump` hops for the SSH layer ([`ResolveHop`]), through the same OpenSSH
/// configuration as the targets. Each hop is resolved as OpenSSH resolves it (its own
/// `ssh -l USER -p PORT -J EARLIER HOP`): `-u`, `--private-key` and become do not apply to
/// hops, as `ssh -J` passes none of the target's options on; the trust flags do
/// (`--known-hosts`, `--host-key-checking`) and `-T` is the default connect timeout.
pub fn hop_resolver(g: &ConnOverrides) -> Result<Arc<dyn ResolveHop>, ResolveError> {
    let settings = ssh_settings(g)?;
    let known_hosts = g.known_hosts.clone();
    let policy = g.host_key_policy;
    let timeout = g.connect_timeout;
    let post: HopPost = Arc::new(move |mut spec: ConnSpec| {
        if let Some(f) = &known_hosts {
            spec.known_hosts_files = vec![f.clone()];
        }
        if let Some(p) = policy {
            spec.host_key_policy = Some(p);
        }
        if spec.connect_timeout.is_none() {
            spec.connect_timeout = Some(timeout);
        }
        spec
    });
    Ok(Arc::new(HopResolver::new(settings, Some(post))))
}

/// The OpenSSH config source of this invocation (`--ssh-config`, else the defaults).
pub fn ssh_settings(g: &ConnOverrides) -> Result<SshSettings, ResolveError> {
    Ok(match &g.ssh_config {
        Some(f) => SshSettings::new(ConfigFiles::from_flag(f), true)?,
        None => SshSettings::new(ConfigFiles::Default, false)?,
    })
}

/// Apply sshfleet's own overrides (`--known-hosts`, `--host-key-checking`) and the
/// configured become method to one host's spec.
pub fn apply_overrides(mut spec: ConnSpec, g: &ConnOverrides) -> Result<ConnSpec, ResolveError> {
    if let Some(f) = &g.known_hosts {
        spec.known_hosts_files = vec![f.clone()];
    }
    if let Some(p) = g.host_key_policy {
        spec.host_key_policy = Some(p);
    }
    if spec.connect_timeout.is_none() {
        spec.connect_timeout = Some(g.connect_timeout);
    }
    // Inventory `ansible_become_method` < ... as Ansible: inventory beats `--become-method`,
    // which beats ansible.cfg / `ANSIBLE_BECOME_METHOD`.
    if spec.r#become.method.is_none() {
        spec.r#become.method = g.become_method.clone();
    }
    if spec.r#become.enabled && spec.r#become.method.is_none() {
        let method = &g.defaults.become_method;
        if !matches!(method.value.as_str(), "sudo" | "su") {
            return Err(ResolveError::BecomeMethod {
                host: spec.name,
                method: method.value.clone(),
                origin: method.origin.label(),
            });
        }
        if method.value != "sudo" {
            spec.r#become.method = Some(method.value.clone());
        }
    }
    Ok(spec)
}

/// Host `name`'s variables with the configuration's defaults filled in.
pub fn host_vars(inv: &Inventory, name: &str, g: &ConnOverrides) -> Result<HostVars, ResolveError> {
    let vars = inv
        .host_vars(name)
        .ok_or_else(|| InventoryError::Other(format!("host {name} is not in the inventory")))?;
    Ok(HostVars::new(vars, &g.defaults))
}

/// The connection specs of the hosts `sel` selects in `inventory` (sources as `-i` gives
/// them), in Ansible's order, with the overrides applied. Inventory warnings go to stderr; an
/// empty selection is `Ok(vec![])` (callers print Ansible's "no hosts matched" warning and
/// exit 0).
pub fn resolve_targets(
    inventory: &[String],
    sel: &Selection<'_>,
    overrides: &ConnOverrides,
) -> Result<Vec<ConnSpec>, ResolveError> {
    let inv = Inventory::load(inventory)?;
    for w in inv.warnings() {
        eprintln!("[WARNING]: {w}");
    }
    let hosts = inv.select(sel.pattern, sel.limit)?;
    let settings = ssh_settings(overrides)?;
    let specs = hosts
        .iter()
        .map(|h| {
            apply_overrides(
                host_vars(&inv, h, overrides)?.spec_with(h, &settings)?,
                overrides,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    if specs.is_empty() {
        return Ok(specs);
    }
    let (login, become_pw) = command_line_secrets(overrides)?;
    Ok(specs
        .into_iter()
        .map(|s| apply_secrets(s, &login, &become_pw))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ansible_config::conn::CliConn;
    use crate::ansible_config::{AnsibleConfig, Env};
    use serde_json::json;
    use std::path::Path;

    fn global() -> ConnOverrides {
        ConnOverrides {
            connect_timeout: Duration::from_secs(7),
            ..Default::default()
        }
    }

    /// Overrides whose ansible.cfg is `cfg` and whose Ansible flags are `cli`.
    fn global_with(cfg: &str, cli: CliConn) -> ConnOverrides {
        let env = Env::fixed([], "/cwd");
        let config =
            AnsibleConfig::from_text(Some((Path::new("/p/ansible.cfg"), cfg)), &env).unwrap();
        ConnOverrides {
            defaults: Arc::new(ConnDefaults::resolve(&config, &cli, env.cwd())),
            ..global()
        }
    }

    fn spec(vars: serde_json::Value, g: &ConnOverrides) -> Result<ConnSpec, ResolveError> {
        let hv = HostVars::new(vars.as_object().unwrap().clone(), &g.defaults);
        apply_overrides(hv.spec("h")?, g)
    }

    // ansible-core 2.19, `ansible -vvv -u cli --private-key /cli/key` with ansible_user and
    // ansible_ssh_private_key_file in the inventory: `User="inv"`, `IdentityFile="/inv/key"`.
    #[test]
    fn inventory_beats_cli_beats_config() {
        let cli = CliConn {
            remote_user: Some("cli".into()),
            private_key: Some(PathBuf::from("/cli/key")),
            timeout: Some(4),
            r#become: true,
            become_user: Some("postgres".into()),
            ..Default::default()
        };
        let g = global_with("[defaults]\nremote_user = cfg\n", cli);
        let inv = json!({"ansible_user": "inv", "ansible_ssh_private_key_file": "/inv/key",
                          "ansible_timeout": 3, "ansible_become": false});
        let s = spec(inv, &g).unwrap();
        assert_eq!(s.user.as_deref(), Some("inv"));
        assert_eq!(s.identity_files, vec![PathBuf::from("/inv/key")]);
        assert_eq!(s.connect_timeout, Some(Duration::from_secs(3)));
        assert!(!s.r#become.enabled);
        let s = spec(json!({}), &g).unwrap();
        assert_eq!(s.user.as_deref(), Some("cli"));
        assert_eq!(s.identity_files, vec![PathBuf::from("/cli/key")]);
        assert_eq!(s.connect_timeout, Some(Duration::from_secs(4)));
        assert!(s.r#become.enabled);
        assert_eq!(s.r#become.user.as_deref(), Some("postgres"));
        let g = global_with("[defaults]\nremote_user = cfg\n", CliConn::default());
        assert_eq!(spec(json!({}), &g).unwrap().user.as_deref(), Some("cfg"));
        // No configuration at all: Ansible's default ConnectTimeout=10 is on every spec.
        let s = spec(json!({}), &global()).unwrap();
        assert_eq!(s.connect_timeout, Some(Duration::from_secs(10)));
        assert_eq!(s.user, None);
    }

    #[test]
    fn sshfleet_flags_override_inventory() {
        let mut g = global();
        g.known_hosts = Some(PathBuf::from("/cli/kh"));
        g.host_key_policy = Some(HostKeyPolicy::AcceptNew);
        let s = spec(
            json!({"ansible_ssh_common_args": "-o UserKnownHostsFile=/inv/kh -o StrictHostKeyChecking=yes"}),
            &g,
        )
        .unwrap();
        assert_eq!(s.known_hosts_files, vec![PathBuf::from("/cli/kh")]);
        assert_eq!(s.host_key_policy, Some(HostKeyPolicy::AcceptNew));
    }

    #[test]
    fn become_method_from_the_config_and_password_prompts() {
        let g = global_with(
            "[privilege_escalation]\nbecome = true\nbecome_method = su\n",
            CliConn::default(),
        );
        assert_eq!(
            spec(json!({}), &g).unwrap().r#become.method.as_deref(),
            Some("su")
        );
        // The inventory's method wins over the configuration's.
        assert_eq!(
            spec(json!({"ansible_become_method": "sudo"}), &g)
                .unwrap()
                .r#become
                .method
                .as_deref(),
            Some("sudo")
        );
        let g = global_with(
            "[privilege_escalation]\nbecome = true\nbecome_method = doas\n",
            CliConn::default(),
        );
        let e = spec(json!({}), &g).unwrap_err().to_string();
        assert!(
            e.contains("become_method \"doas\" (/p/ansible.cfg:3) is not supported"),
            "{e}"
        );
        // Without become the method does not matter.
        assert!(spec(json!({"ansible_become": false}), &g).is_ok());
        // ask_pass asks as -k does; with no terminal (tests) that fails naming the setting.
        let g = global_with("[defaults]\nask_pass = yes\n", CliConn::default());
        if std::fs::File::open("/dev/tty").is_err() {
            let e = command_line_secrets(&g).unwrap_err().to_string();
            assert!(
                e.starts_with("ask_pass (/p/ansible.cfg:2): cannot read"),
                "{e}"
            );
        }
        assert_eq!(command_line_secrets(&global()).unwrap(), (None, None));
    }

    #[test]
    fn command_line_passwords_fill_in_and_inventory_wins() {
        let var = "SSHFLEET_TEST_RESOLVE_PW";
        // SAFETY: a variable only this test uses.
        unsafe { std::env::set_var(var, "cli-pw") };
        let mut g = global();
        g.password = SecretSource::Env(var.into());
        g.become_password = SecretSource::Env(var.into());
        let (l, b) = command_line_secrets(&g).unwrap();
        assert_eq!(l.as_ref().map(Secret::expose), Some("cli-pw"));
        let mut inv = ConnSpec::new("h");
        inv.password = Some(Secret::new("inv-pw"));
        let s = apply_secrets(inv, &l, &b);
        assert_eq!(s.password.as_ref().map(Secret::expose), Some("inv-pw"));
        assert_eq!(
            s.r#become.password.as_ref().map(Secret::expose),
            Some("cli-pw")
        );
        g.password = SecretSource::Env("SSHFLEET_TEST_RESOLVE_UNSET".into());
        let e = command_line_secrets(&g).unwrap_err().to_string();
        assert!(e.contains("SSHFLEET_TEST_RESOLVE_UNSET"), "{e}");
        let mut g = global();
        g.become_method = Some("su".into());
        let s = apply_overrides(ConnSpec::new("h"), &g).unwrap();
        assert_eq!(s.r#become.method.as_deref(), Some("su"));
    }
}
