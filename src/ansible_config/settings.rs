//! The Ansible settings sshfleet honours (names, environment variables, ini keys, types and
//! defaults copied from ansible-core 2.19's `config/base.yml` and the `ssh` connection
//! plugin's options) and their resolution: environment beats ini file beats default; among
//! several environment variables or ini keys of one setting the last listed that is set wins
//! (`ConfigManager._loop_entries`).

use std::path::{Path, PathBuf};

use super::convert;
use super::ini::IniFile;
use super::{ConfigError, Env};

/// A setting's type (`base.yml`'s `type:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Int,
    Str,
    Path,
    PathList,
}

/// One setting definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Def {
    /// sshfleet's key for it (the ini key, e.g. `remote_user`).
    pub key: &'static str,
    /// Ansible's name as `ansible-config dump` prints it (e.g. `DEFAULT_REMOTE_USER`; plugin
    /// options of the ssh connection as the plugin names them, e.g. `ssh_args`).
    pub ansible_name: &'static str,
    pub kind: Kind,
    /// Environment variables, lowest precedence first.
    pub env: &'static [&'static str],
    /// `(section, key)` in the ini file, lowest precedence first.
    pub ini: &'static [(&'static str, &'static str)],
    /// The default as Ansible writes it (`None`: unset).
    pub default: Option<&'static str>,
}

const fn def(
    key: &'static str,
    ansible_name: &'static str,
    kind: Kind,
    env: &'static [&'static str],
    ini: &'static [(&'static str, &'static str)],
    default: Option<&'static str>,
) -> Def {
    Def {
        key,
        ansible_name,
        kind,
        env,
        ini,
        default,
    }
}

/// Ansible's default `ssh_args`.
pub const DEFAULT_SSH_ARGS: &str = "-C -o ControlMaster=auto -o ControlPersist=60s";

/// Every setting sshfleet applies (see [`Settings`] for what each does).
pub const HONOURED: &[Def] = &[
    def(
        "inventory",
        "DEFAULT_HOST_LIST",
        Kind::PathList,
        &["ANSIBLE_INVENTORY"],
        &[("defaults", "inventory")],
        Some("/etc/ansible/hosts"),
    ),
    def(
        "remote_user",
        "DEFAULT_REMOTE_USER",
        Kind::Str,
        &["ANSIBLE_REMOTE_USER"],
        &[("defaults", "remote_user")],
        None,
    ),
    def(
        "remote_port",
        "DEFAULT_REMOTE_PORT",
        Kind::Int,
        &["ANSIBLE_REMOTE_PORT"],
        &[("defaults", "remote_port")],
        None,
    ),
    def(
        "private_key_file",
        "DEFAULT_PRIVATE_KEY_FILE",
        Kind::Path,
        &["ANSIBLE_PRIVATE_KEY_FILE"],
        &[("defaults", "private_key_file")],
        None,
    ),
    def(
        "forks",
        "DEFAULT_FORKS",
        Kind::Int,
        &["ANSIBLE_FORKS"],
        &[("defaults", "forks")],
        Some("5"),
    ),
    // The connection timeout Ansible puts on the ssh command line is DEFAULT_TIMEOUT (it reaches
    // the ssh plugin as a play keyword, which beats the plugin's own ANSIBLE_SSH_TIMEOUT and
    // [ssh_connection] timeout: those never take effect; see SHADOWED).
    def(
        "timeout",
        "DEFAULT_TIMEOUT",
        Kind::Int,
        &["ANSIBLE_TIMEOUT"],
        &[("defaults", "timeout")],
        Some("10"),
    ),
    def(
        "host_key_checking",
        "HOST_KEY_CHECKING",
        Kind::Bool,
        &["ANSIBLE_HOST_KEY_CHECKING", "ANSIBLE_SSH_HOST_KEY_CHECKING"],
        &[
            ("defaults", "host_key_checking"),
            ("ssh_connection", "host_key_checking"),
        ],
        Some("True"),
    ),
    def(
        "become",
        "DEFAULT_BECOME",
        Kind::Bool,
        &["ANSIBLE_BECOME"],
        &[("privilege_escalation", "become")],
        Some("False"),
    ),
    def(
        "become_method",
        "DEFAULT_BECOME_METHOD",
        Kind::Str,
        &["ANSIBLE_BECOME_METHOD"],
        &[("privilege_escalation", "become_method")],
        Some("sudo"),
    ),
    def(
        "become_user",
        "DEFAULT_BECOME_USER",
        Kind::Str,
        &["ANSIBLE_BECOME_USER"],
        &[("privilege_escalation", "become_user")],
        Some("root"),
    ),
    def(
        "become_ask_pass",
        "DEFAULT_BECOME_ASK_PASS",
        Kind::Bool,
        &["ANSIBLE_BECOME_ASK_PASS"],
        &[("privilege_escalation", "become_ask_pass")],
        Some("False"),
    ),
    def(
        "ask_pass",
        "DEFAULT_ASK_PASS",
        Kind::Bool,
        &["ANSIBLE_ASK_PASS"],
        &[("defaults", "ask_pass")],
        Some("False"),
    ),
    def(
        "ssh_args",
        "ssh_args",
        Kind::Str,
        &["ANSIBLE_SSH_ARGS"],
        &[("ssh_connection", "ssh_args")],
        Some(DEFAULT_SSH_ARGS),
    ),
    def(
        "ssh_common_args",
        "ssh_common_args",
        Kind::Str,
        &["ANSIBLE_SSH_COMMON_ARGS"],
        &[("ssh_connection", "ssh_common_args")],
        Some(""),
    ),
    def(
        "ssh_extra_args",
        "ssh_extra_args",
        Kind::Str,
        &["ANSIBLE_SSH_EXTRA_ARGS"],
        &[("ssh_connection", "ssh_extra_args")],
        Some(""),
    ),
];

