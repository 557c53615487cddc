//! Secrets out of a command line before it is journaled.
//!
//! sshfleet itself never takes a secret as an argument (passwords come from a prompt, `-k`/`-K`,
//! or an environment variable named by `--password-env`/`--become-password-env`, whose *name*
//! is kept; inventory variables such as `ansible_password` never reach argv). What can still
//! carry one: credentials in a URL (`--key https://user:token@host/keys`), and words a user
//! passes through to ssh or in key=value form (`--ssh-extra-args '-o X=Y'`,
//! `ansible_password=…`). Those are replaced by `<redacted>`.

/// Placeholder for a removed secret.
pub const REDACTED: &str = "<redacted>";

/// Name parts that mark a value as secret.
const SECRET_NAMES: &[&str] = &["pass", "secret", "token", "pwd", "credential", "apikey"];

fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    // `--password-env VAR` names a variable; the name is not the secret.
    !n.ends_with("-env") && !n.ends_with("_env") && SECRET_NAMES.iter().any(|s| n.contains(s))
}

/// `scheme://user:secret@host` → `scheme://user:<redacted>@host` (anywhere in `word`).
fn redact_url_userinfo(word: &str) -> String {
    let mut out = String::new();
    let mut rest = word;
    while let Some(i) = rest.find("://") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let end = rest.find(['/', ' ', '\'', '"']).unwrap_or(rest.len());
        let authority = &rest[..end];
        if let Some(at) = authority.rfind('@') {
            let userinfo = &authority[..at];
            match userinfo.find(':') {
                Some(c) => {
                    out.push_str(&userinfo[..c + 1]);
                    out.push_str(REDACTED);
                }
                None => out.push_str(REDACTED),
            }
            out.push_str(&authority[at..]);
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    out
}

/// One word with `NAME=VALUE` parts whose NAME looks secret redacted (words inside a word
/// split on blanks, for pass-through argument strings).
fn redact_assignments(word: &str) -> String {
    let mut changed = false;
    let parts: Vec<String> = word
        .split(' ')
        .map(|p| match p.split_once('=') {
            Some((name, _)) if secret_name(name.trim_start_matches('-')) => {
                changed = true;
                format!("{name}={REDACTED}")
            }
            _ => p.to_string(),
        })
        .collect();
    if changed {
        parts.join(" ")
    } else {
        word.to_string()
    }
}

/// `argv` with secrets replaced by [`REDACTED`]: URL credentials, `NAME=VALUE` with a secret
/// NAME, and the value after an option whose name looks secret (`--db-password X`), except
/// options naming an environment variable (`--password-env VAR`).
pub fn argv(argv: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(argv.len());
    let mut next_secret = false;
    for w in argv {
        if next_secret {
            out.push(REDACTED.to_string());
            next_secret = false;
            continue;
        }
        if let Some(opt) = w.strip_prefix("--")
            && !opt.contains('=')
            && secret_name(opt)
        {
            next_secret = true;
            out.push(w.clone());
            continue;
        }
        out.push(redact_assignments(&redact_url_userinfo(w)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn env_var_names_are_kept_secrets_go() {
        let got = argv(&v(&[
            "sshfleet",
            "--password-env",
            "PW",
            "--become-password-env",
            "BPW",
            "-k",
            "keys",
            "add",
            "--key",
            "https://bob:s3cr3t@example.com/bob.keys",
            "--ssh-extra-args",
            "-o ansible_password=hunter2 -o Port=22",
            "--db-password",
            "hunter3",
            "--token=abc",
        ]));
        let text = got.join(" ");
        for secret in ["s3cr3t", "hunter2", "hunter3", "abc"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("--password-env PW --become-password-env BPW -k"));
        assert!(text.contains("https://bob:<redacted>@example.com/bob.keys"));
        assert!(text.contains("-o ansible_password=<redacted> -o Port=22"));
        assert!(text.contains("--db-password <redacted>"));
        assert!(text.contains("--token=<redacted>"));
    }

    #[test]
    fn ordinary_words_unchanged() {
        let a = v(&[
            "sshfleet",
            "keys",
            "rotate",
            "--new-key",
            "/k/new",
            "https://x/y",
        ]);
        assert_eq!(argv(&a), a);
    }
}
