//! Ansible inventories, read exactly as `ansible-inventory` reads them.
//!
//! Not pure: [`Inventory::load`] reads the inventory sources and `group_vars`/`host_vars`
//! from disk and the defaults from the environment (`ANSIBLE_INVENTORY`, `ansible.cfg`).
//! The parsers under it (`ini`, `yaml`, `pyliteral`, `pattern`) are pure functions of their
//! text. No network, no SSH: the SSH layer consumes the [`ConnSpec`]s built here.
//!
//! INI and YAML sources, `group_vars/`/`host_vars/`, host ranges, variable precedence and
//! host patterns (`--limit`). Produces hosts with merged variables and a typed connection
//! spec per host for the SSH layer.
//!
//! Layout: `data` is the host/group graph, `ini` and `yaml_inv` fill it (YAML read by
//! `yaml`, INI values typed by `pyliteral`), `vars` reads `group_vars/`/`host_vars/`,
//! [`pattern`] selects hosts, [`conn`] turns merged variables into a [`ConnSpec`].
//!
//! Deliberate differences from `ansible-inventory` (all on bad input, all safer):
//! - A source that cannot be parsed (or does not exist) is an error; Ansible warns
//!   "Unable to parse ... as an inventory source" and carries on with what it could read.
//! - `group_vars`/`host_vars` files are read (and checked) when the inventory is loaded, also
//!   for `hosts`; Ansible reads them only when variables are needed.
//! - Vault-encrypted data, executable inventory scripts, inventory plugin configuration files
//!   (`plugin:`) and TOML inventories are refused with an error instead of being used.
//! - The implicit `localhost` gets `ansible_connection: local` but no `ansible_python_interpreter`.

mod address;
mod bigint;
pub mod conn;
mod data;
pub mod hop;
mod ini;
pub mod json_out;
pub mod pattern;
mod pyliteral;
mod shlex;
mod vars;
mod yaml;
mod yaml_inv;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{Map, Value};

pub use conn::ConnSpec;
use data::{ALL, Data, LOCALHOST_NAMES, Vars};
use pattern::{Evaluator, Sel};

/// An inventory that could not be read. Always names the file (and line where there is one).
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("{}:{line}: {msg}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        msg: String,
    },
    #[error("{}: {msg}", path.display())]
    File { path: PathBuf, msg: String },
    #[error("{0}")]
    Other(String),
    /// The OpenSSH client configuration refuses this host (or cannot be read).
    #[error("host {host}: ssh config: {source}")]
    SshConfig {
        host: String,
        source: crate::ssh_config::SshConfigError,
    },
}

/// Variables Ansible never shows in `ansible-inventory` output (`C.INTERNAL_STATIC_VARS`).
fn is_internal_var(k: &str) -> bool {
    matches!(
        k,
        "ansible_async_path"
            | "ansible_collection_name"
            | "ansible_config_file"
            | "ansible_dependent_role_names"
            | "ansible_diff_mode"
            | "ansible_facts"
            | "ansible_forks"
            | "ansible_inventory_sources"
            | "ansible_limit"
            | "ansible_play_batch"
            | "ansible_play_hosts"
            | "ansible_play_hosts_all"
            | "ansible_play_role_names"
            | "ansible_playbook_python"
            | "ansible_role_name"
            | "ansible_role_names"
            | "ansible_run_tags"
            | "ansible_skip_tags"
            | "ansible_verbosity"
            | "ansible_version"
            | "inventory_dir"
            | "inventory_file"
            | "inventory_hostname"
            | "inventory_hostname_short"
            | "groups"
            | "group_names"
            | "hostvars"
            | "playbook_dir"
            | "play_hosts"
            | "role_name"
            | "role_names"
            | "role_path"
            | "role_uuid"
    )
}

/// Directory entries an inventory directory skips (`IGNORED` in Ansible's manager.py).
const IGNORED_EXTS: &[&str] = &[
    ".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg", ".retry",
];

/// `group_vars`/`host_vars` found beside one inventory source.
#[derive(Debug, Clone, Default)]
struct SourceVars {
    groups: HashMap<usize, Vars>,
    hosts: HashMap<usize, Vars>,
}

