//! What sshd's effective configuration says about public-key logins, from `sshd -T` output
//! (exact: `Match` applied for the account) or, when `sshd -T` cannot run (it needs root to
//! load the host keys), from the global section of `sshd_config` (approximate: no `Match`,
//! no `Include`), or OpenSSH's defaults. Also `AuthorizedKeysFile` token expansion as sshd's
//! `expand_authorized_keys` (auth.c) does it.

/// Where the settings came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigSource {
    /// `sshd -T -C user=..,host=..,addr=..`: exact, `Match` blocks applied.
    SshdT,
    /// The global section of `/etc/ssh/sshd_config` read by the login user: `Match` blocks
    /// and `Include`d files not applied.
    SshdConfigGlobal,
    /// Neither could be read: OpenSSH 9's defaults assumed.
    Defaults,
}

/// The settings that decide which keys log an account in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SshdAuth {
    pub source: ConfigSource,
    /// `AuthorizedKeysFile` patterns, tokens unexpanded (empty for `none`).
    pub authorized_keys_files: Vec<String>,
    pub authorized_keys_command: Option<String>,
    pub authorized_keys_command_user: Option<String>,
    pub trusted_user_ca_keys: Option<String>,
    pub authorized_principals_file: Option<String>,
    pub authorized_principals_command: Option<String>,
    pub strict_modes: bool,
    pub pubkey_authentication: bool,
    /// `yes`, `prohibit-password` (`without-password`), `forced-commands-only`, `no`.
    pub permit_root_login: String,
    pub use_pam: bool,
    /// `PubkeyAcceptedAlgorithms` as `sshd -T` prints it; `None`: OpenSSH 9's default
    /// (everything but `ssh-dss`).
    pub pubkey_accepted_algorithms: Option<Vec<String>>,
    /// `RequiredRSASize` (OpenSSH 9.1+; 1024 by default).
    pub required_rsa_size: u32,
}

impl Default for SshdAuth {
    /// OpenSSH 9's compiled-in defaults.
    fn default() -> Self {
        SshdAuth {
            source: ConfigSource::Defaults,
            authorized_keys_files: vec![
                ".ssh/authorized_keys".into(),
                ".ssh/authorized_keys2".into(),
            ],
            authorized_keys_command: None,
            authorized_keys_command_user: None,
            trusted_user_ca_keys: None,
            authorized_principals_file: None,
            authorized_principals_command: None,
            strict_modes: true,
            pubkey_authentication: true,
            permit_root_login: "prohibit-password".into(),
            use_pam: false,
            pubkey_accepted_algorithms: None,
            required_rsa_size: 1024,
        }
    }
}

fn opt(v: &str) -> Option<String> {
    let v = v.trim();
    (!v.is_empty() && !v.eq_ignore_ascii_case("none")).then(|| v.to_string())
}

fn yes(v: &str) -> bool {
    v.trim().eq_ignore_ascii_case("yes")
}

/// Apply one `keyword value` to `a`. `first_wins`: sshd_config semantics (the first value
/// read for a keyword is used); `sshd -T` prints each keyword once.
fn apply(a: &mut SshdAuth, seen: &mut Vec<String>, key: &str, val: &str, first_wins: bool) {
    let key = key.to_ascii_lowercase();
    if first_wins && seen.contains(&key) {
        return;
    }
    match key.as_str() {
        "authorizedkeysfile" => {
            a.authorized_keys_files = if val.trim().eq_ignore_ascii_case("none") {
                vec![]
            } else {
                val.split_whitespace().map(str::to_string).collect()
            }
        }
        "authorizedkeyscommand" => a.authorized_keys_command = opt(val),
        "authorizedkeyscommanduser" => a.authorized_keys_command_user = opt(val),
        "trustedusercakeys" => a.trusted_user_ca_keys = opt(val),
        "authorizedprincipalsfile" => a.authorized_principals_file = opt(val),
        "authorizedprincipalscommand" => a.authorized_principals_command = opt(val),
        "strictmodes" => a.strict_modes = yes(val),
        "pubkeyauthentication" => a.pubkey_authentication = yes(val),
        "permitrootlogin" => {
            let v = val.trim().to_ascii_lowercase();
            a.permit_root_login = if v == "without-password" {
                "prohibit-password".into()
            } else {
                v
            }
        }
        "usepam" => a.use_pam = yes(val),
        "requiredrsasize" => a.required_rsa_size = val.trim().parse().unwrap_or(1024),
        "pubkeyacceptedalgorithms" | "pubkeyacceptedkeytypes"
            if !val.trim().starts_with(['+', '-', '^']) =>
        {
            a.pubkey_accepted_algorithms =
                Some(val.split(',').map(|x| x.trim().to_string()).collect())
        }
        _ => return,
    }
    seen.push(key);
}

