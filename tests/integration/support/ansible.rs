//! An isolated Ansible for tests: the venv's ansible-core (`scripts/setup.sh`) with a temp
//! `ANSIBLE_HOME`, an empty config, a library dir holding the freshly built module binaries
//! and their sidecar docs (the short names), and an empty collections path into which
//! [`AnsibleEnv::with_collection`] installs the `sshfleet.fleet` tarball built by
//! `scripts/build-collection.sh`. Nothing of the user's Ansible or ssh-agent setup leaks in.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

use super::{repo_root, venv_bin};

/// The module binaries built for this test run, by name.
pub fn module_binaries() -> [(&'static str, PathBuf); 3] {
    [
        (
            "sshfleet_authorized_key",
            PathBuf::from(env!("CARGO_BIN_EXE_sshfleet_authorized_key")),
        ),
        (
            "sshfleet_slurp",
            PathBuf::from(env!("CARGO_BIN_EXE_sshfleet_slurp")),
        ),
        (
            "sshfleet_copy",
            PathBuf::from(env!("CARGO_BIN_EXE_sshfleet_copy")),
        ),
    ]
}

/// One ansible environment: temp ANSIBLE_HOME, its own config, a library dir with the
/// freshly built modules and their sidecar docs. Nothing of the user's Ansible or ssh-agent
/// setup leaks in.
pub struct AnsibleEnv {
    pub tmp: tempfile::TempDir,
}

impl AnsibleEnv {
    pub fn new() -> AnsibleEnv {
        let playbook = venv_bin().join("ansible-playbook");
        assert!(
            playbook.exists(),
            "{} missing: run scripts/setup.sh (it creates the venv with ansible-core and ansible.posix)",
            playbook.display()
        );
        let tmp = tempfile::tempdir().unwrap();
        let lib = tmp.path().join("library");
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::create_dir_all(tmp.path().join("home")).unwrap();
        std::fs::create_dir_all(tmp.path().join("collections")).unwrap();
        std::fs::write(tmp.path().join("ansible.cfg"), "[defaults]\n").unwrap();
        for (name, bin) in module_binaries() {
            std::fs::copy(&bin, lib.join(name)).unwrap();
            std::fs::copy(
                repo_root().join(format!("modules/{name}.yml")),
                lib.join(format!("{name}.yml")),
            )
            .unwrap();
        }
        AnsibleEnv { tmp }
    }

    /// An environment with the `sshfleet.fleet` collection built into a tarball from the
    /// static module binaries of `scripts/build-modules.sh` and installed with
    /// `ansible-galaxy collection install` into this environment's empty collections path.
    pub fn with_collection() -> AnsibleEnv {
        let env = AnsibleEnv::new();
        let tarball = env.build_collection();
        let out = env
            .command("ansible-galaxy")
            .args(["collection", "install", "--force", "-p"])
            .arg(env.collections())
            .arg(&tarball)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ansible-galaxy collection install failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        env
    }

    /// Run `scripts/build-collection.sh` (without rebuilding the modules) with its staging
    /// tree and output in this environment; the tarball's path. The script fails on any
    /// warning of `ansible-galaxy collection build`.
    pub fn build_collection(&self) -> PathBuf {
        let bin =
            repo_root().join("target/x86_64-unknown-linux-musl/module/sshfleet_authorized_key");
        assert!(
            bin.exists(),
            "{} missing: run bash scripts/build-modules.sh (static module binaries for the collection)",
            bin.display()
        );
        let out = Command::new("bash")
            .arg(repo_root().join("scripts/build-collection.sh"))
            .env("SSHFLEET_SKIP_MODULE_BUILD", "1")
            .env("SSHFLEET_COLLECTION_DIR", self.tmp.path().join("stage"))
            .env("SSHFLEET_DIST", self.tmp.path().join("dist"))
            .env("ANSIBLE_HOME", self.tmp.path().join("home"))
            .env("ANSIBLE_CONFIG", self.tmp.path().join("ansible.cfg"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/build-collection.sh failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
        PathBuf::from(path)
    }

    /// The collections path of this environment (`ANSIBLE_COLLECTIONS_PATH`).
    pub fn collections(&self) -> PathBuf {
        self.tmp.path().join("collections")
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    pub fn library(&self) -> PathBuf {
        self.tmp.path().join("library")
    }

    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(venv_bin().join(program));
        let t = self.tmp.path();
        c.current_dir(t)
            .env("ANSIBLE_HOME", t.join("home"))
            .env("ANSIBLE_CONFIG", t.join("ansible.cfg"))
            .env("ANSIBLE_LIBRARY", self.library())
            .env("ANSIBLE_COLLECTIONS_PATH", self.collections())
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_FORCE_COLOR", "0")
            .env("ANSIBLE_LOCALHOST_WARNING", "false")
            .env("ANSIBLE_INVENTORY_UNPARSED_WARNING", "false")
            .env("ANSIBLE_PYTHON_INTERPRETER", venv_bin().join("python3"))
            .env_remove("ANSIBLE_STDOUT_CALLBACK")
            .env_remove("ANSIBLE_INVENTORY")
            .env_remove("SSH_AUTH_SOCK");
        c
    }

    /// Run `tasks` on localhost (`connection: local`); the results of the tasks, in order.
    pub fn play(&self, name: &str, tasks: Vec<Value>) -> Vec<Value> {
        self.play_with(name, tasks, &[])
    }

    /// [`Self::play`] with extra `ansible-playbook` arguments.
    pub fn play_with(&self, name: &str, tasks: Vec<Value>, extra: &[&str]) -> Vec<Value> {
        let pb = self.tmp.path().join(format!("{name}.json"));
        let play = json!([{
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": false,
            "tasks": tasks,
        }]);
        std::fs::write(&pb, serde_json::to_vec_pretty(&play).unwrap()).unwrap();
        let out = self
            .command("ansible-playbook")
            .env("ANSIBLE_STDOUT_CALLBACK", "ansible.posix.json")
            .args(["-i", "localhost,"])
            .args(extra)
            .arg(&pb)
            .output()
            .unwrap();
        let v = json_output(&out);
        v["plays"][0]["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["hosts"]["localhost"].clone())
            .collect()
    }
}

/// The json callback's document from an ansible-playbook run (panics with everything printed
/// when it is not JSON).
pub fn json_output(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "ansible-playbook output is not JSON ({e}); status {:?}\nstdout:\n{stdout}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