/// A loaded inventory: hosts, groups, and their variables.
#[derive(Debug, Clone)]
pub struct Inventory {
    data: Data,
    source_vars: Vec<SourceVars>,
    warnings: Vec<String>,
}

fn ignored_entry(name: &str) -> bool {
    name.starts_with('.')
        || matches!(name, "host_vars" | "group_vars" | "vars_plugins")
        || IGNORED_EXTS.iter().any(|e| name.ends_with(e))
}

/// Python `os.path.splitext(path)[1]` of the file name.
fn extension(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stripped = name.trim_start_matches('.');
    match stripped.rfind('.') {
        Some(i) => stripped[i..].to_string(),
        None => String::new(),
    }
}

fn is_host_list(source: &str) -> bool {
    source.contains(',') && !Path::new(source).exists()
}

/// `~` expansion and absolute path (Ansible's `unfrackpath(follow=False)`, lexically).
fn unfrack(source: &str) -> PathBuf {
    let p = if let Some(rest) = source.strip_prefix("~/") {
        std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(rest))
            .unwrap_or_else(|| PathBuf::from(source))
    } else {
        PathBuf::from(source)
    };
    if p.is_absolute() {
        p
    } else {
        std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p)
    }
}

/// Inventory sources when none are given: the `inventory` setting (`DEFAULT_HOST_LIST`) of
/// [`crate::ansible_config`]: `$ANSIBLE_INVENTORY`, else `inventory` in `[defaults]` of the
/// ansible.cfg Ansible reads, else `/etc/ansible/hosts`; a `pathlist` (split on `,`, each
/// resolved against the config file's directory, or the working directory for the
/// environment variable), as ansible-core resolves it.
pub fn default_sources() -> Result<Vec<String>, InventoryError> {
    use crate::ansible_config::{AnsibleConfig, Env, Value};
    let cfg = AnsibleConfig::load(&Env::from_process())
        .map_err(|e| InventoryError::Other(e.to_string()))?;
    Ok(match &cfg.get("inventory").value {
        Value::PathList(v) => v.iter().map(|p| p.to_string_lossy().into_owned()).collect(),
        _ => vec!["/etc/ansible/hosts".into()],
    })
}

/// Parse one source (file, directory or host list) into `data`.
fn parse_source(data: &mut Data, source: &str, display: &Path) -> Result<(), InventoryError> {
    if is_host_list(source) {
        for h in source.split(',') {
            let h = h.trim();
            if h.is_empty() {
                continue;
            }
            let (host, port) = address::parse_address(h, false).unwrap_or((h.to_string(), None));
            if data.host(&host).is_none() {
                data.add_host(&host, Some("ungrouped"), port)
                    .map_err(InventoryError::Other)?;
            }
        }
        return Ok(());
    }
    let path = unfrack(source);
    let file_err = |msg: String| InventoryError::File {
        path: display.to_path_buf(),
        msg,
    };
    let meta = std::fs::metadata(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            file_err("inventory source does not exist".into())
        } else {
            file_err(format!("cannot read inventory source: {e}"))
        }
    })?;
    if meta.is_dir() {
        let rd = std::fs::read_dir(&path)
            .map_err(|e| file_err(format!("cannot list directory: {e}")))?;
        let mut names: Vec<std::ffi::OsString> =
            rd.filter_map(|e| e.ok().map(|e| e.file_name())).collect();
        names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
        for n in names {
            if ignored_entry(&n.to_string_lossy()) {
                continue;
            }
            let full = path.join(&n);
            parse_source(data, &full.to_string_lossy(), &display.join(&n))?;
        }
        return Ok(());
    }
    let bytes =
        std::fs::read(&path).map_err(|e| file_err(format!("cannot read inventory file: {e}")))?;
    parse_file(data, display, &bytes, is_executable(&meta))
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}
#[cfg(not(unix))]
fn is_executable(_: &std::fs::Metadata) -> bool {
    false
}

