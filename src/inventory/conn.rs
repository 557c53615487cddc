//! [`ConnSpec`]: how to reach one host, resolved from its inventory variables and the
//! OpenSSH client configuration.
//!
//! The variables become the `ssh` command line Ansible's ssh plugin would build
//! ([`ssh_command_line`]: `ansible_ssh_args`, then the options derived from the connection
//! variables, then `ansible_ssh_common_args`, then `ansible_ssh_extra_args`); that ordered
//! option list and the config files (`~/.ssh/config`, `/etc/ssh/ssh_config`, or `-F`) are
//! resolved by [`crate::ssh_config`] exactly as `ssh -G` resolves them, and the result
//! becomes the spec ([`ConnSpec::from_resolved`]). `ansible_become*` is added on top.
//! Command-line overrides are applied by the controller afterwards.

use std::path::PathBuf;
use std::time::Duration;

use crate::secret::Secret;

/// Host key policy, as OpenSSH's `StrictHostKeyChecking` / Ansible's `host_key_checking`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostKeyPolicy {
    /// Unknown or changed host keys are refused (the default).
    #[default]
    Strict,
    /// Unknown host keys are learned (appended to known_hosts); changed ones are refused.
    AcceptNew,
    /// No checking at all.
    Off,
}

/// Privilege escalation for the remote side.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BecomeSpec {
    pub enabled: bool,
    /// Default `root`.
    pub user: Option<String>,
    /// `sudo` (default) or `su`.
    pub method: Option<String>,
    pub exe: Option<String>,
    pub flags: Option<String>,
    /// `ansible_become_password`/`ansible_become_pass`, or `-K`.
    pub password: Option<Secret>,
}

/// How to reach and log in to one inventory host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnSpec {
    /// The inventory host name (for messages and results).
    pub name: String,
    /// Address to connect to: the resolved `HostName` (`ansible_host`, else the name).
    pub address: String,
    /// TCP port (`ansible_port`, `-o Port`, `Port` in ssh_config, else 22).
    pub port: u16,
    /// Login user (`ansible_user`, `-o User`, `User` in ssh_config); `None` means "the
    /// controller's default".
    pub user: Option<String>,
    /// Private keys to offer, in order, expanded (`IdentityFile`s); empty means the
    /// defaults.
    pub identity_files: Vec<PathBuf>,
    /// `IdentitiesOnly`: offer only `identity_files` (and their certificates), no agent
    /// keys or defaults.
    pub identities_only: bool,
    /// `CertificateFile`s, expanded, in order.
    pub certificate_files: Vec<PathBuf>,
    /// `IdentityAgent`, expanded (`none` disables the agent, `SSH_AUTH_SOCK` is the
    /// environment's); `None` means the default.
    pub identity_agent: Option<String>,
    /// Login password (`ansible_password`/`ansible_ssh_pass`, or `-k`): password and
    /// keyboard-interactive authentication after the keys.
    pub password: Option<Secret>,
    /// User known_hosts files (`UserKnownHostsFile`); empty means the default.
    pub known_hosts_files: Vec<PathBuf>,
    /// Global known_hosts files (`GlobalKnownHostsFile`); empty means the default.
    pub global_known_hosts_files: Vec<PathBuf>,
    /// `StrictHostKeyChecking`, `ansible_host_key_checking`; `None` means the default.
    pub host_key_policy: Option<HostKeyPolicy>,
    /// `HostKeyAlias` (lower-cased): the name host keys are looked up and recorded under.
    pub host_key_alias: Option<String>,
    /// `ProxyJump` as written (`a,u@b:2200,c`; hops connect in that order, `c` last);
    /// `none` is `None`.
    pub proxy_jump: Option<String>,
    /// `ProxyCommand`, raw (tokens unexpanded); `none` is `None`.
    pub proxy_command: Option<String>,
    /// `ConnectTimeout` (`ansible_timeout`).
    pub connect_timeout: Option<Duration>,
    /// `ServerAliveInterval` (`None`: no keepalives).
    pub server_alive_interval: Option<Duration>,
    /// `ServerAliveCountMax`.
    pub server_alive_count_max: u32,
    /// The OpenSSH config files this spec was resolved with: jump hops are resolved with
    /// the same files (OpenSSH passes `-F` on to the `ssh` it runs for a hop).
    pub ssh_config_files: ConfigFiles,
    pub r#become: BecomeSpec,
}

