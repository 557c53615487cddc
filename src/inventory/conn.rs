//! [`ConnSpec`]: how to reach one host, resolved from its inventory variables.
//!
//! Built from `ansible_host`, `ansible_port`, `ansible_user`, `ansible_ssh_private_key_file`,
//! the `-o` options of `ansible_ssh_common_args`/`ansible_ssh_extra_args` that matter, and
//! `ansible_become*`. Command-line overrides are applied by the controller afterwards.

use std::path::PathBuf;
use std::time::Duration;

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
    /// Only `sudo` is supported.
    pub method: Option<String>,
    pub exe: Option<String>,
    pub flags: Option<String>,
}

/// How to reach and log in to one inventory host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnSpec {
    /// The inventory host name (for messages and results).
    pub name: String,
    /// Address to connect to (`ansible_host`, else the name).
    pub address: String,
    /// TCP port (`ansible_port`, `-o Port`, else 22).
    pub port: u16,
    /// Login user (`ansible_user`, `-o User`); `None` means "the controller's default".
    pub user: Option<String>,
    /// Private keys to offer, in order (`ansible_ssh_private_key_file`, `-o IdentityFile`).
    pub identity_files: Vec<PathBuf>,
    /// known_hosts files (`-o UserKnownHostsFile`); empty means the default.
    pub known_hosts_files: Vec<PathBuf>,
    /// `-o StrictHostKeyChecking`, `ansible_host_key_checking`; `None` means the default.
    pub host_key_policy: Option<HostKeyPolicy>,
    /// `-o ProxyJump`/`-J`, raw (`a,b`, `user@host:port`); connecting through it is the SSH
    /// layer's business (its `proxy` module).
    pub proxy_jump: Option<String>,
    /// `-o ProxyCommand`, raw (tokens unexpanded); `none` or absent: none.
    pub proxy_command: Option<String>,
    /// `-o ConnectTimeout`, `ansible_ssh_timeout`/`ansible_timeout`.
    pub connect_timeout: Option<Duration>,
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
            known_hosts_files: Vec::new(),
            host_key_policy: None,
            proxy_jump: None,
            proxy_command: None,
            connect_timeout: None,
            r#become: BecomeSpec::default(),
        }
    }
}

use serde_json::{Map, Value};

use super::InventoryError;
use super::shlex;

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

fn expand_tilde(p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    if p == "~"
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home);
    }
    PathBuf::from(p)
}

/// One `-o` style option collected from ssh argument strings, in command-line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshOption {
    /// Lower-cased option name.
    pub key: String,
    pub value: String,
}

/// Extract the options that matter from an ssh argument string (shell-like words):
/// `-o Key=V`, `-oKey=V`, `-o "Key V"`, plus `-i`, `-p`, `-l`, `-J`.
pub fn parse_ssh_args(args: &str) -> Result<Vec<SshOption>, String> {
    let words = shlex::split(args, false).map_err(|e| e.to_string())?;
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
                return Err(format!("option -{f} needs an argument"));
            };
            let opt = match f {
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
                    Some((key, rest.trim_end().to_string()))
                }
                'i' => Some(("identityfile".to_string(), arg)),
                'p' => Some(("port".to_string(), arg)),
                'l' => Some(("user".to_string(), arg)),
                'J' => Some(("proxyjump".to_string(), arg)),
                _ => None,
            };
            if let Some((key, value)) = opt {
                out.push(SshOption { key, value });
            }
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