/// Settings that change how Ansible connects but that sshfleet does not apply, with why.
/// Each is listed once by `-v` when set (its value is never shown: some are secrets).
pub const NOT_APPLIED: &[(Def, &str)] = &[
    (
        def(
            "ssh_executable",
            "ssh_executable",
            Kind::Str,
            &["ANSIBLE_SSH_EXECUTABLE"],
            &[("ssh_connection", "ssh_executable")],
            None,
        ),
        "sshfleet connects with its own SSH client, not an ssh binary",
    ),
    (
        def(
            "sftp_executable",
            "sftp_executable",
            Kind::Str,
            &["ANSIBLE_SFTP_EXECUTABLE"],
            &[("ssh_connection", "sftp_executable")],
            None,
        ),
        "files go over the SSH connection's SFTP subsystem, not an sftp binary",
    ),
    (
        def(
            "scp_executable",
            "scp_executable",
            Kind::Str,
            &["ANSIBLE_SCP_EXECUTABLE"],
            &[("ssh_connection", "scp_executable")],
            None,
        ),
        "files go over the SSH connection's SFTP subsystem, not scp",
    ),
    (
        def(
            "scp_extra_args",
            "scp_extra_args",
            Kind::Str,
            &["ANSIBLE_SCP_EXTRA_ARGS"],
            &[("ssh_connection", "scp_extra_args")],
            None,
        ),
        "files go over the SSH connection itself (its ssh options apply), not scp",
    ),
    (
        def(
            "sftp_extra_args",
            "sftp_extra_args",
            Kind::Str,
            &["ANSIBLE_SFTP_EXTRA_ARGS"],
            &[("ssh_connection", "sftp_extra_args")],
            None,
        ),
        "files go over the SSH connection itself (its ssh options apply), not an sftp binary",
    ),
    (
        def(
            "transport",
            "DEFAULT_TRANSPORT",
            Kind::Str,
            &["ANSIBLE_TRANSPORT"],
            &[("defaults", "transport")],
            None,
        ),
        "sshfleet always connects over SSH",
    ),
    (
        def(
            "retries",
            "reconnection_retries",
            Kind::Int,
            &["ANSIBLE_SSH_RETRIES"],
            &[("connection", "retries"), ("ssh_connection", "retries")],
            None,
        ),
        "sshfleet retries dropped handshakes within a time window of its own",
    ),
    (
        def(
            "password_mechanism",
            "password_mechanism",
            Kind::Str,
            &["ANSIBLE_SSH_PASSWORD_MECHANISM"],
            &[("ssh_connection", "password_mechanism")],
            None,
        ),
        "not used by sshfleet's SSH client",
    ),
    (
        def(
            "sshpass_prompt",
            "sshpass_prompt",
            Kind::Str,
            &["ANSIBLE_SSHPASS_PROMPT"],
            &[("ssh_connection", "sshpass_prompt")],
            None,
        ),
        "not used by sshfleet's SSH client",
    ),
    (
        def(
            "pkcs11_provider",
            "pkcs11_provider",
            Kind::Str,
            &["ANSIBLE_PKCS11_PROVIDER"],
            &[("ssh_connection", "pkcs11_provider")],
            None,
        ),
        "PKCS#11 keys are not supported",
    ),
    (
        def(
            "private_key",
            "private_key",
            Kind::Str,
            &["ANSIBLE_PRIVATE_KEY"],
            &[],
            None,
        ),
        "an in-memory private key is not supported; use private_key_file",
    ),
    (
        def(
            "private_key_passphrase",
            "private_key_passphrase",
            Kind::Str,
            &["ANSIBLE_PRIVATE_KEY_PASSPHRASE"],
            &[],
            None,
        ),
        "use --passphrase-env VAR for encrypted keys",
    ),
    (
        def(
            "connection_password_file",
            "CONNECTION_PASSWORD_FILE",
            Kind::Path,
            &["ANSIBLE_CONNECTION_PASSWORD_FILE"],
            &[("defaults", "connection_password_file")],
            None,
        ),
        "password authentication is not supported",
    ),
    (
        def(
            "become_password_file",
            "BECOME_PASSWORD_FILE",
            Kind::Path,
            &["ANSIBLE_BECOME_PASSWORD_FILE"],
            &[("defaults", "become_password_file")],
            None,
        ),
        "become passwords are not supported (sudo runs non-interactively)",
    ),
    (
        def(
            "become_exe",
            "DEFAULT_BECOME_EXE",
            Kind::Str,
            &["ANSIBLE_BECOME_EXE"],
            &[("privilege_escalation", "become_exe")],
            None,
        ),
        "sshfleet runs sudo from the remote PATH",
    ),
    (
        def(
            "become_flags",
            "DEFAULT_BECOME_FLAGS",
            Kind::Str,
            &["ANSIBLE_BECOME_FLAGS"],
            &[("privilege_escalation", "become_flags")],
            None,
        ),
        "sshfleet runs sudo with its own flags",
    ),
    (
        def(
            "verbosity",
            "verbosity",
            Kind::Int,
            &["ANSIBLE_SSH_VERBOSITY"],
            &[("ssh_connection", "verbosity")],
            None,
        ),
        "ssh client debug output does not apply to sshfleet's client",
    ),
    // Shadowed in Ansible itself: DEFAULT_TIMEOUT always wins (see HONOURED).
    (
        def(
            "ssh_timeout",
            "timeout (ssh plugin)",
            Kind::Int,
            &["ANSIBLE_SSH_TIMEOUT"],
            &[("ssh_connection", "timeout")],
            None,
        ),
        "Ansible itself ignores it for the ssh command line: timeout ([defaults] / ANSIBLE_TIMEOUT) decides",
    ),
];

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Ansible's (or sshfleet's) default.
    Default,
    /// `section` / `key` at `line` of the config file `path`.
    Ini {
        path: PathBuf,
        section: String,
        key: String,
        line: usize,
    },
    /// An environment variable.
    Env(String),
    /// A command-line flag.
    Cli(String),
}