impl ConnSpec {
    /// A spec with only a name: address = name, port 22, everything else default.
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        ConnSpec {
            address: name.clone(),
            name,
            port: 22,
            user: None,
            identity_files: Vec::new(),
            identities_only: false,
            certificate_files: Vec::new(),
            identity_agent: None,
            password: None,
            known_hosts_files: Vec::new(),
            global_known_hosts_files: Vec::new(),
            host_key_policy: None,
            host_key_alias: None,
            proxy_jump: None,
            proxy_command: None,
            connect_timeout: None,
            server_alive_interval: None,
            server_alive_count_max: 3,
            ssh_config_files: ConfigFiles::Disabled,
            r#become: BecomeSpec::default(),
        }
    }
}

use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};

use super::InventoryError;
use super::shlex;
use crate::ssh_config::{self, CmdOption, ConfigFiles, Context, Resolved, StrictHostKeyChecking};

/// Ansible's `boolean()` conversion for connection variables.
fn ansible_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Null => Some(false),
        Value::Number(n) => n.as_f64().and_then(|f| {
            if f == 1.0 {
                Some(true)
            } else if f == 0.0 {
                Some(false)
            } else {
                None
            }
        }),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "y" | "yes" | "on" | "1" | "true" | "t" | "1.0" => Some(true),
            "n" | "no" | "off" | "0" | "false" | "f" | "0.0" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// One option of an ssh command line, in command-line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshOption {
    /// The ssh flag: `o`, `p`, `l`, `i`, `J` or `F`.
    pub flag: char,
    /// Lower-cased option name (`-o`), or what the flag sets: `port`, `user`,
    /// `identityfile`, `proxyjump`, `configfile`.
    pub key: String,
    /// The value as ssh receives it (for `-o`, the text after the name and separator).
    pub value: String,
}

impl SshOption {
    /// A `-o Key=Value` option.
    pub fn o(key: &str, value: impl Into<String>) -> SshOption {
        SshOption {
            flag: 'o',
            key: key.to_ascii_lowercase(),
            value: value.into(),
        }
    }

    /// What the resolver takes (`None` for `-F`, which selects files instead).
    pub fn to_cmd(&self) -> Option<CmdOption> {
        Some(match self.flag {
            'o' => CmdOption::O(format!("{} {}", self.key, self.value)),
            'p' => CmdOption::Port(self.value.clone()),
            'l' => CmdOption::User(self.value.clone()),
            'i' => CmdOption::Identity(self.value.clone()),
            'J' => CmdOption::Jump(self.value.clone()),
            _ => return None,
        })
    }
}

/// An ssh argument string that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SshArgsError {
    #[error("{0}")]
    Words(String),
    #[error("option -{0} needs an argument")]
    MissingArgument(char),
}

