//! `sshfleet config`: the Ansible settings in effect and where each came from (like
//! `ansible-config dump --only-changed`, restricted to what sshfleet honours, plus the
//! settings it recognises but does not apply), and `config --host H`: what a connection to H
//! would use (user, port, identity files, timeout, host key checking, known_hosts, become, the
//! ordered ssh options) with the origin of each value. `--json` for both.

use std::io::Write;

use serde_json::{Value, json};

use super::Config;
use crate::ansible_config::{Origin, Value as AValue};
use crate::error::{Error, ExitCode, Result};
use crate::fleet::explain::{ClientDefaults, host_json};
use crate::fleet::resolve;
use crate::inventory::Inventory;
use crate::report::OutputMode;

/// The settings in effect, as `ansible-config dump --only-changed` lists them: every honoured
/// setting whose value does not come from its default, with the command line on top of the
/// environment and ansible.cfg. `(name, value, origin)`.
pub fn effective_settings(g: &Config) -> Vec<(&'static str, AValue, Origin)> {
    let cfg = &g.ansible;
    let d = &g.conn.defaults;
    let mut out = Vec::new();
    for r in &cfg.settings {
        let name = r.def.ansible_name;
        let (value, origin) = match r.def.key {
            "inventory" if !g.inventory.is_empty() => (
                AValue::PathList(g.inventory.iter().map(std::path::PathBuf::from).collect()),
                Origin::Cli("-i".into()),
            ),
            "forks" if matches!(g.forks_origin, Origin::Cli(_)) => {
                (AValue::Int(g.run.forks as i64), g.forks_origin.clone())
            }
            "remote_user" => match &d.remote_user {
                Some(u) => (AValue::Str(u.value.clone()), u.origin.clone()),
                None => (AValue::None, Origin::Default),
            },
            "private_key_file" => match &d.private_key_file {
                Some(k) => (AValue::Path(k.value.clone()), k.origin.clone()),
                None => (AValue::None, Origin::Default),
            },
            "timeout" => (AValue::Int(d.timeout.value), d.timeout.origin.clone()),
            "become" => (AValue::Bool(d.r#become.value), d.r#become.origin.clone()),
            "become_user" => (
                AValue::Str(d.become_user.value.clone()),
                d.become_user.origin.clone(),
            ),
            "ssh_common_args" => (
                AValue::Str(d.ssh_common_args.value.clone()),
                d.ssh_common_args.origin.clone(),
            ),
            "ssh_extra_args" => (
                AValue::Str(d.ssh_extra_args.value.clone()),
                d.ssh_extra_args.origin.clone(),
            ),
            _ => (r.value.clone(), r.origin.clone()),
        };
        if origin != Origin::Default {
            out.push((name, value, origin));
        }
    }
    out
}

/// `sshfleet config [--host H]`.
pub fn command(g: &Config, host: Option<&str>) -> Result<ExitCode> {
    let text = match host {
        None => config_dump(g),
        Some(h) => host_report(g, h)?,
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|_| out.flush())
        .map_err(|e| Error::io("writing to stdout", e))?;
    Ok(ExitCode::Ok)
}

fn config_file_label(g: &Config) -> String {
    g.ansible
        .file
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "None".into())
}

fn config_dump(g: &Config) -> String {
    let settings = effective_settings(g);
    let not_applied = &g.ansible.not_applied;
    if g.report.output == OutputMode::Json {
        let mut items = vec![json!({"name": "CONFIG_FILE", "origin": "", "value": g.ansible.file})];
        items.extend(settings.iter().map(|(name, value, origin)| {
            let mut o = json!({"name": name, "origin": origin.label(), "value": value.to_json()});
            if let Origin::Ini {
                path,
                section,
                key,
                line,
            } = origin
            {
                o["file"] = json!(path);
                o["line"] = json!(line);
                o["section"] = json!(section);
                o["key"] = json!(key);
            }
            o
        }));
        let na: Vec<Value> = not_applied
            .iter()
            .map(|(key, origin, why)| json!({"name": key, "origin": origin.label(), "why": why}))
            .collect();
        return serde_json::to_string_pretty(&json!({"settings": items, "not_applied": na}))
            .unwrap_or_default();
    }
    let mut lines = vec![format!("CONFIG_FILE() = {}", config_file_label(g))];
    lines.extend(
        settings.iter().map(|(name, value, origin)| {
            format!("{name}({}) = {}", origin.label(), value.display())
        }),
    );
    for (key, origin, why) in not_applied {
        lines.push(format!("# not applied: {key}({}): {why}", origin.label()));
    }
    lines.join("\n")
}

fn host_report(g: &Config, pattern: &str) -> Result<String> {
    let inv = Inventory::load(&g.inventory)?;
    for w in inv.warnings() {
        eprintln!("[WARNING]: {w}");
    }
    let hosts = inv.select(pattern, None)?;
    let [h] = hosts.as_slice() else {
        return Err(Error::Usage(format!(
            "config --host: {pattern:?} must select exactly one host (it selects {})",
            hosts.len()
        )));
    };
    let hv = resolve::host_vars(&inv, h, &g.conn)?;
    let spec =
        resolve::apply_overrides(hv.spec_with(h, &resolve::ssh_settings(&g.conn)?)?, &g.conn)?;
    let ssh = crate::ssh::SshConfig::from_env();
    let client = ClientDefaults {
        user: ssh.default_user.clone(),
        identities: ssh.default_identities.clone(),
        known_hosts: ssh.default_known_hosts.clone(),
    };
    let mut flags = Vec::new();
    if g.conn.known_hosts.is_some() {
        flags.push(("known_hosts", "cli: --known-hosts"));
    }
    if g.conn.host_key_policy.is_some() {
        flags.push(("host_key_checking", "cli: --host-key-checking"));
    }
    let j = host_json(h, &spec, &hv, &client, &flags);
    if g.report.output == OutputMode::Json {
        return Ok(serde_json::to_string_pretty(&j).unwrap_or_default());
    }
    let sv = |v: &Value| -> String {
        format!(
            "{} ({})",
            match &v["value"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            },
            v["origin"].as_str().unwrap_or("")
        )
    };
    let mut lines = vec![
        format!("host: {h}"),
        format!("address: {}", spec.address),
        format!("user: {}", sv(&j["user"])),
        format!("port: {}", sv(&j["port"])),
    ];
    for i in j["identity_files"].as_array().into_iter().flatten() {
        lines.push(format!("identity_file: {}", sv(i)));
    }
    lines.push(format!("timeout: {}", sv(&j["timeout"])));
    lines.push(format!(
        "host_key_checking: {}",
        sv(&j["host_key_checking"])
    ));
    lines.push(format!(
        "known_hosts_files: {}",
        sv(&j["known_hosts_files"])
    ));
    if !j["proxy_jump"].is_null() {
        lines.push(format!("proxy_jump: {}", sv(&j["proxy_jump"])));
    }
    lines.push(format!("become: {}", sv(&j["become"]["enabled"])));
    if spec.r#become.enabled {
        lines.push(format!("become_user: {}", sv(&j["become"]["user"])));
        lines.push(format!("become_method: {}", sv(&j["become"]["method"])));
    }
    lines.push("ssh options (first value wins):".into());
    for o in j["ssh_options"].as_array().into_iter().flatten() {
        lines.push(format!(
            "  -o {}={}  ({})",
            o["option"].as_str().unwrap_or(""),
            o["value"].as_str().unwrap_or(""),
            o["origin"].as_str().unwrap_or("")
        ));
    }
    Ok(lines.join("\n"))
}
