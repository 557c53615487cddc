//! What a connection to one host would use, and where each value came from (the
//! `sshfleet config --host H` report), and the host variables [`super::resolve`] builds specs
//! from.
//!
//! The host's inventory variables get the defaults of [`ConnDefaults`] (ansible.cfg <
//! `ANSIBLE_*` < command line) for the connection variables they do not set; the ssh option
//! list is then built in the order Ansible's ssh connection plugin puts options on the `ssh`
//! command line (`ansible_ssh_args`, `StrictHostKeyChecking=no` when host key checking is off,
//! `Port`, `IdentityFile`, `User`, `ConnectTimeout`, `ansible_ssh_common_args`,
//! `ansible_ssh_extra_args`; OpenSSH takes the first value of each option) and each option is
//! traced back to the variable it came from and that variable's origin.

use serde_json::{Map, Value, json};

use crate::ansible_config::conn::ConnDefaults;
use crate::inventory::InventoryError;
use crate::inventory::conn::{ConnSpec, HostKeyPolicy, SshOption, SshSettings, parse_ssh_args};

/// A host's variables with the configuration's defaults filled in, and the origin of every
/// connection variable (`inventory: VAR` or the default's origin).
#[derive(Debug, Clone)]
pub struct HostVars {
    pub vars: Map<String, Value>,
    origins: Vec<(String, String)>,
}

impl HostVars {
    /// Fill `vars` (the host's merged inventory variables) with `defaults`.
    pub fn new(mut vars: Map<String, Value>, defaults: &ConnDefaults) -> HostVars {
        let filled = defaults.apply(&mut vars);
        let origins = filled
            .into_iter()
            .map(|(v, o)| (v.to_string(), o.label()))
            .collect();
        HostVars { vars, origins }
    }

    /// Where variable `var` came from.
    pub fn origin(&self, var: &str) -> String {
        self.origins
            .iter()
            .find(|(v, _)| v == var)
            .map(|(_, o)| o.clone())
            .unwrap_or_else(|| format!("inventory: {var}"))
    }

    /// The connection spec for host `name`, without OpenSSH config files.
    pub fn spec(&self, name: &str) -> Result<ConnSpec, InventoryError> {
        ConnSpec::from_vars(name, &self.vars)
    }

    /// The connection spec for host `name`, resolved through the OpenSSH client
    /// configuration of `settings`.
    pub fn spec_with(
        &self,
        name: &str,
        settings: &SshSettings,
    ) -> Result<ConnSpec, InventoryError> {
        ConnSpec::from_vars_with(name, &self.vars, settings)
    }

    /// The ssh options in command-line order, each with the variable it came from.
    pub fn ordered_options(&self) -> Vec<(SshOption, &'static str)> {
        let v = &self.vars;
        let text = |names: &[&'static str]| -> Option<(String, &'static str)> {
            names.iter().find_map(|n| match v.get(*n)? {
                Value::Null => None,
                Value::String(s) => Some((s.clone(), *n)),
                other => Some((other.to_string(), *n)),
            })
        };
        let mut out = Vec::new();
        let opt = |key: &str, value: String| SshOption::o(key, value);
        let args = |out: &mut Vec<(SshOption, &'static str)>, var: &'static str| {
            if let Some((a, _)) = text(&[var]) {
                out.extend(
                    parse_ssh_args(&a)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|o| (o, var)),
                );
            }
        };
        args(&mut out, "ansible_ssh_args");
        for var in ["ansible_host_key_checking", "ansible_ssh_host_key_checking"] {
            if let Some(val) = v.get(var) {
                let off = match val {
                    Value::Bool(b) => !b,
                    Value::String(s) => !crate::ansible_config::convert::boolean(s),
                    Value::Number(n) => n.as_f64() == Some(0.0),
                    _ => false,
                };
                if off {
                    out.push((opt("stricthostkeychecking", "no".into()), var));
                }
                break;
            }
        }
        if let Some((p, var)) = text(&["ansible_port", "ansible_ssh_port"]) {
            out.push((opt("port", p.trim().to_string()), var));
        }
        if let Some((k, var)) = text(&["ansible_ssh_private_key_file", "ansible_private_key_file"])
        {
            out.push((opt("identityfile", k), var));
        }
        if let Some((u, var)) = text(&["ansible_user", "ansible_ssh_user"]) {
            out.push((opt("user", u), var));
        }
        if let Some((t, var)) = text(&["ansible_ssh_timeout", "ansible_timeout"]) {
            out.push((opt("connecttimeout", t), var));
        }
        args(&mut out, "ansible_ssh_common_args");
        args(&mut out, "ansible_ssh_extra_args");
        out
    }
}