/// Extract the options that matter from an ssh argument string (shell-like words):
/// `-o Key=V`, `-oKey=V`, `-o "Key V"`, plus `-i`, `-p`, `-l`, `-J` and `-F`. Other flags
/// are skipped (with their argument, per ssh(1)).
pub fn parse_ssh_args(args: &str) -> Result<Vec<SshOption>, SshArgsError> {
    let words = shlex::split(args, false).map_err(|e| SshArgsError::Words(e.to_string()))?;
    let mut out = Vec::new();
    let mut i = 0;
    // ssh flags that take an argument (from ssh(1)).
    const WITH_ARG: &str = "BbcDEeFIiJLlmOoPpQRSWw";
    while i < words.len() {
        let w = &words[i];
        i += 1;
        let Some(flags) = w.strip_prefix('-') else {
            continue;
        };
        for (pos, f) in flags.char_indices() {
            if !WITH_ARG.contains(f) {
                continue;
            }
            let attached = &flags[pos + f.len_utf8()..];
            let arg = if !attached.is_empty() {
                attached.to_string()
            } else if i < words.len() {
                i += 1;
                words[i - 1].clone()
            } else {
                return Err(SshArgsError::MissingArgument(f));
            };
            let key = match f {
                'o' => {
                    let t = arg.trim_start();
                    let split = t
                        .find(|c: char| c == '=' || c.is_whitespace())
                        .unwrap_or(t.len());
                    let key = t[..split].to_ascii_lowercase();
                    let mut rest = t[split..].trim_start();
                    if let Some(r) = rest.strip_prefix('=') {
                        rest = r.trim_start();
                    }
                    out.push(SshOption {
                        flag: 'o',
                        key,
                        value: rest.trim_end().to_string(),
                    });
                    break;
                }
                'i' => "identityfile",
                'p' => "port",
                'l' => "user",
                'J' => "proxyjump",
                'F' => "configfile",
                _ => break,
            };
            out.push(SshOption {
                flag: f,
                key: key.to_string(),
                value: arg,
            });
            break; // the rest of this word was the argument
        }
    }
    Ok(out)
}

fn var_str(vars: &Map<String, Value>, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| match vars.get(*n)? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        // `!unsafe` strings: `{"__ansible_unsafe": "..."}` (not templated, so usable as is).
        Value::Object(o)
            if o.len() == 1 && o.get("__ansible_unsafe").is_some_and(Value::is_string) =>
        {
            o.get("__ansible_unsafe")
                .and_then(Value::as_str)
                .map(str::to_string)
        }
        other => Some(other.to_string()),
    })
}

/// The `ssh` command line Ansible's ssh plugin builds for one host: the destination and
/// the options in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshCommandLine {
    /// `ansible_host`, else the inventory name: what `Host` patterns are matched against.
    pub destination: String,
    pub options: Vec<SshOption>,
}

impl SshCommandLine {
    /// The last `-F` (ssh keeps the last one).
    pub fn config_file(&self) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|o| o.flag == 'F')
            .map(|o| o.value.as_str())
    }

    /// The options as the resolver takes them.
    pub fn cmd_options(&self) -> Vec<CmdOption> {
        self.options.iter().filter_map(SshOption::to_cmd).collect()
    }
}

/// Variables whose values would need Jinja; refusing beats connecting to "{{ ... }}".
const CONNECTION_VARS: &[&str] = &[
    "ansible_host",
    "ansible_ssh_host",
    "ansible_port",
    "ansible_ssh_port",
    "ansible_user",
    "ansible_ssh_user",
    "ansible_ssh_private_key_file",
    "ansible_private_key_file",
    "ansible_ssh_args",
    "ansible_ssh_common_args",
    "ansible_ssh_extra_args",
    "ansible_host_key_checking",
    "ansible_ssh_host_key_checking",
    "ansible_become",
    "ansible_become_user",
    "ansible_become_method",
    "ansible_become_exe",
    "ansible_become_flags",
    "ansible_timeout",
    "ansible_ssh_timeout",
    "ansible_password",
    "ansible_ssh_pass",
    "ansible_ssh_password",
    "ansible_become_password",
    "ansible_become_pass",
];

fn bad_var(name: &str, var: &str, msg: impl std::fmt::Display) -> InventoryError {
    InventoryError::Other(format!("host {name}: variable {var}: {msg}"))
}