impl Origin {
    /// As `ansible-config dump` writes it (`/path/ansible.cfg`, `env: NAME`, `default`),
    /// with the line of an ini value (`/path/ansible.cfg:12`) and `cli: FLAG`.
    pub fn label(&self) -> String {
        match self {
            Origin::Default => "default".into(),
            Origin::Ini { path, line, .. } => format!("{}:{line}", path.display()),
            Origin::Env(n) => format!("env: {n}"),
            Origin::Cli(f) => format!("cli: {f}"),
        }
    }
}

/// A converted value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Str(String),
    Path(PathBuf),
    PathList(Vec<PathBuf>),
    /// Unset (no default).
    None,
}

impl Value {
    /// The value as `ansible-config dump` shows it.
    pub fn display(&self) -> String {
        match self {
            Value::Bool(b) => if *b { "True" } else { "False" }.into(),
            Value::Int(i) => i.to_string(),
            Value::Str(s) => s.clone(),
            Value::Path(p) => p.display().to_string(),
            Value::PathList(v) => format!(
                "[{}]",
                v.iter()
                    .map(|p| format!("'{}'", p.display()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Value::None => "None".into(),
        }
    }

    /// As JSON (`ansible-config dump --format json` types).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Str(s) => J::String(s.clone()),
            Value::Path(p) => J::String(p.display().to_string()),
            Value::PathList(v) => J::Array(
                v.iter()
                    .map(|p| J::String(p.display().to_string()))
                    .collect(),
            ),
            Value::None => J::Null,
        }
    }
}

/// A resolved setting: value and origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub def: Def,
    pub value: Value,
    pub origin: Origin,
}