/// What the SSH client uses when a spec leaves a value open.
#[derive(Debug, Clone)]
pub struct ClientDefaults {
    /// The local user name.
    pub user: String,
    /// `~/.ssh/id_*` that exist.
    pub identities: Vec<std::path::PathBuf>,
    /// `~/.ssh/known_hosts`.
    pub known_hosts: Vec<std::path::PathBuf>,
}

fn policy_name(p: HostKeyPolicy) -> &'static str {
    match p {
        HostKeyPolicy::Strict => "strict",
        HostKeyPolicy::AcceptNew => "accept-new",
        HostKeyPolicy::Off => "no",
    }
}

/// The `config --host` JSON for host `name`: `spec` is the final spec (command-line
/// overrides applied), `hv` the variables it was built from.
pub fn host_json(
    name: &str,
    spec: &ConnSpec,
    hv: &HostVars,
    client: &ClientDefaults,
    sshfleet_flags: &[(&str, &str)],
) -> Value {
    let opts = hv.ordered_options();
    let origin_of = |key: &str| -> Option<String> {
        opts.iter()
            .find(|(o, _)| o.key == key)
            .map(|(_, var)| option_origin(hv, var))
    };
    let flag = |f: &str| {
        sshfleet_flags
            .iter()
            .find(|(k, _)| *k == f)
            .map(|(_, o)| o.to_string())
    };
    let sourced = |value: Value, origin: Option<String>| json!({"value": value, "origin": origin.unwrap_or_else(|| "default".into())});
    let user = match &spec.user {
        Some(u) => sourced(json!(u), origin_of("user")),
        None => sourced(json!(client.user), Some("default (the local user)".into())),
    };
    let identity_files: Vec<Value> = if spec.identity_files.is_empty() {
        client
            .identities
            .iter()
            .map(|p| sourced(json!(p), Some("default (~/.ssh/id_*)".into())))
            .collect()
    } else {
        let from: Vec<&(SshOption, &str)> = opts
            .iter()
            .filter(|(o, _)| o.key == "identityfile")
            .collect();
        spec.identity_files
            .iter()
            .enumerate()
            .map(|(i, p)| sourced(json!(p), from.get(i).map(|(_, var)| option_origin(hv, var))))
            .collect()
    };
    let policy = spec.host_key_policy.unwrap_or_default();
    let policy_origin = flag("host_key_checking").or_else(|| origin_of("stricthostkeychecking"));
    let known_hosts = if spec.known_hosts_files.is_empty() {
        sourced(json!(client.known_hosts), None)
    } else {
        sourced(
            json!(spec.known_hosts_files),
            flag("known_hosts").or_else(|| origin_of("userknownhostsfile")),
        )
    };
    let var_origin = |var: &str| hv.vars.contains_key(var).then(|| hv.origin(var));
    json!({
        "host": name,
        "address": spec.address,
        "user": user,
        "port": sourced(json!(spec.port), origin_of("port")),
        "identity_files": identity_files,
        "timeout": sourced(
            json!(spec.connect_timeout.map(|d| if d.subsec_nanos() == 0 {
                json!(d.as_secs())
            } else {
                json!(d.as_secs_f64())
            })),
            origin_of("connecttimeout"),
        ),
        "host_key_checking": sourced(json!(policy_name(policy)), policy_origin),
        "known_hosts_files": known_hosts,
        "proxy_jump": spec.proxy_jump.as_ref().map(|j| sourced(json!(j), origin_of("proxyjump"))),
        "become": {
            "enabled": sourced(json!(spec.r#become.enabled), var_origin("ansible_become")),
            "user": sourced(
                json!(spec.r#become.user.clone().unwrap_or_else(|| "root".into())),
                var_origin("ansible_become_user"),
            ),
            "method": sourced(
                json!(spec.r#become.method.clone().unwrap_or_else(|| "sudo".into())),
                var_origin("ansible_become_method"),
            ),
        },
        "ssh_options": opts.iter().map(|(o, var)| json!({
            "option": o.key,
            "value": o.value,
            "origin": option_origin(hv, var),
        })).collect::<Vec<_>>(),
    })
}

/// `VAR (ORIGIN)` for an option that came out of an args string, else the variable's origin.
fn option_origin(hv: &HostVars, var: &str) -> String {
    let o = hv.origin(var);
    if var.ends_with("_args") && !o.starts_with("inventory:") {
        format!("{var} ({o})")
    } else {
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ansible_config::conn::CliConn;
    use crate::ansible_config::{AnsibleConfig, Env};
    use std::path::Path;

    fn defaults(cfg_text: &str, cli: CliConn) -> ConnDefaults {
        let cfg = AnsibleConfig::from_text(
            Some((Path::new("/proj/ansible.cfg"), cfg_text)),
            &Env::fixed([], "/cwd"),
        )
        .unwrap();
        ConnDefaults::resolve(&cfg, &cli, Path::new("/cwd"))
    }

    fn client() -> ClientDefaults {
        ClientDefaults {
            user: "me".into(),
            identities: vec![],
            known_hosts: vec!["/home/me/.ssh/known_hosts".into()],
        }
    }

    #[test]
    fn ssh_args_beat_variables_and_cli() {
        let d = defaults(
            "[defaults]\nremote_user = cfguser\n[ssh_connection]\nssh_args = -o User=fromargs -o Port=2200\n",
            CliConn {
                remote_user: Some("cliuser".into()),
                ..Default::default()
            },
        );
        let vars = serde_json::json!({"ansible_port": 22, "ansible_ssh_common_args": "-o ConnectTimeout=99"});
        let hv = HostVars::new(vars.as_object().unwrap().clone(), &d);
        let spec = hv.spec("h").unwrap();
        assert_eq!(spec.user.as_deref(), Some("fromargs"));
        assert_eq!(spec.port, 2200);
        assert_eq!(
            spec.connect_timeout,
            Some(std::time::Duration::from_secs(10))
        );
        let j = host_json("h", &spec, &hv, &client(), &[]);
        assert_eq!(
            j["user"]["origin"],
            "ansible_ssh_args (/proj/ansible.cfg:4)"
        );
        assert_eq!(j["port"]["value"], 2200);
        assert_eq!(j["timeout"]["origin"], "default");
        let keys: Vec<&str> = j["ssh_options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["option"].as_str().unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "user",
                "port",
                "port",
                "user",
                "connecttimeout",
                "connecttimeout"
            ]
        );
        assert_eq!(j["ssh_options"][2]["origin"], "inventory: ansible_port");
        assert_eq!(j["ssh_options"][3]["origin"], "cli: -u");
    }

    #[test]
    fn inventory_user_beats_cli_user() {
        let d = defaults(
            "[defaults]\nremote_user = cfguser\nprivate_key_file = k\n",
            CliConn {
                remote_user: Some("cliuser".into()),
                timeout: Some(4),
                ..Default::default()
            },
        );
        let vars = serde_json::json!({"ansible_user": "invuser"});
        let hv = HostVars::new(vars.as_object().unwrap().clone(), &d);
        let spec = hv.spec("h").unwrap();
        let j = host_json("h", &spec, &hv, &client(), &[]);
        assert_eq!(
            j["user"],
            serde_json::json!({"value": "invuser", "origin": "inventory: ansible_user"})
        );
        assert_eq!(
            j["identity_files"][0],
            serde_json::json!({"value": "/proj/k", "origin": "/proj/ansible.cfg:3"})
        );
        assert_eq!(
            j["timeout"],
            serde_json::json!({"value": 4, "origin": "cli: -T"})
        );
        assert_eq!(j["host_key_checking"]["value"], "strict");
    }
}
