//! What an interrupted `keys rotate` left behind on the controller, and how the same command,
//! run again, continues from there.
//!
//! - **The journal** `K.sshfleet-rotation` (beside the new key `K`): written right after
//!   `--generate` creates `K`, holding the new key's fingerprint; removed once the rotation
//!   (and `--install`) is complete. A rerun of the same `--generate` command finds `K` and the
//!   journal naming `K`'s key, and resumes with that key instead of refusing to overwrite it.
//!   Without a matching journal it refuses and prints the exact command that resumes
//!   ([`resume_command`]).
//! - **`--install` half done**: if `K` is gone but the key the journal (or the leftover
//!   `K.pub`) names is already at the install destination, the move is finished — the rerun
//!   rotates with the installed key (every host is then `ok`) and removes the leftovers.
//!
//! The per-host half of resuming (logging in with the new key where the configured
//! credentials are refused) is in `rotate.rs`.

use std::path::{Path, PathBuf};

use crate::target::shell_quote;

/// The journal of a rotation to the key at `key`.
pub fn journal_path(key: &Path) -> PathBuf {
    let mut s = key.as_os_str().to_owned();
    s.push(".sshfleet-rotation");
    PathBuf::from(s)
}

/// The journal's content for the key with fingerprint `fp`.
pub fn journal_text(fp: &str) -> String {
    format!(
        "# sshfleet keys rotate --generate: rotation to this key in progress\nfingerprint {fp}\n"
    )
}

/// The fingerprint a journal names (`None` if it names none).
pub fn parse_journal(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("fingerprint "))
        .map(|f| f.trim().to_string())
        .filter(|f| !f.is_empty())
}

/// Read the journal beside `key` (`None` when there is none or it names no key).
pub fn read_journal(key: &Path) -> Option<String> {
    parse_journal(&std::fs::read_to_string(journal_path(key)).ok()?)
}

/// The command line that resumes a `--generate` run with the key it already wrote: the same
/// arguments without `--generate` and the options that only shape a generated key (`--type`,
/// `--bits`, `--comment`, which `rotate` accepts only with `--generate`). Every word is
/// shell-quoted where needed.
pub fn resume_command(args: &[String]) -> String {
    let rotate_at = args.iter().position(|a| a == "rotate");
    let mut out: Vec<String> = Vec::new();
    let mut skip_value = false;
    for (i, a) in args.iter().enumerate() {
        if skip_value {
            skip_value = false;
            continue;
        }
        if rotate_at.is_some_and(|r| i > r) {
            if a == "--generate" {
                continue;
            }
            if ["--type", "--bits", "--comment"].contains(&a.as_str()) {
                skip_value = true;
                continue;
            }
            if ["--type=", "--bits=", "--comment="]
                .iter()
                .any(|p| a.starts_with(p))
            {
                continue;
            }
        }
        out.push(a.clone());
    }
    out.iter()
        .map(|w| {
            if !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:@,+%".contains(c))
            {
                w.clone()
            } else {
                shell_quote(w)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn resume_command_drops_generation_options_only() {
        let a = args(&[
            "sshfleet",
            "-i",
            "inv.ini",
            "keys",
            "rotate",
            "--generate",
            "--type",
            "rsa",
            "--bits=4096",
            "--comment",
            "my key",
            "--new-key",
            "/home/me/.ssh/fleet 2026",
            "--install",
        ]);
        assert_eq!(
            resume_command(&a),
            "sshfleet -i inv.ini keys rotate --new-key '/home/me/.ssh/fleet 2026' --install"
        );
        // Before `rotate`, nothing is dropped (a global --comment does not exist, but a value
        // named like a flag must survive).
        let a = args(&[
            "sshfleet",
            "-l",
            "--generate",
            "keys",
            "rotate",
            "--new-key",
            "k",
        ]);
        assert_eq!(
            resume_command(&a),
            "sshfleet -l --generate keys rotate --new-key k"
        );
    }

    #[test]
    fn journal_round_trip() {
        assert_eq!(
            parse_journal(&journal_text("SHA256:abc")).as_deref(),
            Some("SHA256:abc")
        );
        assert_eq!(parse_journal("garbage\n"), None);
        assert_eq!(
            journal_path(Path::new("/k/new")),
            PathBuf::from("/k/new.sshfleet-rotation")
        );
    }
}
