//! `sshfleet inventory --list`, `inventory --host H`, `hosts PATTERN` and
//! `ssh-config HOST`.
//!
//! Output matches `ansible-inventory --list` / `--host` (JSON, keys sorted, 4-space indent) and
//! `ansible PATTERN --list-hosts` (one name per line, without the header and indentation).
//! Warnings go to stderr as `[WARNING]: ...`, like Ansible's.

use std::io::Write;

use serde_json::Value;

use super::Config;
use crate::error::{Error, ExitCode, Result};
use crate::inventory::Inventory;

fn warn(msgs: &[String]) {
    let mut err = std::io::stderr().lock();
    for m in msgs {
        let _ = writeln!(err, "[WARNING]: {m}");
    }
}

/// JSON as `ansible-inventory` prints it: sorted keys, 4-space indentation.
pub fn render_json(v: &Value) -> String {
    crate::inventory::json_out::render(v)
}

fn load(global: &Config) -> Result<Inventory> {
    let inv = Inventory::load(&global.inventory)?;
    warn(inv.warnings());
    Ok(inv)
}

fn print(s: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{s}")
        .and_then(|_| out.flush())
        .map_err(|e| Error::io("writing to stdout", e))
}

/// `inventory --list`: every group and host (restricted by `--limit`), with host variables.
pub fn list(global: &Config) -> Result<ExitCode> {
    let inv = load(global)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    inv.write_list_json(global.limit.as_deref(), &mut out)?;
    writeln!(out)
        .and_then(|_| out.flush())
        .map_err(|e| Error::io("writing to stdout", e))?;
    // The process is about to exit: skip freeing a possibly very large inventory.
    std::mem::forget(inv);
    Ok(ExitCode::Ok)
}

/// `inventory --host H`: one host's merged variables. Like `ansible-inventory --host`, the
/// argument is a pattern that must select exactly one host, and `--limit` is ignored.
pub fn host(global: &Config, host: &str) -> Result<ExitCode> {
    let inv = load(global)?;
    let (hosts, warnings) = inv.select_with_warnings(host, None)?;
    warn(&warnings);
    if hosts.len() != 1 {
        return Err(Error::Usage(
            "You must pass a single valid host to --host parameter".into(),
        ));
    }
    let vars = inv.host_vars(&hosts[0]).unwrap_or_default();
    print(&render_json(&Value::Object(vars)))?;
    Ok(ExitCode::Ok)
}

/// `hosts PATTERN`: the selected host names, one per line, in Ansible's order.
pub fn hosts(global: &Config, pattern: &str) -> Result<ExitCode> {
    let inv = load(global)?;
    let all_empty = inv.host_names().is_empty();
    if all_empty {
        warn(&["provided hosts list is empty, only localhost is available. Note that the implicit localhost does not match 'all'".to_string()]);
    }
    let (hosts, warnings) = inv.select_with_warnings(pattern, global.limit.as_deref())?;
    warn(&warnings);
    if hosts.is_empty() && !all_empty {
        return Err(Error::NoHosts(
            "Specified inventory, host pattern and/or --limit leaves us with no hosts to target."
                .into(),
        ));
    }
    let text = hosts.join("\n");
    if text.is_empty() {
        return Ok(ExitCode::Ok);
    }
    print(&text)?;
    std::mem::forget(inv);
    Ok(ExitCode::Ok)
}

/// `ssh-config [-F FILE] HOST`: print, `ssh -G` style, what sshfleet resolves for `HOST`.
/// With `-i`, an inventory host contributes its variables (as the ssh command line Ansible
/// builds); otherwise `HOST` is resolved as `ssh -G HOST` would. `ssh_args` (sshfleet's
/// own `--ssh-args`/`-o`) come first. `-F` beats `--ssh-config`. A config `ssh` would
/// refuse is an error (non-zero exit).
pub fn ssh_config(
    global: &Config,
    host: &str,
    file: Option<&str>,
    ssh_args: &str,
) -> Result<ExitCode> {
    use crate::inventory::conn::{self, SshCommandLine};
    use crate::ssh_config::ConfigFiles;
    let mut settings = crate::fleet::resolve::ssh_settings(&global.conn)?;
    if let Some(f) = file {
        settings.files = ConfigFiles::from_flag(f);
        settings.forced = true;
    }
    let mut cl = SshCommandLine {
        destination: host.to_string(),
        options: Vec::new(),
    };
    if !global.inventory.is_empty() {
        let inv = load(global)?;
        if let Some(vars) = inv.host_vars(host) {
            cl = conn::ssh_command_line(host, &vars)?;
        }
    }
    let mut options = conn::parse_ssh_args(ssh_args)
        .map_err(|e| Error::Usage(format!("ssh-config: ssh arguments: {e}")))?;
    options.append(&mut cl.options);
    cl.options = options;
    let resolved = settings.resolve(host, &cl)?;
    let mut out = std::io::stdout().lock();
    out.write_all(resolved.dump().as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Error::io("writing to stdout", e))?;
    Ok(ExitCode::Ok)
}