/// Try the plugins Ansible would try on a file, in its order: yaml (for .yml/.yaml/.json and
/// extensionless files), then ini.
fn parse_file(
    data: &mut Data,
    path: &Path,
    bytes: &[u8],
    executable: bool,
) -> Result<(), InventoryError> {
    let file_err = |msg: &str| InventoryError::File {
        path: path.to_path_buf(),
        msg: msg.to_string(),
    };
    if executable && bytes.starts_with(b"#!") {
        return Err(file_err(
            "executable inventory scripts are not supported (only INI and YAML files)",
        ));
    }
    let ext = extension(path);
    if ext == ".toml" {
        return Err(file_err(
            "TOML inventories are not supported (only INI and YAML files)",
        ));
    }
    let text = std::str::from_utf8(bytes).ok();
    if text.is_some_and(yaml::is_vault_file) {
        return Err(file_err(
            "vault-encrypted inventory files are not supported",
        ));
    }
    let yaml_ext = matches!(ext.as_str(), ".yml" | ".yaml" | ".json");
    let mut yaml_err: Option<InventoryError> = None;
    let mut looked_like_yaml = yaml_ext;
    if yaml_ext || ext.is_empty() {
        let attempt = match text {
            None => Err::<(), _>(file_err("invalid UTF-8")),
            Some(t) => match yaml::load_with_duplicates(t) {
                Err(e) => Err(InventoryError::Parse {
                    path: path.to_path_buf(),
                    line: e.line,
                    msg: e.msg,
                }),
                Ok((None, _)) => Err(file_err("Parsed empty YAML file")),
                Ok((Some(root), dups)) => match &root.kind {
                    yaml::Kind::Map(pairs) if pairs.is_empty() => {
                        Err(file_err("Parsed empty YAML file"))
                    }
                    yaml::Kind::Map(pairs) => {
                        looked_like_yaml = true;
                        let plugin = pairs.iter().find(|(k, _)| k.as_str() == Some("plugin"));
                        if let Some((_, v)) = plugin
                            && !v.is_null()
                        {
                            return Err(file_err(&format!(
                                "inventory plugin configuration files are not supported (plugin: {})",
                                v.key_string()
                            )));
                        }
                        let mut attempt = data.clone();
                        match yaml_inv::parse(&mut attempt, path, &root) {
                            Ok(()) => {
                                for (line, key) in dups {
                                    attempt.warnings.push(format!(
                                        "Found duplicate mapping key '{key}' ({}:{line}); using last defined value only.",
                                        path.display()
                                    ));
                                }
                                *data = attempt;
                                return Ok(());
                            }
                            Err(e) => Err(e),
                        }
                    }
                    _ => Err(InventoryError::Parse {
                        path: path.to_path_buf(),
                        line: root.line.max(1),
                        msg: format!(
                            "YAML inventory has invalid structure, it should be a dictionary, got: <class '{}'>",
                            root.type_name()
                        ),
                    }),
                },
            },
        };
        if let Err(e) = attempt {
            yaml_err = Some(e);
        }
    }
    match ini::parse(data, path, bytes) {
        Ok(()) => Ok(()),
        Err(ini_err) => match yaml_err {
            Some(y) if looked_like_yaml => Err(y),
            _ => Err(ini_err),
        },
    }
}

impl Inventory {
    /// Load from -i sources (files, dirs, or "a,b," host lists); empty = Ansible's default
    /// (ANSIBLE_INVENTORY, then ansible.cfg `[defaults]` inventory in cwd, then /etc/ansible/hosts).
    pub fn load(sources: &[String]) -> Result<Inventory, InventoryError> {
        let explicit = !sources.is_empty();
        let sources: Vec<String> = if explicit {
            sources.to_vec()
        } else {
            default_sources()?
        };
        let mut data = Data::new();
        let mut parsed = Vec::new();
        let mut warnings = Vec::new();
        for s in sources.iter().filter(|s| !s.is_empty()) {
            // Ansible stays silent about a missing default /etc/ansible/hosts, and only warns
            // about a configured source that does not exist.
            if !explicit && !Path::new(s).exists() {
                if s != "/etc/ansible/hosts" {
                    warnings.push(format!("Unable to parse {s} as an inventory source"));
                }
                continue;
            }
            parse_source(&mut data, s, Path::new(s))?;
            parsed.push(s.clone());
        }
        if parsed.is_empty() {
            warnings
                .push("No inventory was parsed, only implicit localhost is available".to_string());
        }
        data.reconcile();
        warnings.append(&mut data.warnings);

        // group_vars/ and host_vars/ beside every path source, in source order.
        let mut source_vars = Vec::new();
        for s in &parsed {
            if is_host_list(s) {
                continue;
            }
            let p = unfrack(s);
            let dir = if p.is_dir() {
                p
            } else {
                p.parent().map(Path::to_path_buf).unwrap_or_default()
            };
            let dir = dir.canonicalize().unwrap_or(dir);
            source_vars.push(load_source_vars(&data, &dir, &mut warnings)?);
        }
        Ok(Inventory {
            data,
            source_vars,
            warnings,
        })
    }