/// Parse `sshd -T` output (`keyword value` per line, keywords lower case).
pub fn parse_sshd_t(text: &str) -> SshdAuth {
    let mut a = SshdAuth {
        source: ConfigSource::SshdT,
        ..SshdAuth::default()
    };
    let mut seen = Vec::new();
    for line in text.lines() {
        let (k, v) = split_kw(line);
        if !k.is_empty() {
            apply(&mut a, &mut seen, k, v, false);
        }
    }
    a
}

/// `keyword value` or `keyword=value` (sshd_config allows one `=`).
fn split_kw(line: &str) -> (&str, &str) {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') {
        return ("", "");
    }
    let end = t
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(t.len());
    let (k, rest) = t.split_at(end);
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
    (k, rest)
}

/// The global section of an `sshd_config` (up to the first `Match`), first value wins;
/// `Include` is not followed (the result says so through [`ConfigSource::SshdConfigGlobal`]).
/// Returns the settings and whether the file has `Match` blocks or `Include`s that were not
/// applied.
pub fn parse_sshd_config_global(text: &str) -> (SshdAuth, bool) {
    let mut a = SshdAuth {
        source: ConfigSource::SshdConfigGlobal,
        ..SshdAuth::default()
    };
    let mut seen = Vec::new();
    let mut partial = false;
    for line in text.lines() {
        let (k, v) = split_kw(line);
        if k.eq_ignore_ascii_case("match") {
            partial = true;
            break;
        }
        if k.eq_ignore_ascii_case("include") {
            partial = true;
            continue;
        }
        if !k.is_empty() {
            // The value may be quoted as a whole ("...").
            let v = v.trim_matches('"');
            apply(&mut a, &mut seen, k, v, true);
        }
    }
    (a, partial)
}

/// Expand one `AuthorizedKeysFile` pattern for an account as sshd does: `%%`, `%h` (home),
/// `%u` (user name), `%U` (uid); a relative result is taken relative to the home directory.
/// An unknown token is an error (sshd refuses it too).
pub fn expand_keys_file(pattern: &str, user: &str, home: &str, uid: u32) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('h') => out.push_str(home),
            Some('u') => out.push_str(user),
            Some('U') => out.push_str(&uid.to_string()),
            Some(o) => return Err(format!("{pattern}: unknown token %{o}")),
            None => return Err(format!("{pattern}: a lone % at the end")),
        }
    }
    if out.starts_with('/') {
        Ok(out)
    } else {
        Ok(format!("{}/{out}", home.trim_end_matches('/')))
    }
}

/// Does `PubkeyAcceptedAlgorithms` allow a key of `key_type`? An RSA key can sign with
/// `ssh-rsa`, `rsa-sha2-256` or `rsa-sha2-512` (and so for its certificates); any one
/// allowed is enough.
pub fn algorithm_allowed(key_type: &str, algs: Option<&[String]>) -> bool {
    let Some(algs) = algs else {
        return !key_type.starts_with("ssh-dss");
    };
    let cert = key_type.ends_with("-cert-v01@openssh.com");
    let base = key_type.trim_end_matches("-cert-v01@openssh.com");
    let family: Vec<String> = if matches!(base, "ssh-rsa" | "rsa-sha2-256" | "rsa-sha2-512") {
        ["ssh-rsa", "rsa-sha2-256", "rsa-sha2-512"]
            .iter()
            .map(|b| {
                if cert {
                    format!("{b}-cert-v01@openssh.com")
                } else {
                    b.to_string()
                }
            })
            .collect()
    } else {
        vec![key_type.to_string()]
    };
    family.iter().any(|f| algs.iter().any(|a| a == f))
}

/// Whether `root` may log in with a key at all under `permit_root_login`, and whether only
/// keys with a forced command count (`forced-commands-only`).
pub fn root_key_rule(permit_root_login: &str) -> RootRule {
    match permit_root_login {
        "no" => RootRule::Denied,
        "forced-commands-only" => RootRule::ForcedCommandsOnly,
        _ => RootRule::Allowed,
    }
}

