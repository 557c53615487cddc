//! The Ansible configuration users already have: the one `ansible.cfg` Ansible reads and the
//! `ANSIBLE_*` environment variables, resolved as ansible-core 2.19 resolves them, for every
//! setting that changes what sshfleet does.
//!
//! - [`find_config_file`]: `$ANSIBLE_CONFIG` (a directory means its `ansible.cfg`),
//!   `./ansible.cfg` unless the working directory is world-writable (then skipped with
//!   Ansible's warning), `~/.ansible.cfg`, `/etc/ansible/ansible.cfg`; the first that exists
//!   and is readable is the only file read.
//! - [`ini`]: Python's configparser (raw reads: no `%(name)s` interpolation, as Ansible).
//! - [`convert`]: the `boolean`/`integer`/`path`/`pathlist` conversions and path resolution.
//! - [`settings`]: what is honoured ([`settings::HONOURED`]), what is recognised but not
//!   applied ([`settings::NOT_APPLIED`], listed by `-v`), and environment > file > default.
//!
//! Everything here is pure given an [`Env`] (variables, working directory, home); command-line
//! flags and inventory variables are layered on top by the controller.

pub mod conn;
pub mod convert;
pub mod ini;
pub mod settings;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use settings::{Origin, Resolved, Value};

/// Why the configuration cannot be used (Ansible refuses to start in the same cases).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("Error reading config file {}:{}: {source}", path.display(), source.line())]
    Parse {
        path: PathBuf,
        #[source]
        source: ini::IniError,
    },
    #[error("Error reading config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Unsupported configuration file extension for {}: {ext:?} (Ansible reads .cfg and .ini)", path.display())]
    Extension { path: PathBuf, ext: String },
    #[error("Config {setting} from {origin} has an invalid value {value:?} (expected {expected})")]
    InvalidValue {
        setting: &'static str,
        origin: String,
        value: String,
        expected: &'static str,
    },
}

/// The process environment as the configuration sees it: variables, working directory, home.
#[derive(Debug, Clone)]
pub struct Env {
    vars: BTreeMap<String, String>,
    cwd: PathBuf,
}

impl Env {
    /// This process's environment and working directory.
    pub fn from_process() -> Env {
        Env {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
        }
    }

    /// A fixed environment (tests, and callers that resolve for another directory).
    pub fn fixed<'a>(
        vars: impl IntoIterator<Item = (&'a str, &'a str)>,
        cwd: impl Into<PathBuf>,
    ) -> Env {
        Env {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            cwd: cwd.into(),
        }
    }

    pub fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }

    pub fn cwd(&self) -> &Path {
        &self.cwd
    }

    /// `$HOME`, else the user database's home of the current user (as `os.path.expanduser`).
    pub fn home(&self) -> Option<PathBuf> {
        if let Some(h) = self.vars.get("HOME") {
            return Some(PathBuf::from(h));
        }
        // SAFETY: getpwuid returns static storage or null; the string is copied at once.
        unsafe {
            let pw = libc::getpwuid(libc::getuid());
            if pw.is_null() || (*pw).pw_dir.is_null() {
                return None;
            }
            Some(PathBuf::from(
                std::ffi::CStr::from_ptr((*pw).pw_dir)
                    .to_string_lossy()
                    .into_owned(),
            ))
        }
    }

    /// The home directory of `user` from the user database.
    pub fn home_of(&self, user: &str) -> Option<PathBuf> {
        let name = std::ffi::CString::new(user).ok()?;
        let mut buf = vec![0 as libc::c_char; 1 << 16];
        // SAFETY: zeroed passwd is a valid out-parameter; `buf` outlives the call and the
        // string copied from it.
        unsafe {
            let mut pw: libc::passwd = std::mem::zeroed();
            let mut result: *mut libc::passwd = std::ptr::null_mut();
            let rc = libc::getpwnam_r(
                name.as_ptr(),
                &mut pw,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            );
            if rc != 0 || result.is_null() || pw.pw_dir.is_null() {
                return None;
            }
            Some(PathBuf::from(
                std::ffi::CStr::from_ptr(pw.pw_dir)
                    .to_string_lossy()
                    .into_owned(),
            ))
        }
    }
}