    /// Parse one inventory file's content (no I/O: no `group_vars`/`host_vars`). The format is
    /// chosen from `name` as Ansible chooses it (YAML for `.yml`/`.yaml`/`.json` and names
    /// without extension, falling back to INI). For fuzzing and tests.
    pub fn from_bytes(name: &Path, bytes: &[u8]) -> Result<Inventory, InventoryError> {
        let mut data = Data::new();
        parse_file(&mut data, name, bytes, false)?;
        data.reconcile();
        let warnings = std::mem::take(&mut data.warnings);
        Ok(Inventory {
            data,
            source_vars: Vec::new(),
            warnings,
        })
    }

    /// Host names matched by `pattern` and then `limit`, in Ansible's order (as --list-hosts).
    pub fn select(
        &self,
        pattern: &str,
        limit: Option<&str>,
    ) -> Result<Vec<String>, InventoryError> {
        self.select_with_warnings(pattern, limit).map(|(h, _)| h)
    }

    /// [`Inventory::select`] plus the warnings Ansible would print (unmatched patterns, ...).
    pub fn select_with_warnings(
        &self,
        pattern: &str,
        limit: Option<&str>,
    ) -> Result<(Vec<String>, Vec<String>), InventoryError> {
        let mut ev = Evaluator::new(&self.data);
        let sels = self.get_hosts(&mut ev, pattern, limit)?;
        let mut names: Vec<String> = sels
            .iter()
            .map(|s| match s {
                Sel::Host(h) => self.data.hosts[*h].name.clone(),
                Sel::Implicit(n) => n.clone(),
            })
            .collect();
        // `list_hosts`: a localhost-like pattern with no match still names itself.
        if names.is_empty() && LOCALHOST_NAMES.contains(&pattern) {
            names.push(pattern.to_string());
        }
        Ok((names, ev.warnings))
    }

    /// `InventoryManager.get_hosts(pattern)` with the subset (limit) applied.
    fn get_hosts(
        &self,
        ev: &mut Evaluator,
        pattern: &str,
        limit: Option<&str>,
    ) -> Result<Vec<Sel>, InventoryError> {
        let patterns = pattern::split_host_pattern(pattern);
        let mut hosts = ev.evaluate(&patterns)?;
        if let Some(limit) = limit {
            let subset = pattern::subset_patterns(limit)?;
            if !subset.is_empty() {
                let allowed: std::collections::HashSet<Sel> =
                    ev.evaluate(&subset)?.into_iter().collect();
                hosts.retain(|h| allowed.contains(h));
            }
        }
        let mut seen = std::collections::HashSet::new();
        hosts.retain(|h| seen.insert(h.clone()));
        Ok(hosts)
    }

    /// Fully merged variables of one host (as `ansible-inventory --host H`).
    pub fn host_vars(&self, host: &str) -> Option<Map<String, Value>> {
        self.host_vars_tagged(host)
            .map(|m| m.into_iter().map(|(k, v)| (k, untag_unsafe(v))).collect())
    }