/// Build the ssh command line for host `name` from its merged variables, in the order
/// Ansible's ssh plugin puts the options (OpenSSH takes the first value of an option):
/// `ansible_ssh_args`, then the options Ansible derives from `ansible_host_key_checking`,
/// `ansible_port`, `ansible_ssh_private_key_file`, `ansible_user`, `ansible_timeout`, then
/// `ansible_ssh_common_args`, then `ansible_ssh_extra_args`. (ansible.cfg's `ssh_args`,
/// `ssh_common_args`, `ssh_extra_args` arrive as defaults of those variables.)
pub fn ssh_command_line(
    name: &str,
    vars: &Map<String, Value>,
) -> Result<SshCommandLine, InventoryError> {
    for var in CONNECTION_VARS {
        if let Some(Value::String(s)) = vars.get(*var)
            && (s.contains("{{") || s.contains("{%"))
        {
            return Err(bad_var(
                name,
                var,
                "templated (Jinja) values are not supported",
            ));
        }
    }
    let destination =
        var_str(vars, &["ansible_host", "ansible_ssh_host"]).unwrap_or_else(|| name.to_string());
    let mut opts: Vec<SshOption> = Vec::new();
    let push_args = |opts: &mut Vec<SshOption>, var: &str| -> Result<(), InventoryError> {
        if let Some(a) = var_str(vars, &[var]) {
            opts.extend(parse_ssh_args(&a).map_err(|e| bad_var(name, var, e))?);
        }
        Ok(())
    };
    push_args(&mut opts, "ansible_ssh_args")?;
    for var in ["ansible_host_key_checking", "ansible_ssh_host_key_checking"] {
        if let Some(v) = vars.get(var) {
            let b =
                ansible_bool(v).ok_or_else(|| bad_var(name, var, format!("not a boolean: {v}")))?;
            if !b {
                opts.push(SshOption::o("StrictHostKeyChecking", "no"));
            }
            break;
        }
    }
    for var in ["ansible_port", "ansible_ssh_port"] {
        if let Some(v) = vars.get(var).filter(|v| !v.is_null()) {
            let s = match v {
                Value::String(s) => s.trim().to_string(),
                other => other.to_string(),
            };
            // Refused here with the variable's name rather than as a bad `-o Port`.
            if !s.parse::<u16>().is_ok_and(|p| p > 0) {
                return Err(bad_var(name, var, format!("not a valid port: {s}")));
            }
            opts.push(SshOption::o("Port", s));
            break;
        }
    }
    if let Some(k) = var_str(
        vars,
        &["ansible_ssh_private_key_file", "ansible_private_key_file"],
    ) {
        opts.push(SshOption::o("IdentityFile", format!("\"{k}\"")));
    }
    if let Some(u) = var_str(vars, &["ansible_user", "ansible_ssh_user"]) {
        opts.push(SshOption::o("User", format!("\"{u}\"")));
    }
    if let Some(t) = var_str(vars, &["ansible_ssh_timeout", "ansible_timeout"]) {
        let t = t.trim().to_string();
        if ssh_config::keywords::convtime(&t).is_none_or(|s| s == 0) {
            return Err(bad_var(
                name,
                "ansible_timeout",
                format!("not a number of seconds: {t}"),
            ));
        }
        opts.push(SshOption::o("ConnectTimeout", t));
    }
    push_args(&mut opts, "ansible_ssh_common_args")?;
    push_args(&mut opts, "ansible_ssh_extra_args")?;
    Ok(SshCommandLine {
        destination,
        options: opts,
    })
}

/// How the OpenSSH client configuration is consulted when specs are built.
#[derive(Debug, Clone)]
pub struct SshSettings {
    pub ctx: Arc<Context>,
    /// The files: `--ssh-config` (or its absence: the defaults). A `-F` in a host's ssh
    /// arguments is used only when `forced` is false.
    pub files: ConfigFiles,
    /// `--ssh-config` was given: it beats `-F` in the inventory, as command-line flags
    /// beat inventory variables in sshfleet.
    pub forced: bool,
}

impl SshSettings {
    /// The local system's context with the given files.
    pub fn new(files: ConfigFiles, forced: bool) -> Result<SshSettings, InventoryError> {
        Ok(SshSettings {
            ctx: Arc::new(system_context()?),
            files,
            forced,
        })
    }