impl Resolved {
    pub fn is_default(&self) -> bool {
        self.origin == Origin::Default
    }
}

/// The raw text of a setting and where it came from, before conversion.
fn raw_value(d: &Def, file: Option<(&Path, &IniFile)>, env: &Env) -> Option<(String, Origin)> {
    // Last set environment variable wins; any environment variable beats the file.
    let from_env = d
        .env
        .iter()
        .filter_map(|n| env.var(n).map(|v| (v, Origin::Env(n.to_string()))))
        .next_back();
    if from_env.is_some() {
        return from_env;
    }
    let (path, ini) = file?;
    d.ini
        .iter()
        .filter_map(|(s, k)| {
            ini.get(s, k).map(|e| {
                (
                    e.value.clone(),
                    Origin::Ini {
                        path: path.to_path_buf(),
                        section: s.to_string(),
                        key: k.to_string(),
                        line: e.line,
                    },
                )
            })
        })
        .next_back()
}

/// Convert `text` to the setting's type as `ensure_type` does; `None` if Python would raise.
fn convert(d: &Def, text: &str, origin: &Origin, env: &Env) -> Option<Value> {
    let basedir = match origin {
        Origin::Ini { path, .. } => path.parent(),
        _ => None,
    };
    let from_ini = matches!(origin, Origin::Ini { .. });
    let unq = |s: String| {
        if from_ini {
            convert::unquote(&s).to_string()
        } else {
            s
        }
    };
    Some(match d.kind {
        Kind::Bool => Value::Bool(convert::boolean(text)),
        Kind::Int => Value::Int(convert::integer(text)?),
        Kind::Str => Value::Str(unq(text.to_string())),
        Kind::Path => Value::Path(PathBuf::from(unq(convert::resolve_path(
            text, basedir, env,
        )
        .to_string_lossy()
        .into_owned()))),
        Kind::PathList => Value::PathList(convert::pathlist(text, basedir, env)),
    })
}

/// Resolve one setting from the environment, then the file, then its default.
pub fn resolve(
    d: &Def,
    file: Option<(&Path, &IniFile)>,
    env: &Env,
) -> Result<Resolved, ConfigError> {
    let default = |env: &Env| -> Resolved {
        let value = match d.default {
            None => Value::None,
            Some(t) => convert(d, t, &Origin::Default, env).unwrap_or(Value::None),
        };
        Resolved {
            def: *d,
            value,
            origin: Origin::Default,
        }
    };
    let Some((text, origin)) = raw_value(d, file, env) else {
        return Ok(default(env));
    };
    match convert(d, &text, &origin, env) {
        Some(value) => Ok(Resolved {
            def: *d,
            value,
            origin,
        }),
        // An empty environment variable of a non-string type falls back to the default.
        None if matches!(origin, Origin::Env(_)) && text.is_empty() => Ok(default(env)),
        None => Err(ConfigError::InvalidValue {
            setting: d.ansible_name,
            origin: origin.label(),
            value: text,
            expected: match d.kind {
                Kind::Int => "an integer",
                _ => "a valid value",
            },
        }),
    }
}

