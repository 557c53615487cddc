//! Connection settings below the inventory: ansible.cfg < `ANSIBLE_*` < command line, applied
//! as the **defaults of the connection variables** (`ansible_user`, `ansible_port`,
//! `ansible_ssh_private_key_file`, `ansible_ssh_timeout`, `ansible_host_key_checking`,
//! `ansible_ssh_args`, `ansible_ssh_common_args`, `ansible_ssh_extra_args`, `ansible_become`,
//! `ansible_become_user`). A host whose inventory sets a variable (or one of its aliases)
//! keeps it: ansible-core 2.19 gives inventory and host variables precedence over the command
//! line for connection settings (`ansible -u admin` with `ansible_user=deploy` in the
//! inventory logs in as `deploy`; checked with `ansible -vvv`). The variables then go through
//! the one ssh-options builder (`ConnSpec::from_vars` in `inventory::conn`), so
//! `ssh_args` lands first on the option list, where OpenSSH's first-value-wins makes it beat
//! the connection variables, exactly as on the `ssh` command line Ansible builds.

use std::path::PathBuf;

use serde_json::{Map, Value as J};

use super::{AnsibleConfig, Origin};

/// One connection setting with its origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced<T> {
    pub value: T,
    pub origin: Origin,
}

/// The connection flags of the command line that Ansible also has (`-u`, `--private-key`,
/// `-T`, `-b`, `--become-user`, `--ssh-common-args`, `--ssh-extra-args`); `None`/`false` =
/// not given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CliConn {
    pub remote_user: Option<String>,
    pub private_key: Option<PathBuf>,
    pub timeout: Option<u64>,
    pub r#become: bool,
    pub become_user: Option<String>,
    pub ssh_common_args: Option<String>,
    pub ssh_extra_args: Option<String>,
}

/// The defaults of the connection variables, resolved from ansible.cfg, the environment and
/// the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnDefaults {
    pub remote_user: Option<Sourced<String>>,
    pub port: Option<Sourced<i64>>,
    pub private_key_file: Option<Sourced<PathBuf>>,
    pub timeout: Sourced<i64>,
    pub host_key_checking: Sourced<bool>,
    pub ssh_args: Sourced<String>,
    pub ssh_common_args: Sourced<String>,
    pub ssh_extra_args: Sourced<String>,
    pub r#become: Sourced<bool>,
    pub become_user: Sourced<String>,
    pub become_method: Sourced<String>,
    /// `ask_pass`: prompt for the SSH password (no `-k` flag here yet).
    pub ask_pass: Sourced<bool>,
    /// `become_ask_pass`: prompt for the become password (no `-K` flag here yet).
    pub become_ask_pass: Sourced<bool>,
}

impl Default for ConnDefaults {
    /// Ansible's defaults: no config file, no environment, no flags.
    fn default() -> Self {
        let env = super::Env::fixed([], "/");
        let cfg = AnsibleConfig::from_text(None, &env).expect("the defaults are valid");
        ConnDefaults::resolve(&cfg, &CliConn::default(), env.cwd())
    }
}

/// The variable a default stands for, and its aliases (any of them set in the inventory
/// means the default does not apply).
pub const DEFAULTED_VARS: &[(&str, &[&str])] = &[
    ("ansible_ssh_args", &["ansible_ssh_args"]),
    (
        "ansible_host_key_checking",
        &["ansible_host_key_checking", "ansible_ssh_host_key_checking"],
    ),
    ("ansible_port", &["ansible_port", "ansible_ssh_port"]),
    (
        "ansible_ssh_private_key_file",
        &["ansible_ssh_private_key_file", "ansible_private_key_file"],
    ),
    ("ansible_user", &["ansible_user", "ansible_ssh_user"]),
    (
        "ansible_ssh_timeout",
        &["ansible_ssh_timeout", "ansible_timeout"],
    ),
    ("ansible_ssh_common_args", &["ansible_ssh_common_args"]),
    ("ansible_ssh_extra_args", &["ansible_ssh_extra_args"]),
    ("ansible_become", &["ansible_become"]),
    ("ansible_become_user", &["ansible_become_user"]),
];

fn sourced<T>(value: T, origin: &Origin) -> Sourced<T> {
    Sourced {
        value,
        origin: origin.clone(),
    }
}