/// What `PermitRootLogin` means for root's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootRule {
    Allowed,
    ForcedCommandsOnly,
    Denied,
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "port 22\nusepam yes\npermitrootlogin without-password\npubkeyauthentication yes\nstrictmodes yes\ntrustedusercakeys /etc/ssh/ca.pub\nauthorizedprincipalsfile none\nauthorizedkeyscommand /usr/bin/keys %u\nauthorizedkeyscommanduser nobody\nauthorizedkeysfile .ssh/authorized_keys /etc/ssh/authorized_keys/%u\n";

    #[test]
    fn parses_sshd_t() {
        let a = parse_sshd_t(T);
        assert_eq!(a.source, ConfigSource::SshdT);
        assert_eq!(
            a.authorized_keys_files,
            [".ssh/authorized_keys", "/etc/ssh/authorized_keys/%u"]
        );
        assert_eq!(
            a.authorized_keys_command.as_deref(),
            Some("/usr/bin/keys %u")
        );
        assert_eq!(a.authorized_keys_command_user.as_deref(), Some("nobody"));
        assert_eq!(a.trusted_user_ca_keys.as_deref(), Some("/etc/ssh/ca.pub"));
        assert_eq!(a.authorized_principals_file, None);
        assert_eq!(a.permit_root_login, "prohibit-password");
        assert!(a.use_pam && a.strict_modes && a.pubkey_authentication);
        assert!(
            parse_sshd_t("authorizedkeysfile none\n")
                .authorized_keys_files
                .is_empty()
        );
    }

    #[test]
    fn global_section_first_value_wins_and_stops_at_match() {
        let (a, partial) = parse_sshd_config_global(
            "# c\nAuthorizedKeysFile=.ssh/k1 .ssh/k2\nAuthorizedKeysFile .ssh/other\nStrictModes no\nMatch User x\n  AuthorizedKeysFile /x\n",
        );
        assert_eq!(a.authorized_keys_files, [".ssh/k1", ".ssh/k2"]);
        assert!(!a.strict_modes);
        assert!(partial);
        let (d, partial) = parse_sshd_config_global("Port 22\n");
        assert_eq!(
            d.authorized_keys_files,
            [".ssh/authorized_keys", ".ssh/authorized_keys2"]
        );
        assert!(!partial);
    }

    #[test]
    fn expands_tokens_like_sshd() {
        let e = |p| expand_keys_file(p, "bob", "/home/bob", 1001);
        assert_eq!(
            e(".ssh/authorized_keys").unwrap(),
            "/home/bob/.ssh/authorized_keys"
        );
        assert_eq!(e("/etc/ssh/keys/%u").unwrap(), "/etc/ssh/keys/bob");
        assert_eq!(e("%h/.ssh/k.%U").unwrap(), "/home/bob/.ssh/k.1001");
        assert_eq!(e("/k/100%%").unwrap(), "/k/100%");
        assert!(e("/k/%x").unwrap_err().contains("%x"));
        assert!(e("/k/%").is_err());
    }

    #[test]
    fn accepted_algorithms() {
        let a = parse_sshd_t("pubkeyacceptedalgorithms ssh-ed25519,rsa-sha2-512\n");
        let algs = a.pubkey_accepted_algorithms.as_deref();
        assert!(algorithm_allowed("ssh-ed25519", algs));
        assert!(
            algorithm_allowed("ssh-rsa", algs),
            "an RSA key signs with rsa-sha2-512"
        );
        assert!(!algorithm_allowed("ecdsa-sha2-nistp256", algs));
        assert!(!algorithm_allowed("ssh-rsa-cert-v01@openssh.com", algs));
        assert!(!algorithm_allowed("ssh-dss", None));
        assert!(algorithm_allowed("ssh-ed25519", None));
    }

    #[test]
    fn root_rules() {
        assert_eq!(root_key_rule("no"), RootRule::Denied);
        assert_eq!(
            root_key_rule("forced-commands-only"),
            RootRule::ForcedCommandsOnly
        );
        assert_eq!(root_key_rule("prohibit-password"), RootRule::Allowed);
        assert_eq!(root_key_rule("yes"), RootRule::Allowed);
    }
}