    /// No configuration files (as `ssh -F none`): only the inventory's options count.
    pub fn no_files() -> Result<SshSettings, InventoryError> {
        SshSettings::new(ConfigFiles::Disabled, false)
    }

    /// The files for one command line (`-F` inside it, unless `--ssh-config` was given).
    pub fn files_for(&self, cl: &SshCommandLine) -> ConfigFiles {
        match cl.config_file() {
            Some(f) if !self.forced => ConfigFiles::from_flag(f),
            _ => self.files.clone(),
        }
    }

    /// Resolve a command line as `ssh -G` would.
    pub fn resolve(&self, name: &str, cl: &SshCommandLine) -> Result<Resolved, InventoryError> {
        ssh_config::resolve(
            &self.ctx,
            &cl.destination,
            &cl.cmd_options(),
            &self.files_for(cl),
        )
        .map_err(|source| InventoryError::SshConfig {
            host: name.to_string(),
            source,
        })
    }
}

/// The system context, looked up once per process.
fn system_context() -> Result<Context, InventoryError> {
    static CTX: OnceLock<Result<Context, ssh_config::SshConfigError>> = OnceLock::new();
    CTX.get_or_init(Context::system)
        .clone()
        .map_err(|source| InventoryError::SshConfig {
            host: String::new(),
            source,
        })
}

impl ConnSpec {
    /// Build the spec for host `name` from its fully merged variables, without ssh
    /// configuration files (only the options the variables give).
    pub fn from_vars(name: &str, vars: &Map<String, Value>) -> Result<ConnSpec, InventoryError> {
        ConnSpec::from_vars_with(name, vars, &SshSettings::no_files()?)
    }

    /// Build the spec for host `name`: its ssh command line ([`ssh_command_line`])
    /// resolved with the ssh configuration of `settings`, then become.
    pub fn from_vars_with(
        name: &str,
        vars: &Map<String, Value>,
        settings: &SshSettings,
    ) -> Result<ConnSpec, InventoryError> {
        let cl = ssh_command_line(name, vars)?;
        let resolved = settings.resolve(name, &cl)?;
        let mut spec = ConnSpec::from_resolved(name, &resolved)?;
        spec.ssh_config_files = settings.files_for(&cl);
        let bad = |var: &str, msg: String| bad_var(name, var, msg);
        if let Some(v) = vars.get("ansible_become") {
            spec.r#become.enabled = ansible_bool(v)
                .ok_or_else(|| bad("ansible_become", format!("not a boolean: {v}")))?;
        }
        spec.r#become.user = var_str(vars, &["ansible_become_user"]);
        spec.r#become.method = var_str(vars, &["ansible_become_method"]);
        spec.r#become.exe = var_str(vars, &["ansible_become_exe"]);
        spec.r#become.flags = var_str(vars, &["ansible_become_flags"]);
        spec.r#become.password =
            var_str(vars, &["ansible_become_pass", "ansible_become_password"]).map(Secret::new);
        // Ansible takes the *last* of an option's variables that is set.
        spec.password = var_str(
            vars,
            &[
                "ansible_ssh_password",
                "ansible_ssh_pass",
                "ansible_password",
            ],
        )
        .map(Secret::new);
        if let Some(m) = &spec.r#become.method
            && m != "sudo"
            && m != "su"
        {
            return Err(bad(
                "ansible_become_method",
                format!("become method {m:?} is not supported (sudo, su)"),
            ));
        }
        Ok(spec)
    }