    /// [`Inventory::host_vars`] with `!unsafe` strings kept as `{"__ansible_unsafe": s}`,
    /// the form `ansible-inventory --list` prints them in.
    fn host_vars_tagged(&self, host: &str) -> Option<Map<String, Value>> {
        let merged = self.merged_vars(host)?;
        Some(
            merged
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    /// Merged variables by reference, in key order, internal variables removed.
    fn merged_vars(&self, host: &str) -> Option<BTreeMap<&str, &Value>> {
        static IMPLICIT: OnceLock<Vars> = OnceLock::new();
        let found = self.data.host(host).or_else(|| {
            LOCALHOST_NAMES
                .contains(&host)
                .then_some(self.data.localhost)
                .flatten()
        });
        match found {
            Some(h) => {
                let mut merged = self.group_level_vars(&self.data.hosts[h].groups);
                self.merge_host_level_vars(h, &mut merged);
                Some(merged)
            }
            // The implicit localhost: all's variables plus its connection.
            None if LOCALHOST_NAMES.contains(&host) => {
                let mut merged = self.group_level_vars(&[]);
                merge_layer(
                    &mut merged,
                    IMPLICIT.get_or_init(|| {
                        Vars::from_iter([(
                            "ansible_connection".to_string(),
                            Value::String("local".into()),
                        )])
                    }),
                );
                Some(merged)
            }
            None => None,
        }
    }

    /// The variables a host gets from its groups (`groups`: all of them, ancestors included),
    /// merged in Ansible's precedence order: inventory `all`, inventory groups by (depth,
    /// priority, name), then per source `group_vars/all` and `group_vars/<group>`.
    fn group_level_vars(&self, groups: &[usize]) -> BTreeMap<&str, &Value> {
        let groups = self.data.sorted_groups(groups);
        let mut merged = BTreeMap::new();
        merge_layer(&mut merged, &self.data.groups[ALL].vars);
        for g in &groups {
            merge_layer(&mut merged, &self.data.groups[*g].vars);
        }
        for sv in &self.source_vars {
            if let Some(v) = sv.groups.get(&ALL) {
                merge_layer(&mut merged, v);
            }
        }
        for sv in &self.source_vars {
            for v in groups.iter().filter_map(|g| sv.groups.get(g)) {
                merge_layer(&mut merged, v);
            }
        }
        merged
    }

    /// Layer host `h`'s own variables (inventory, then `host_vars/`) over `merged`.
    fn merge_host_level_vars<'a>(&'a self, h: usize, merged: &mut BTreeMap<&'a str, &'a Value>) {
        merge_layer(merged, &self.data.hosts[h].vars);
        for v in self.source_vars.iter().filter_map(|sv| sv.hosts.get(&h)) {
            merge_layer(merged, v);
        }
    }

    /// Connection spec for one host, from its merged vars (no ssh config files).
    pub fn conn_spec(&self, host: &str) -> Result<ConnSpec, InventoryError> {
        self.conn_spec_with(host, &conn::SshSettings::no_files()?)
    }

    /// Connection spec for one host: its merged vars resolved with the OpenSSH client
    /// configuration of `settings`.
    pub fn conn_spec_with(
        &self,
        host: &str,
        settings: &conn::SshSettings,
    ) -> Result<ConnSpec, InventoryError> {
        let vars = self
            .host_vars(host)
            .ok_or_else(|| InventoryError::Other(format!("host {host} is not in the inventory")))?;
        ConnSpec::from_vars_with(host, &vars, settings)
    }

    /// `ansible-inventory --list` JSON.
    pub fn to_list_json(&self) -> Value {
        self.list_json(None)
            .unwrap_or_else(|_| Value::Object(Map::new()))
    }

    /// `ansible-inventory --list [--limit L]` JSON.
    pub fn list_json(&self, limit: Option<&str>) -> Result<Value, InventoryError> {
        let mut buf = Vec::new();
        self.write_list_json(limit, &mut buf)?;
        serde_json::from_slice(&buf)
            .map_err(|e| InventoryError::Other(format!("internal JSON error: {e}")))
    }

    /// Write `ansible-inventory --list [--limit L]` output (byte for byte) to `w`.
    pub fn write_list_json<W: std::io::Write>(
        &self,
        limit: Option<&str>,
        w: W,
    ) -> Result<(), InventoryError> {
        let mut ev = Evaluator::new(&self.data);
        let hosts: Vec<usize> = self
            .get_hosts(&mut ev, "all", limit)?
            .into_iter()
            .filter_map(|s| match s {
                Sel::Host(h) => Some(h),
                Sel::Implicit(_) => None,
            })
            .collect();
        let available: HashSet<usize> = hosts.iter().copied().collect();
        let mut top: BTreeMap<&str, TopEntry> = BTreeMap::new();
        let mut seen = HashSet::new();
        self.format_group(ALL, &available, &mut seen, &mut top);
        let mut by_name: Vec<(&str, usize)> = hosts
            .iter()
            .map(|h| (self.data.hosts[*h].name.as_str(), *h))
            .collect();
        by_name.sort_unstable();
        top.insert(
            "_meta",
            TopEntry::Meta(HostVarsOut {
                inv: self,
                hosts: by_name,
            }),
        );
        json_out::write_pretty(w, &top)
            .map_err(|e| InventoryError::Other(format!("cannot write the inventory: {e}")))
    }

    fn format_group<'a>(
        &'a self,
        g: usize,
        available: &HashSet<usize>,
        seen: &mut HashSet<usize>,
        out: &mut BTreeMap<&'a str, TopEntry<'a>>,
    ) {
        let group = &self.data.groups[g];
        let hosts: Vec<&str> = if g == ALL {
            Vec::new()
        } else {
            group
                .hosts
                .iter()
                .filter(|h| available.contains(h))
                .map(|h| self.data.hosts[*h].name.as_str())
                .collect()
        };
        let children: Vec<&str> = group
            .children
            .iter()
            .map(|c| self.data.groups[*c].name.as_str())
            .collect();
        for &c in &group.children {
            if seen.insert(c) {
                self.format_group(c, available, seen, out);
            }
        }
        if hosts.is_empty() && children.is_empty() {
            out.remove(group.name.as_str());
        } else {
            out.insert(group.name.as_str(), TopEntry::Group { hosts, children });
        }
    }