impl ConnDefaults {
    /// From the configuration, then the command line on top.
    pub fn resolve(cfg: &AnsibleConfig, cli: &CliConn, cwd: &std::path::Path) -> ConnDefaults {
        let flag = |f: &str| Origin::Cli(f.to_string());
        let string = |key: &str| cfg.string(key).map(|(v, o)| sourced(v, o));
        let remote_user = match &cli.remote_user {
            Some(u) => Some(sourced(u.clone(), &flag("-u"))),
            None => string("remote_user"),
        };
        let private_key_file = match &cli.private_key {
            // `--private-key` is an `unfrack_path` option: relative to the working directory.
            Some(k) => Some(sourced(
                super::convert::resolve_path(
                    &k.to_string_lossy(),
                    Some(cwd),
                    &super::Env::fixed([], cwd),
                ),
                &flag("--private-key"),
            )),
            None => cfg.path("private_key_file").map(|(v, o)| sourced(v, o)),
        };
        let timeout = match cli.timeout {
            Some(t) => sourced(t as i64, &flag("-T")),
            None => {
                let (t, o) = cfg.int("timeout").unwrap_or((10, &Origin::Default));
                sourced(t, o)
            }
        };
        let (hkc, hkc_o) = cfg.bool("host_key_checking");
        let (ask, ask_o) = cfg.bool("ask_pass");
        let (bask, bask_o) = cfg.bool("become_ask_pass");
        let (b, b_o) = cfg.bool("become");
        let r#become = if cli.r#become {
            sourced(true, &flag("-b"))
        } else {
            sourced(b, b_o)
        };
        let become_user = match &cli.become_user {
            Some(u) => sourced(u.clone(), &flag("--become-user")),
            None => {
                string("become_user").unwrap_or_else(|| sourced("root".into(), &Origin::Default))
            }
        };
        let or_empty = |cli_v: &Option<String>, f: &str, key: &str| match cli_v {
            Some(v) => sourced(v.clone(), &flag(f)),
            None => string(key).unwrap_or_else(|| sourced(String::new(), &Origin::Default)),
        };
        ConnDefaults {
            remote_user,
            port: cfg.int("remote_port").map(|(v, o)| sourced(v, o)),
            private_key_file,
            timeout,
            host_key_checking: sourced(hkc, hkc_o),
            ssh_args: string("ssh_args")
                .unwrap_or_else(|| sourced(String::new(), &Origin::Default)),
            ssh_common_args: or_empty(&cli.ssh_common_args, "--ssh-common-args", "ssh_common_args"),
            ssh_extra_args: or_empty(&cli.ssh_extra_args, "--ssh-extra-args", "ssh_extra_args"),
            r#become,
            become_user,
            become_method: string("become_method")
                .unwrap_or_else(|| sourced("sudo".into(), &Origin::Default)),
            ask_pass: sourced(ask, ask_o),
            become_ask_pass: sourced(bask, bask_o),
        }
    }

    /// The value and origin this layer gives variable `var` (one of [`DEFAULTED_VARS`]'s
    /// names), `None` when it gives none.
    pub fn default_for(&self, var: &str) -> Option<(J, &Origin)> {
        fn s(v: &Sourced<String>) -> (J, &Origin) {
            (J::String(v.value.clone()), &v.origin)
        }
        Some(match var {
            // Ansible adds nothing for an empty string.
            "ansible_ssh_args" if !self.ssh_args.value.is_empty() => s(&self.ssh_args),
            "ansible_host_key_checking" => (
                J::Bool(self.host_key_checking.value),
                &self.host_key_checking.origin,
            ),
            "ansible_port" => {
                let p = self.port.as_ref()?;
                (J::from(p.value), &p.origin)
            }
            "ansible_ssh_private_key_file" => {
                let k = self.private_key_file.as_ref()?;
                (J::String(k.value.to_string_lossy().into_owned()), &k.origin)
            }
            "ansible_user" => {
                let u = self.remote_user.as_ref().filter(|u| !u.value.is_empty())?;
                s(u)
            }
            "ansible_ssh_timeout" => (J::from(self.timeout.value), &self.timeout.origin),
            "ansible_ssh_common_args" if !self.ssh_common_args.value.is_empty() => {
                s(&self.ssh_common_args)
            }
            "ansible_ssh_extra_args" if !self.ssh_extra_args.value.is_empty() => {
                s(&self.ssh_extra_args)
            }
            "ansible_become" if self.r#become.value => (J::Bool(true), &self.r#become.origin),
            "ansible_become_user" if self.become_user.origin != Origin::Default => {
                s(&self.become_user)
            }
            _ => return None,
        })
    }

    /// Fill in every connection variable `vars` does not set (a `null` counts as unset, as in
    /// Ansible); returns the variables filled in, with their origins.
    pub fn apply(&self, vars: &mut Map<String, J>) -> Vec<(&'static str, Origin)> {
        let mut filled = Vec::new();
        for (var, aliases) in DEFAULTED_VARS {
            if aliases
                .iter()
                .any(|a| vars.get(*a).is_some_and(|v| !v.is_null()))
            {
                continue;
            }
            if let Some((value, origin)) = self.default_for(var) {
                vars.insert(var.to_string(), value);
                filled.push((*var, origin.clone()));
            }
        }
        filled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ansible_config::Env;
    use serde_json::json;
    use std::path::Path;

    fn cfg(text: &str, env: &[(&str, &str)]) -> AnsibleConfig {
        AnsibleConfig::from_text(
            Some((Path::new("/proj/ansible.cfg"), text)),
            &Env::fixed(env.iter().copied(), "/cwd"),
        )
        .unwrap()
    }

    const CFG: &str = "[defaults]\nremote_user = cfguser\nprivate_key_file = keys/k\ntimeout = 30\nremote_port = 2222\n\
                       [privilege_escalation]\nbecome = true\n[ssh_connection]\nssh_args = -o ProxyJump=bastion\n";

    #[test]
    fn config_then_env_then_cli() {
        let c = cfg(CFG, &[("ANSIBLE_REMOTE_USER", "envuser")]);
        let d = ConnDefaults::resolve(&c, &CliConn::default(), Path::new("/cwd"));
        assert_eq!(d.remote_user.as_ref().unwrap().value, "envuser");
        assert_eq!(
            d.private_key_file.as_ref().unwrap().value,
            PathBuf::from("/proj/keys/k")
        );
        assert_eq!(d.timeout.value, 30);
        assert_eq!(d.port.as_ref().unwrap().value, 2222);
        assert!(d.r#become.value);
        assert_eq!(d.ssh_args.value, "-o ProxyJump=bastion");
        let cli = CliConn {
            remote_user: Some("cliuser".into()),
            private_key: Some("rel/key".into()),
            timeout: Some(5),
            ..Default::default()
        };
        let d = ConnDefaults::resolve(&c, &cli, Path::new("/cwd"));
        assert_eq!(d.remote_user.as_ref().unwrap().value, "cliuser");
        assert_eq!(
            d.remote_user.as_ref().unwrap().origin,
            Origin::Cli("-u".into())
        );
        assert_eq!(
            d.private_key_file.unwrap().value,
            PathBuf::from("/cwd/rel/key")
        );
        assert_eq!(d.timeout.value, 5);
    }

    #[test]
    fn inventory_variables_win() {
        let c = cfg(CFG, &[]);
        let cli = CliConn {
            remote_user: Some("cliuser".into()),
            ..Default::default()
        };
        let d = ConnDefaults::resolve(&c, &cli, Path::new("/cwd"));
        let mut vars =
            json!({"ansible_ssh_user": "invuser", "ansible_timeout": 3, "ansible_port": null})
                .as_object()
                .unwrap()
                .clone();
        let filled: Vec<&str> = d.apply(&mut vars).into_iter().map(|(v, _)| v).collect();
        assert_eq!(
            filled,
            [
                "ansible_ssh_args",
                "ansible_host_key_checking",
                "ansible_port",
                "ansible_ssh_private_key_file",
                "ansible_become"
            ]
        );
        assert_eq!(vars["ansible_ssh_user"], "invuser");
        assert!(vars.get("ansible_user").is_none());
        assert_eq!(vars["ansible_port"], 2222);
        assert!(vars.get("ansible_ssh_timeout").is_none());
        assert_eq!(vars["ansible_ssh_args"], "-o ProxyJump=bastion");
    }

    #[test]
    fn defaults_add_what_ansible_adds() {
        let c = AnsibleConfig::from_text(None, &Env::fixed([], "/cwd")).unwrap();
        let d = ConnDefaults::resolve(&c, &CliConn::default(), Path::new("/cwd"));
        let mut vars = Map::new();
        d.apply(&mut vars);
        assert_eq!(
            serde_json::Value::Object(vars),
            json!({
                "ansible_ssh_args": crate::ansible_config::settings::DEFAULT_SSH_ARGS,
                "ansible_host_key_checking": true,
                "ansible_ssh_timeout": 10,
            })
        );
    }
}