/// The config file Ansible would read, and the warning it would print about a world-writable
/// working directory whose `ansible.cfg` it skipped.
pub fn find_config_file(env: &Env) -> (Option<PathBuf>, Option<String>) {
    let mut candidates = Vec::new();
    let from_env = env.var("ANSIBLE_CONFIG").map(|v| {
        let p = convert::resolve_path(&v, None, env);
        if p.is_dir() { p.join("ansible.cfg") } else { p }
    });
    candidates.extend(from_env.clone());
    let mut skipped_cwd = false;
    if let Ok(meta) = std::fs::metadata(env.cwd()) {
        use std::os::unix::fs::PermissionsExt;
        let cwd_cfg = env.cwd().join("ansible.cfg");
        if meta.permissions().mode() & 0o002 != 0 {
            skipped_cwd = cwd_cfg.exists();
        } else {
            candidates.push(cwd_cfg);
        }
    }
    candidates.push(convert::resolve_path("~/.ansible.cfg", None, env));
    candidates.push(PathBuf::from("/etc/ansible/ansible.cfg"));
    let found = candidates.into_iter().find(|p| readable(p));
    let warning = (skipped_cwd && found != from_env).then(|| {
        format!(
            "Ansible is being run in a world writable directory ({}), ignoring it as an ansible.cfg source.",
            env.cwd().display()
        )
    });
    (found, warning)
}

fn readable(p: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated path.
    p.exists() && unsafe { libc::access(c.as_ptr(), libc::R_OK) } == 0
}

/// The loaded configuration: the file (if any), the environment, every honoured setting
/// resolved (environment > file > default), and the not-applied settings that are set.
#[derive(Debug, Clone)]
pub struct AnsibleConfig {
    /// The config file read, if any.
    pub file: Option<PathBuf>,
    /// Ansible's world-writable-directory warning, when it applies.
    pub warning: Option<String>,
    /// Every [`settings::HONOURED`] setting, in that order.
    pub settings: Vec<Resolved>,
    /// Set settings sshfleet does not apply, with where they are set and why not.
    pub not_applied: Vec<(&'static str, Origin, &'static str)>,
}