    /// All host names in inventory order (`all`).
    pub fn host_names(&self) -> Vec<String> {
        self.data
            .group_hosts(ALL)
            .into_iter()
            .map(|h| self.data.hosts[h].name.clone())
            .collect()
    }

    /// Warnings Ansible would also print (and continue), in order.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

/// Insert one precedence layer (later layers win), leaving out internal variables.
fn merge_layer<'a>(merged: &mut BTreeMap<&'a str, &'a Value>, layer: &'a Vars) {
    for (k, v) in layer {
        if !is_internal_var(k) {
            merged.insert(k.as_str(), v);
        }
    }
}

/// `{"__ansible_unsafe": s}` → `s`, recursively.
fn untag_unsafe(v: Value) -> Value {
    match v {
        Value::Object(o)
            if o.len() == 1 && o.get("__ansible_unsafe").is_some_and(Value::is_string) =>
        {
            o.into_iter().next().map(|(_, s)| s).unwrap_or(Value::Null)
        }
        Value::Object(o) => {
            Value::Object(o.into_iter().map(|(k, v)| (k, untag_unsafe(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(untag_unsafe).collect()),
        other => other,
    }
}

/// A top-level entry of `--list` output: a group, or `_meta`.
enum TopEntry<'a> {
    Group {
        hosts: Vec<&'a str>,
        children: Vec<&'a str>,
    },
    Meta(HostVarsOut<'a>),
}

impl serde::Serialize for TopEntry<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        match self {
            TopEntry::Group { hosts, children } => {
                if !children.is_empty() {
                    map.serialize_entry("children", children)?;
                }
                if !hosts.is_empty() {
                    map.serialize_entry("hosts", hosts)?;
                }
            }
            TopEntry::Meta(hv) => {
                map.serialize_entry("hostvars", hv)?;
                map.serialize_entry("profile", "inventory_legacy")?;
            }
        }
        map.end()
    }
}

/// `_meta.hostvars`: merged per host while writing (hosts without variables are left out).
/// Hosts in the same groups share their group-level variables, merged once per group set.
struct HostVarsOut<'a> {
    inv: &'a Inventory,
    /// (name, index), sorted by name.
    hosts: Vec<(&'a str, usize)>,
}

impl serde::Serialize for HostVarsOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let inv = self.inv;
        let mut by_groups: HashMap<&[usize], BTreeMap<&str, &Value>> = HashMap::new();
        let mut map = s.serialize_map(None)?;
        for &(name, h) in &self.hosts {
            let groups = inv.data.hosts[h].groups.as_slice();
            let mut vars = by_groups
                .entry(groups)
                .or_insert_with(|| inv.group_level_vars(groups))
                .clone();
            inv.merge_host_level_vars(h, &mut vars);
            if !vars.is_empty() {
                map.serialize_entry(name, &json_out::VarsRef(&vars))?;
            }
        }
        map.end()
    }
}

