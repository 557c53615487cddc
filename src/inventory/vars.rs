//! `group_vars/` and `host_vars/` beside an inventory source (Ansible's `host_group_vars`).
//!
//! For an entity NAME the first existing of `NAME`, `NAME.yml`, `NAME.yaml`, `NAME.json` is
//! used; if it is a directory, every file in it (recursively, sorted, skipping hidden files,
//! `~` backups and other extensions) is loaded in order and merged key by key. Empty files
//! count as nothing; a file that is not a mapping, is not valid YAML/JSON, or is (or holds)
//! vault-encrypted data is an error naming the file.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::InventoryError;
use super::data::Vars;
use super::yaml::{self, Kind};

/// Extensions a vars file may have (besides none).
pub const EXTENSIONS: [&str; 3] = [".yml", ".yaml", ".json"];

/// The files Ansible's `find_vars_files` returns for `name` under `dir`.
pub fn find_vars_files(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut candidates = vec![dir.join(name)];
    for ext in EXTENSIONS {
        candidates.push(dir.join(format!("{name}{ext}")));
    }
    for c in candidates {
        // `path_exists` follows symlinks.
        if let Ok(meta) = std::fs::metadata(&c) {
            let mut found = Vec::new();
            if meta.is_dir() {
                dir_files(&c, &mut found);
            } else {
                found.push(c);
            }
            return found;
        }
    }
    Vec::new()
}

fn dir_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut names: Vec<std::ffi::OsString> =
        rd.filter_map(|e| e.ok().map(|e| e.file_name())).collect();
    names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
    for n in names {
        let s = n.to_string_lossy();
        if s.starts_with('.') || s.ends_with('~') {
            continue;
        }
        let full = dir.join(&n);
        let ext = Path::new(&n)
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default();
        if full.is_dir() && ext.is_empty() {
            dir_files(&full, out);
        } else if full.is_file() && (ext.is_empty() || EXTENSIONS.contains(&ext.as_str())) {
            out.push(full);
        }
    }
}

/// Load and merge the vars files for one entity. `warnings` receives duplicate-key warnings.
pub fn load_entity_vars(
    dir: &Path,
    name: &str,
    warnings: &mut Vec<String>,
) -> Result<Vars, InventoryError> {
    let mut out = Vars::new();
    if name.starts_with('/') {
        return Ok(out);
    }
    for file in find_vars_files(dir, name) {
        for (k, v) in load_vars_file(&file, warnings)? {
            out.insert(k, v);
        }
    }
    Ok(out)
}

/// One vars file: a mapping (or nothing).
pub fn load_vars_file(path: &Path, warnings: &mut Vec<String>) -> Result<Vars, InventoryError> {
    let file_err = |msg: String| InventoryError::File {
        path: path.to_path_buf(),
        msg,
    };
    let bytes = std::fs::read(path).map_err(|e| file_err(format!("cannot read vars file: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        InventoryError::Parse {
            path: path.to_path_buf(),
            line,
            msg: "invalid UTF-8".into(),
        }
    })?;
    if yaml::is_vault_file(&text) {
        return Err(file_err(
            "vault-encrypted files are not supported (the file is encrypted with ansible-vault)"
                .into(),
        ));
    }
    let (node, dups) = yaml::load_with_duplicates(&text).map_err(|e| InventoryError::Parse {
        path: path.to_path_buf(),
        line: e.line,
        msg: e.msg,
    })?;
    for (line, key) in dups {
        warnings.push(format!(
            "Found duplicate mapping key '{key}' ({}:{line}); using last defined value only.",
            path.display()
        ));
    }
    let Some(node) = node else {
        return Ok(Vars::new());
    };
    match &node.kind {
        Kind::Map(pairs) => {
            let mut out = Vars::new();
            for (k, v) in pairs {
                let name = k.key_string();
                let value = v.to_json().map_err(|line| InventoryError::Parse {
                    path: path.to_path_buf(),
                    line,
                    msg: format!("variable '{name}': vault-encrypted values are not supported"),
                })?;
                out.insert(name, value);
            }
            Ok(out)
        }
        // Falsy documents (`~`, `false`, `0`, `''`, `[]`) are ignored like empty files.
        Kind::Scalar(Value::Null) | Kind::Scalar(Value::Bool(false)) => Ok(Vars::new()),
        Kind::Scalar(Value::String(s)) if s.is_empty() => Ok(Vars::new()),
        Kind::Scalar(Value::Number(n)) if n.as_f64() == Some(0.0) => Ok(Vars::new()),
        Kind::Seq(s) if s.is_empty() => Ok(Vars::new()),
        _ => Err(InventoryError::Parse {
            path: path.to_path_buf(),
            line: node.line.max(1),
            msg: format!(
                "Could not process {:?}: vars files must contain a mapping, found {}",
                path.display().to_string(),
                node.type_name()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn file_and_directory_forms() {
        let t = tempfile::tempdir().unwrap();
        let gv = t.path().join("group_vars");
        std::fs::create_dir_all(gv.join("web")).unwrap();
        std::fs::write(gv.join("web/01.yml"), "a: 1\nb: 1\n").unwrap();
        std::fs::write(gv.join("web/02"), "b: 2\n").unwrap();
        std::fs::write(gv.join("web/.hidden.yml"), "b: 3\n").unwrap();
        std::fs::write(gv.join("web/x.yml~"), "b: 4\n").unwrap();
        std::fs::write(gv.join("web/notes.txt"), "b: 5\n").unwrap();
        std::fs::write(gv.join("web.yml"), "ignored: true\n").unwrap();
        std::fs::write(gv.join("db.json"), "{\"port\": 5432}").unwrap();
        std::fs::write(gv.join("empty.yml"), "").unwrap();
        let mut w = Vec::new();
        let v = load_entity_vars(&gv, "web", &mut w).unwrap();
        assert_eq!(Value::Object(v), json!({"a": 1, "b": 2}));
        let v = load_entity_vars(&gv, "db", &mut w).unwrap();
        assert_eq!(Value::Object(v), json!({"port": 5432}));
        assert!(load_entity_vars(&gv, "empty", &mut w).unwrap().is_empty());
        assert!(load_entity_vars(&gv, "none", &mut w).unwrap().is_empty());
    }

    #[test]
    fn bad_files_are_errors_naming_the_file() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("x.yml");
        std::fs::write(&p, "- a\n- b\n").unwrap();
        let e = load_vars_file(&p, &mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("x.yml"), "{e}");
        std::fs::write(&p, "a: [1\nb: 2\n").unwrap();
        let e = load_vars_file(&p, &mut Vec::new()).unwrap_err();
        assert!(matches!(e, InventoryError::Parse { line: 2, .. }), "{e}");
        std::fs::write(&p, "$ANSIBLE_VAULT;1.1;AES256\n6162\n").unwrap();
        let e = load_vars_file(&p, &mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("vault"), "{e}");
        std::fs::write(
            &p,
            "ok: 1\npw: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6162\n",
        )
        .unwrap();
        let e = load_vars_file(&p, &mut Vec::new()).unwrap_err();
        assert!(
            e.to_string()
                .contains("'pw': vault-encrypted values are not supported"),
            "{e}"
        );
    }
}