impl AnsibleConfig {
    /// Find and read the config file for `env`, and resolve every setting.
    pub fn load(env: &Env) -> Result<AnsibleConfig, ConfigError> {
        let (file, warning) = find_config_file(env);
        let text = match &file {
            Some(p) => {
                let ext = p
                    .extension()
                    .map(|e| e.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if ext != "cfg" && ext != "ini" {
                    return Err(ConfigError::Extension {
                        path: p.clone(),
                        ext: format!(".{ext}"),
                    });
                }
                Some(
                    std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                        path: p.clone(),
                        source,
                    })?,
                )
            }
            None => None,
        };
        let mut c = Self::from_text(file.as_deref().zip(text.as_deref()), env)?;
        c.warning = warning;
        Ok(c)
    }

    /// Resolve every setting from the config file `(path, text)` (if any) and `env`.
    pub fn from_text(file: Option<(&Path, &str)>, env: &Env) -> Result<AnsibleConfig, ConfigError> {
        let parsed = match file {
            Some((path, text)) => Some((
                path,
                ini::IniFile::parse(text).map_err(|source| ConfigError::Parse {
                    path: path.to_path_buf(),
                    source,
                })?,
            )),
            None => None,
        };
        let f = parsed.as_ref().map(|(p, i)| (*p, i));
        let settings = settings::HONOURED
            .iter()
            .map(|d| settings::resolve(d, f, env))
            .collect::<Result<Vec<_>, _>>()?;
        let not_applied = settings::NOT_APPLIED
            .iter()
            .filter_map(|(d, why)| settings::set_origin(d, f, env).map(|o| (d.key, o, *why)))
            .collect();
        Ok(AnsibleConfig {
            file: file.map(|(p, _)| p.to_path_buf()),
            warning: None,
            settings,
            not_applied,
        })
    }

    /// The resolved setting `key` (one of [`settings::HONOURED`]).
    pub fn get(&self, key: &str) -> &Resolved {
        self.settings
            .iter()
            .find(|r| r.def.key == key)
            .unwrap_or_else(|| panic!("{key} is not an honoured setting"))
    }

    /// A string setting's value, `None` when unset; with its origin.
    pub fn string(&self, key: &str) -> Option<(String, &Origin)> {
        let r = self.get(key);
        match &r.value {
            Value::Str(s) => Some((s.clone(), &r.origin)),
            _ => None,
        }
    }

    /// A path setting's value, with its origin.
    pub fn path(&self, key: &str) -> Option<(PathBuf, &Origin)> {
        let r = self.get(key);
        match &r.value {
            Value::Path(p) => Some((p.clone(), &r.origin)),
            _ => None,
        }
    }

    /// An integer setting's value, with its origin.
    pub fn int(&self, key: &str) -> Option<(i64, &Origin)> {
        let r = self.get(key);
        match &r.value {
            Value::Int(i) => Some((*i, &r.origin)),
            _ => None,
        }
    }

    /// A boolean setting's value (`false` when unset), with its origin.
    pub fn bool(&self, key: &str) -> (bool, &Origin) {
        let r = self.get(key);
        (matches!(r.value, Value::Bool(true)), &r.origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn issue_example() {
        let text = "[defaults]\nremote_user = deploy\nprivate_key_file = ~/.ssh/fleet_ed25519\nforks = 50\ntimeout = 30\n\
                    [privilege_escalation]\nbecome = True\n[ssh_connection]\nssh_args = -o ProxyJump=bastion.corp\n\
                    ssh_executable = /opt/ssh\npipelining = True\n";
        let env = Env::fixed(
            [("HOME", "/home/ci"), ("ANSIBLE_PRIVATE_KEY_FILE", "ci_key")],
            "/repo",
        );
        let c =
            AnsibleConfig::from_text(Some((Path::new("/repo/ansible.cfg"), text)), &env).unwrap();
        assert_eq!(c.string("remote_user").unwrap().0, "deploy");
        assert_eq!(
            c.path("private_key_file").unwrap(),
            (
                PathBuf::from("/repo/ci_key"),
                &Origin::Env("ANSIBLE_PRIVATE_KEY_FILE".into())
            )
        );
        assert_eq!(c.int("forks").unwrap().0, 50);
        assert_eq!(c.int("timeout").unwrap().0, 30);
        assert!(c.bool("become").0);
        assert_eq!(c.string("ssh_args").unwrap().0, "-o ProxyJump=bastion.corp");
        assert_eq!(
            c.string("become_user").unwrap(),
            ("root".into(), &Origin::Default)
        );
        // ssh_executable is reported; pipelining is harmless and not.
        assert_eq!(c.not_applied.len(), 1);
        assert_eq!(c.not_applied[0].0, "ssh_executable");
        assert_eq!(c.not_applied[0].1.label(), "/repo/ansible.cfg:10");
    }

    #[test]
    fn parse_errors_name_file_and_line() {
        let e = AnsibleConfig::from_text(
            Some((
                Path::new("/p/ansible.cfg"),
                "[defaults]\nremote_user = a\nbogus\n",
            )),
            &Env::fixed([], "/"),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Error reading config file /p/ansible.cfg:3: "),
            "{e}"
        );
    }

    #[test]
    fn which_file_is_read() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        let proj = tmp.path().join("proj");
        let other = tmp.path().join("other");
        for d in [&home, &proj, &other] {
            std::fs::create_dir(d).unwrap();
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let h = home.to_str().unwrap();
        std::fs::write(home.join(".ansible.cfg"), "[defaults]\n").unwrap();
        std::fs::write(proj.join("ansible.cfg"), "[defaults]\n").unwrap();
        std::fs::write(other.join("ansible.cfg"), "[defaults]\n").unwrap();
        let find = |vars: Vec<(&str, &str)>, cwd: &Path| find_config_file(&Env::fixed(vars, cwd));
        assert_eq!(
            find(vec![("HOME", h)], &proj).0,
            Some(proj.join("ansible.cfg"))
        );
        assert_eq!(
            find(vec![("HOME", h)], &home).0,
            Some(home.join(".ansible.cfg"))
        );
        let o = other.to_str().unwrap();
        // ANSIBLE_CONFIG first; a directory means its ansible.cfg.
        assert_eq!(
            find(vec![("HOME", h), ("ANSIBLE_CONFIG", o)], &proj).0,
            Some(other.join("ansible.cfg"))
        );
        // A missing ANSIBLE_CONFIG falls through to the next candidate.
        assert_eq!(
            find(
                vec![("HOME", h), ("ANSIBLE_CONFIG", "/nonexistent.cfg")],
                &proj
            )
            .0,
            Some(proj.join("ansible.cfg"))
        );
        // A world-writable working directory is skipped, with Ansible's warning.
        std::fs::set_permissions(&proj, std::fs::Permissions::from_mode(0o777)).unwrap();
        let (f, w) = find(vec![("HOME", h)], &proj);
        assert_eq!(f, Some(home.join(".ansible.cfg")));
        assert!(w.unwrap().contains("world writable directory"));
        // ... silently when ANSIBLE_CONFIG points at a file that is read.
        let (_, w) = find(vec![("HOME", h), ("ANSIBLE_CONFIG", o)], &proj);
        assert_eq!(w, None);
    }
}