/// Names present in a directory (one listing instead of a stat per candidate).
fn dir_listing(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect()
}

/// The entities (by index, ascending) that have a vars file or directory in `listing`:
/// `NAME`, `NAME.yml`, `NAME.yaml` or `NAME.json`, where `lookup` finds NAME's index.
fn entities_with_files(listing: &[String], lookup: impl Fn(&str) -> Option<usize>) -> Vec<usize> {
    let mut found: Vec<usize> = listing
        .iter()
        .flat_map(|f| {
            let stem = vars::EXTENSIONS.iter().find_map(|ext| f.strip_suffix(ext));
            [Some(f.as_str()), stem]
        })
        .flatten()
        .filter_map(lookup)
        .collect();
    found.sort_unstable();
    found.dedup();
    found
}

fn load_source_vars(
    data: &Data,
    dir: &Path,
    warnings: &mut Vec<String>,
) -> Result<SourceVars, InventoryError> {
    Ok(SourceVars {
        groups: load_vars_dir(
            dir,
            "group_vars",
            |n| data.group(n),
            |g| &data.groups[g].name,
            warnings,
        )?,
        hosts: load_vars_dir(
            dir,
            "host_vars",
            |n| data.host(n),
            |h| &data.hosts[h].name,
            warnings,
        )?,
    })
}

/// The non-empty variables of every entity with files in `dir/sub`, loaded in entity order.
fn load_vars_dir<'a>(
    dir: &Path,
    sub: &str,
    lookup: impl Fn(&str) -> Option<usize>,
    name: impl Fn(usize) -> &'a str,
    warnings: &mut Vec<String>,
) -> Result<HashMap<usize, Vars>, InventoryError> {
    let mut out = HashMap::new();
    let d = dir.join(sub);
    let Ok(meta) = std::fs::metadata(&d) else {
        return Ok(out);
    };
    if !meta.is_dir() {
        warnings.push(format!(
            "Found {sub} that is not a directory, skipping: {}",
            d.display()
        ));
        return Ok(out);
    }
    for idx in entities_with_files(&dir_listing(&d), lookup) {
        let v = vars::load_entity_vars(&d, name(idx), warnings)?;
        if !v.is_empty() {
            out.insert(idx, v);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn vars_files_are_found_by_exact_name_and_extension() {
        let listing: Vec<String> = ["web.yml", "db", "app.json", "x.yaml", "web.yaml", "n.txt"]
            .map(String::from)
            .to_vec();
        let names = ["db", "web", "app", "x.yaml", "n"];
        let lookup = |n: &str| names.iter().position(|x| *x == n);
        // "x.yaml" matches the entity named "x.yaml" itself; "n.txt" matches nothing.
        assert_eq!(entities_with_files(&listing, lookup), [0, 1, 2, 3]);
        assert!(entities_with_files(&[], lookup).is_empty());
    }

    #[test]
    fn list_merges_group_vars_per_host_in_precedence_order() {
        let t = tempfile::tempdir().unwrap();
        let inv = t.path().join("hosts");
        std::fs::write(
            &inv,
            "[web]\nw1 a=host\nw2\n[db]\nd1\n[web:vars]\na=web\nb=web\n[all:vars]\nb=all\nc=all\n",
        )
        .unwrap();
        std::fs::create_dir(t.path().join("group_vars")).unwrap();
        std::fs::write(t.path().join("group_vars/web.yml"), "c: gv_web\n").unwrap();
        std::fs::create_dir(t.path().join("host_vars")).unwrap();
        std::fs::write(t.path().join("host_vars/w2"), "a: hv\n").unwrap();
        let inv = Inventory::load(&[inv.to_string_lossy().into_owned()]).unwrap();
        let list = inv.list_json(None).unwrap();
        assert_eq!(
            list["_meta"]["hostvars"],
            json!({
                "w1": {"a": "host", "b": "web", "c": "gv_web"},
                "w2": {"a": "hv", "b": "web", "c": "gv_web"},
                "d1": {"b": "all", "c": "all"},
            })
        );
        // `--host` merges the same way as `--list`.
        for h in ["w1", "w2", "d1"] {
            assert_eq!(
                Value::Object(inv.host_vars(h).unwrap()),
                list["_meta"]["hostvars"][h]
            );
        }
    }
}