    /// The spec of what `ssh` resolved: `name` is used in messages and results.
    pub fn from_resolved(name: &str, r: &Resolved) -> Result<ConnSpec, InventoryError> {
        let expand = |what: &str, f: &str| -> Result<PathBuf, InventoryError> {
            r.expand(f)
                .map(PathBuf::from)
                .map_err(|e| InventoryError::SshConfig {
                    host: name.to_string(),
                    source: ssh_config::SshConfigError::Target {
                        target: r.host_arg.clone(),
                        msg: format!("{what} {f}: {e}"),
                    },
                })
        };
        let mut spec = ConnSpec::new(name);
        spec.address = r.hostname.clone();
        spec.port = r.port;
        spec.user = r.user_given.then(|| r.user.clone());
        if r.identity_files_given {
            spec.identity_files = r
                .identity_files
                .iter()
                .map(|f| expand("IdentityFile", f))
                .collect::<Result<_, _>>()?;
        }
        spec.identities_only = r.identities_only;
        spec.certificate_files = r
            .certificate_files
            .iter()
            .map(|f| expand("CertificateFile", f))
            .collect::<Result<_, _>>()?;
        spec.identity_agent = r.identity_agent.clone();
        if r.user_known_hosts_given {
            // `UserKnownHostsFile none`: no user file at all.
            spec.known_hosts_files = if r.user_known_hosts.is_empty() {
                vec![PathBuf::from("/dev/null")]
            } else {
                r.user_known_hosts.iter().map(PathBuf::from).collect()
            };
        }
        if r.global_known_hosts_given {
            // ssh expands only `~` in GlobalKnownHostsFile.
            spec.global_known_hosts_files = if r.global_known_hosts.is_empty() {
                vec![PathBuf::from("/dev/null")]
            } else {
                r.global_known_hosts
                    .iter()
                    .map(|f| {
                        r.expander.tilde(f).map(PathBuf::from).map_err(|e| {
                            InventoryError::SshConfig {
                                host: name.to_string(),
                                source: ssh_config::SshConfigError::Target {
                                    target: r.host_arg.clone(),
                                    msg: format!("GlobalKnownHostsFile {f}: {e}"),
                                },
                            }
                        })
                    })
                    .collect::<Result<_, _>>()?
            };
        }
        if r.strict_given {
            spec.host_key_policy = Some(match r.strict_host_key_checking {
                // `ask` cannot ask anyone here: unknown keys are refused, as with `yes`.
                StrictHostKeyChecking::Yes | StrictHostKeyChecking::Ask => HostKeyPolicy::Strict,
                StrictHostKeyChecking::AcceptNew => HostKeyPolicy::AcceptNew,
                StrictHostKeyChecking::No => HostKeyPolicy::Off,
            });
        }
        spec.host_key_alias = r.host_key_alias.clone();
        spec.proxy_jump = r.proxy_jump.as_ref().map(|j| j.raw.clone());
        spec.proxy_command = r.proxy_command.clone();
        spec.connect_timeout = r
            .connect_timeout
            .filter(|t| *t > 0)
            .map(|t| Duration::from_secs(t as u64));
        spec.server_alive_interval = (r.server_alive_interval > 0)
            .then(|| Duration::from_secs(r.server_alive_interval as u64));
        spec.server_alive_count_max = u32::try_from(r.server_alive_count_max).unwrap_or(u32::MAX);
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn ssh_arg_forms() {
        let o = parse_ssh_args(
            "-o UserKnownHostsFile=/tmp/kh -oStrictHostKeyChecking=accept-new -o 'ProxyJump bastion' -o \"ConnectTimeout = 5\" -i ~/.ssh/k -C -p 2200 -v",
        )
        .unwrap();
        let kv: Vec<(&str, &str)> = o
            .iter()
            .map(|o| (o.key.as_str(), o.value.as_str()))
            .collect();
        assert_eq!(
            kv,
            [
                ("userknownhostsfile", "/tmp/kh"),
                ("stricthostkeychecking", "accept-new"),
                ("proxyjump", "bastion"),
                ("connecttimeout", "5"),
                ("identityfile", "~/.ssh/k"),
                ("port", "2200"),
            ]
        );
        assert!(parse_ssh_args("-o").is_err());
        assert!(parse_ssh_args("-o 'unterminated").is_err());
        let f = parse_ssh_args("-F /etc/alt -J a,b -l root").unwrap();
        assert_eq!(
            f.iter()
                .map(|o| (o.flag, o.value.as_str()))
                .collect::<Vec<_>>(),
            [('F', "/etc/alt"), ('J', "a,b"), ('l', "root")]
        );
    }

    fn settings_with(text: &str) -> (tempfile::TempDir, SshSettings) {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("ssh_config");
        std::fs::write(&f, text).unwrap();
        let s = SshSettings::new(ConfigFiles::File(f), false).unwrap();
        (d, s)
    }

    #[test]
    fn ssh_config_resolves_aliases_behind_the_inventory_options() {
        let (_d, st) = settings_with(
            "Host web*\n  HostName %h.internal\n  User cfguser\n  Port 2200\n  ProxyJump ops@bastion:2222\n  IdentityFile /keys/cfg\n  IdentitiesOnly yes\n  HostKeyAlias WebAlias\n  ServerAliveInterval 15\nHost db\n  ProxyCommand ssh -W %h:%p gw\n",
        );
        // Variables (Ansible's -o options) come before the files: they win.
        let s = ConnSpec::from_vars_with(
            "web1",
            &vars(json!({"ansible_user": "deploy", "ansible_ssh_private_key_file": "/keys/inv"})),
            &st,
        )
        .unwrap();
        assert_eq!(s.address, "web1.internal");
        assert_eq!(s.user.as_deref(), Some("deploy"));
        assert_eq!(s.port, 2200);
        assert_eq!(
            s.identity_files,
            [PathBuf::from("/keys/inv"), PathBuf::from("/keys/cfg")]
        );
        assert!(s.identities_only);
        assert_eq!(s.proxy_jump.as_deref(), Some("ops@bastion:2222"));
        assert_eq!(s.host_key_alias.as_deref(), Some("webalias"));
        assert_eq!(s.server_alive_interval, Some(Duration::from_secs(15)));
        // ansible_host is what Host patterns see.
        let s = ConnSpec::from_vars_with("x", &vars(json!({"ansible_host": "db"})), &st).unwrap();
        assert_eq!(s.proxy_command.as_deref(), Some("ssh -W %h:%p gw"));
        assert_eq!(s.proxy_jump, None);
        // -F inside the ssh args selects another file; -F none disables.
        let s = ConnSpec::from_vars_with(
            "web1",
            &vars(json!({"ansible_ssh_common_args": "-F none"})),
            &st,
        )
        .unwrap();
        assert_eq!(s.address, "web1");
        // A config ssh would refuse is refused, naming the host.
        let (_d2, bad) = settings_with("Host other\n  Port nope\n");
        let e = ConnSpec::from_vars_with("web1", &vars(json!({})), &bad).unwrap_err();
        assert!(
            e.to_string().contains("host web1") && e.to_string().contains("line 2"),
            "{e}"
        );
    }

    #[test]
    fn from_vars_with_precedence() {
        let s = ConnSpec::from_vars(
            "web1",
            &vars(json!({
                "ansible_host": "10.0.0.5",
                "ansible_port": "2222",
                "ansible_user": "deploy",
                "ansible_ssh_private_key_file": "/keys/a",
                "ansible_ssh_common_args": "-o Port=9999 -o User=nobody -o IdentityFile=/keys/b -o UserKnownHostsFile='/kh1 /kh2' -o StrictHostKeyChecking=yes -o ProxyJump=jump",
                "ansible_become": "yes",
                "ansible_become_user": "root",
            })),
        )
        .unwrap();
        assert_eq!(s.address, "10.0.0.5");
        assert_eq!(s.port, 2222);
        assert_eq!(s.user.as_deref(), Some("deploy"));
        assert_eq!(
            s.identity_files,
            [PathBuf::from("/keys/a"), PathBuf::from("/keys/b")]
        );
        assert_eq!(
            s.known_hosts_files,
            [PathBuf::from("/kh1"), PathBuf::from("/kh2")]
        );
        assert_eq!(s.host_key_policy, Some(HostKeyPolicy::Strict));
        assert_eq!(s.proxy_jump.as_deref(), Some("jump"));
        assert!(s.r#become.enabled);
        assert_eq!(s.r#become.user.as_deref(), Some("root"));

        let s = ConnSpec::from_vars(
            "h",
            &vars(json!({"ansible_ssh_extra_args": "-o Port=2201", "ansible_host_key_checking": false})),
        )
        .unwrap();
        assert_eq!(s.port, 2201);
        assert_eq!(s.address, "h");
        assert_eq!(s.host_key_policy, Some(HostKeyPolicy::Off));
    }

    #[test]
    fn proxyjump_and_proxycommand_as_ssh_resolves_them() {
        // Each expectation is what `ssh -G -F none ARGS h` (OpenSSH 9.2) prints.
        let spec =
            |args: &str| ConnSpec::from_vars("h", &vars(json!({"ansible_ssh_common_args": args})));
        // ssh: "Cannot specify -J with ProxyCommand".
        let e = spec("-o 'ProxyCommand socat - UNIX-CONNECT:/run/%h.sock' -J b1").unwrap_err();
        assert!(
            e.to_string()
                .contains("Cannot specify -J with ProxyCommand"),
            "{e}"
        );
        let s = spec("-J u@b1:2200,b2 -o ProxyCommand=nc\\ %h\\ %p").unwrap();
        assert_eq!(s.proxy_jump.as_deref(), Some("u@b1:2200,b2"));
        assert_eq!(s.proxy_command, None);
        let s = spec("-o ProxyCommand=none -o ProxyJump=b1").unwrap();
        assert_eq!((s.proxy_jump, s.proxy_command), (None, None));
        // Not pinned: `-o ProxyJump=none -o ProxyCommand=x`, where `ssh -G` prints
        // `proxycommand x` and sshfleet (following readconf.c's "ProxyJump set: skip
        // ProxyCommand") has none; an open discrepancy (README, Limits).
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(ConnSpec::from_vars("h", &vars(json!({"ansible_port": "x"}))).is_err());
        assert!(ConnSpec::from_vars("h", &vars(json!({"ansible_port": 70000}))).is_err());
        assert!(ConnSpec::from_vars("h", &vars(json!({"ansible_user": "{{ u }}"}))).is_err());
        assert!(ConnSpec::from_vars("h", &vars(json!({"ansible_become": "maybe"}))).is_err());
        assert!(ConnSpec::from_vars("h", &vars(json!({"ansible_become_method": "doas"}))).is_err());
        assert!(
            ConnSpec::from_vars("h", &vars(json!({"ansible_password": "{{ vault_pw }}"}))).is_err()
        );
    }

    #[test]
    fn passwords_certificates_and_su() {
        let s = ConnSpec::from_vars(
            "h",
            &vars(json!({
                "ansible_ssh_pass": "pw1",
                "ansible_become_pass": "pw2",
                "ansible_become_method": "su",
                "ansible_ssh_common_args": "-o CertificateFile=/k/id-cert.pub -o HostKeyAlias=web.example",
            })),
        )
        .unwrap();
        assert_eq!(s.password.as_ref().map(Secret::expose), Some("pw1"));
        assert_eq!(
            s.r#become.password.as_ref().map(Secret::expose),
            Some("pw2")
        );
        assert_eq!(s.r#become.method.as_deref(), Some("su"));
        assert_eq!(s.certificate_files, [PathBuf::from("/k/id-cert.pub")]);
        assert_eq!(s.host_key_alias.as_deref(), Some("web.example"));
        // As in Ansible, the last variable of the option's list that is set wins
        // (ansible_password, ansible_ssh_pass, ansible_ssh_password); none is printed.
        let s = ConnSpec::from_vars(
            "h",
            &vars(json!({"ansible_password": "a", "ansible_ssh_pass": "b"})),
        )
        .unwrap();
        assert_eq!(s.password.as_ref().map(Secret::expose), Some("b"));
        assert!(!format!("{s:?}").contains("\"b\""));
        assert!(!format!("{s:?}").contains("\"a\""));
    }
}