/// Whether a not-applied setting is set, and where (its value is not returned).
pub fn set_origin(d: &Def, file: Option<(&Path, &IniFile)>, env: &Env) -> Option<Origin> {
    raw_value(d, file, env).map(|(_, o)| o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(key: &str) -> &'static Def {
        HONOURED.iter().find(|d| d.key == key).unwrap()
    }

    fn env(vars: &[(&str, &str)]) -> Env {
        Env::fixed(vars.iter().copied(), "/cwd")
    }

    #[test]
    fn env_beats_file_beats_default() {
        let ini = IniFile::parse("[defaults]\nremote_user = 'deploy'\nforks=50\n").unwrap();
        let file = Some((Path::new("/etc/proj/ansible.cfg"), &ini));
        let e = env(&[]);
        let r = resolve(find("remote_user"), file, &e).unwrap();
        assert_eq!(r.value, Value::Str("deploy".into()));
        assert_eq!(r.origin.label(), "/etc/proj/ansible.cfg:2");
        let e = env(&[("ANSIBLE_REMOTE_USER", "ci")]);
        let r = resolve(find("remote_user"), file, &e).unwrap();
        assert_eq!(r.value, Value::Str("ci".into()));
        assert_eq!(r.origin, Origin::Env("ANSIBLE_REMOTE_USER".into()));
        let r = resolve(find("forks"), file, &e).unwrap();
        assert_eq!(r.value, Value::Int(50));
        let r = resolve(find("timeout"), file, &e).unwrap();
        assert_eq!((r.value, r.origin), (Value::Int(10), Origin::Default));
        let r = resolve(find("remote_user"), None, &env(&[])).unwrap();
        assert_eq!(r.value, Value::None);
    }

    // Observed with ansible-core 2.19: [ssh_connection] host_key_checking beats [defaults],
    // ANSIBLE_SSH_HOST_KEY_CHECKING beats ANSIBLE_HOST_KEY_CHECKING.
    #[test]
    fn last_listed_source_wins() {
        let ini = IniFile::parse(
            "[defaults]\nhost_key_checking=False\n[ssh_connection]\nhost_key_checking = True\n",
        )
        .unwrap();
        let file = Some((Path::new("/a.cfg"), &ini));
        let d = find("host_key_checking");
        assert_eq!(
            resolve(d, file, &env(&[])).unwrap().value,
            Value::Bool(true)
        );
        let e = env(&[
            ("ANSIBLE_SSH_HOST_KEY_CHECKING", "true"),
            ("ANSIBLE_HOST_KEY_CHECKING", "false"),
        ]);
        assert_eq!(resolve(d, file, &e).unwrap().value, Value::Bool(true));
        let e = env(&[
            ("ANSIBLE_SSH_HOST_KEY_CHECKING", "no"),
            ("ANSIBLE_HOST_KEY_CHECKING", "yes"),
        ]);
        assert_eq!(resolve(d, file, &e).unwrap().value, Value::Bool(false));
    }

    #[test]
    fn paths_relative_to_their_source() {
        let ini = IniFile::parse("[defaults]\nprivate_key_file = keys/k\ninventory = inv, /abs\n")
            .unwrap();
        let file = Some((Path::new("/etc/proj/ansible.cfg"), &ini));
        let r = resolve(find("private_key_file"), file, &env(&[])).unwrap();
        assert_eq!(r.value, Value::Path("/etc/proj/keys/k".into()));
        let r = resolve(
            find("private_key_file"),
            file,
            &env(&[("ANSIBLE_PRIVATE_KEY_FILE", "k2")]),
        )
        .unwrap();
        assert_eq!(r.value, Value::Path("/cwd/k2".into()));
        let r = resolve(find("inventory"), file, &env(&[])).unwrap();
        assert_eq!(
            r.value,
            Value::PathList(vec!["/etc/proj/inv".into(), "/abs".into()])
        );
        let r = resolve(find("inventory"), None, &env(&[])).unwrap();
        assert_eq!(r.value, Value::PathList(vec!["/etc/ansible/hosts".into()]));
    }

    #[test]
    fn bad_and_empty_values() {
        let ini = IniFile::parse("[defaults]\nforks = many\ntimeout =\n").unwrap();
        let file = Some((Path::new("/a.cfg"), &ini));
        let e = resolve(find("forks"), file, &env(&[])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Config DEFAULT_FORKS from /a.cfg:2 has an invalid value \"many\" (expected an integer)"
        );
        assert!(resolve(find("timeout"), file, &env(&[])).is_err());
        // An empty environment variable means the default for non-strings.
        let r = resolve(find("timeout"), None, &env(&[("ANSIBLE_TIMEOUT", "")])).unwrap();
        assert_eq!((r.value, r.origin), (Value::Int(10), Origin::Default));
        // ... but an empty string for strings.
        let r = resolve(find("ssh_args"), None, &env(&[("ANSIBLE_SSH_ARGS", "")])).unwrap();
        assert_eq!(r.value, Value::Str(String::new()));
        let r = resolve(find("ssh_args"), None, &env(&[])).unwrap();
        assert_eq!(r.value, Value::Str(DEFAULT_SSH_ARGS.into()));
    }
}