impl ConnSpec {
    /// Build the spec for host `name` from its fully merged variables.
    ///
    /// Precedence follows the command line Ansible's ssh plugin builds (OpenSSH takes the first
    /// value of an option): `ansible_ssh_args`, then the options Ansible derives from
    /// `ansible_host_key_checking`, `ansible_port`, `ansible_ssh_private_key_file`,
    /// `ansible_user`, `ansible_timeout`, then `ansible_ssh_common_args`, then
    /// `ansible_ssh_extra_args`. Identity files accumulate in that order.
    pub fn from_vars(name: &str, vars: &Map<String, Value>) -> Result<ConnSpec, InventoryError> {
        let bad = |var: &str, msg: String| {
            InventoryError::Other(format!("host {name}: variable {var}: {msg}"))
        };
        // Templated values would need Jinja; refusing beats connecting to "{{ ... }}".
        for var in [
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
        ] {
            if let Some(Value::String(s)) = vars.get(var)
                && (s.contains("{{") || s.contains("{%"))
            {
                return Err(bad(
                    var,
                    "templated (Jinja) values are not supported".into(),
                ));
            }
        }
        let mut spec = ConnSpec::new(name);
        if let Some(h) = var_str(vars, &["ansible_host", "ansible_ssh_host"]) {
            spec.address = h;
        }
        // Options in the order Ansible puts them on the ssh command line.
        let mut opts: Vec<SshOption> = Vec::new();
        let push_args = |opts: &mut Vec<SshOption>, var: &str| -> Result<(), InventoryError> {
            if let Some(a) = var_str(vars, &[var]) {
                opts.extend(parse_ssh_args(&a).map_err(|e| bad(var, e))?);
            }
            Ok(())
        };
        push_args(&mut opts, "ansible_ssh_args")?;
        for var in ["ansible_host_key_checking", "ansible_ssh_host_key_checking"] {
            if let Some(v) = vars.get(var) {
                let b = ansible_bool(v).ok_or_else(|| bad(var, format!("not a boolean: {v}")))?;
                if !b {
                    opts.push(SshOption {
                        key: "stricthostkeychecking".into(),
                        value: "no".into(),
                    });
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
                opts.push(SshOption {
                    key: "port".into(),
                    value: s,
                });
                break;
            }
        }
        if let Some(k) = var_str(
            vars,
            &["ansible_ssh_private_key_file", "ansible_private_key_file"],
        ) {
            opts.push(SshOption {
                key: "identityfile".into(),
                value: k,
            });
        }
        if let Some(u) = var_str(vars, &["ansible_user", "ansible_ssh_user"]) {
            opts.push(SshOption {
                key: "user".into(),
                value: u,
            });
        }
        if let Some(t) = var_str(vars, &["ansible_ssh_timeout", "ansible_timeout"]) {
            opts.push(SshOption {
                key: "connecttimeout".into(),
                value: t,
            });
        }
        push_args(&mut opts, "ansible_ssh_common_args")?;
        push_args(&mut opts, "ansible_ssh_extra_args")?;

        let first = |key: &str| opts.iter().find(|o| o.key == key).map(|o| o.value.clone());
        if let Some(p) = first("port") {
            spec.port = p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad("ansible_port", format!("not a valid port: {p}")))?;
        }
        spec.user = first("user");
        spec.identity_files = opts
            .iter()
            .filter(|o| o.key == "identityfile")
            .map(|o| expand_tilde(&o.value))
            .collect();
        if let Some(files) = first("userknownhostsfile") {
            spec.known_hosts_files = shlex::split(&files, false)
                .map_err(|e| bad("UserKnownHostsFile", e.to_string()))?
                .iter()
                .map(|f| expand_tilde(f))
                .collect();
        }
        if let Some(v) = first("stricthostkeychecking") {
            spec.host_key_policy = Some(match v.to_ascii_lowercase().as_str() {
                "yes" | "ask" | "true" => HostKeyPolicy::Strict,
                "accept-new" => HostKeyPolicy::AcceptNew,
                "no" | "off" | "false" => HostKeyPolicy::Off,
                other => {
                    return Err(bad(
                        "StrictHostKeyChecking",
                        format!("unknown value {other:?} (yes, accept-new, no)"),
                    ));
                }
            });
        }
        // ProxyJump and ProxyCommand exclude each other: the first one given wins (as in ssh),
        // and `none` there means a direct connection.
        match opts
            .iter()
            .find(|o| o.key == "proxyjump" || o.key == "proxycommand")
        {
            Some(o) if o.value.trim().eq_ignore_ascii_case("none") => {}
            Some(o) if o.key == "proxyjump" => spec.proxy_jump = Some(o.value.clone()),
            Some(o) => spec.proxy_command = Some(o.value.clone()),
            None => {}
        }
        if let Some(t) = first("connecttimeout") {
            let secs: f64 = t
                .trim()
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s > 0.0)
                .ok_or_else(|| bad("ansible_timeout", format!("not a number of seconds: {t}")))?;
            spec.connect_timeout = Some(Duration::from_secs_f64(secs));
        }
        if let Some(v) = vars.get("ansible_become") {
            spec.r#become.enabled = ansible_bool(v)
                .ok_or_else(|| bad("ansible_become", format!("not a boolean: {v}")))?;
        }
        spec.r#become.user = var_str(vars, &["ansible_become_user"]);
        spec.r#become.method = var_str(vars, &["ansible_become_method"]);
        spec.r#become.exe = var_str(vars, &["ansible_become_exe"]);
        spec.r#become.flags = var_str(vars, &["ansible_become_flags"]);
        if let Some(m) = &spec.r#become.method
            && m != "sudo"
        {
            return Err(bad(
                "ansible_become_method",
                format!("become method {m:?} is not supported (only sudo)"),
            ));
        }
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
    fn proxyjump_and_proxycommand_first_one_wins() {
        let spec = |args: &str| {
            ConnSpec::from_vars("h", &vars(json!({"ansible_ssh_common_args": args}))).unwrap()
        };
        let s = spec("-o 'ProxyCommand socat - UNIX-CONNECT:/run/%h.sock' -J b1");
        assert_eq!(
            s.proxy_command.as_deref(),
            Some("socat - UNIX-CONNECT:/run/%h.sock")
        );
        assert_eq!(s.proxy_jump, None);
        let s = spec("-J u@b1:2200,b2 -o ProxyCommand=nc\\ %h\\ %p");
        assert_eq!(s.proxy_jump.as_deref(), Some("u@b1:2200,b2"));
        assert_eq!(s.proxy_command, None);
        let s = spec("-o ProxyCommand=none -o ProxyJump=b1");
        assert_eq!((s.proxy_jump, s.proxy_command), (None, None));
        let s = spec("-o ProxyJump=none -o ProxyCommand=x");
        assert_eq!((s.proxy_jump, s.proxy_command), (None, None));
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(ConnSpec::from_vars("h", &vars(json!({"ansible_port": "x"}))).is_err());
        assert!(ConnSpec::from_vars("h", &vars(json!({"ansible_port": 70000}))).is_err());
        assert!(ConnSpec::from_vars("h", &vars(json!({"ansible_user": "{{ u }}"}))).is_err());
        assert!(ConnSpec::from_vars("h", &vars(json!({"ansible_become": "maybe"}))).is_err());
        assert!(ConnSpec::from_vars("h", &vars(json!({"ansible_become_method": "su"}))).is_err());
    }
}
