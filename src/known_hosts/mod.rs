//! known_hosts files: parse (plain, hashed `|1|salt|hash`, `[host]:port`, patterns with `*`,
//! `?` and `!`, `@revoked`, `@cert-authority`), look up a host's key, and format new entries.
//!
//! Parsing and checking are pure ([`KnownHostsFile::parse`], [`KnownHosts::check`]); the only I/O
//! is [`KnownHosts::load`] (read files) and [`append_entry`] (accept-new). Editing a file in
//! place (add, replace, remove a host's key, keeping every other byte) is [`edit`]. Keys are compared
//! as their wire blobs, so this module does not depend on a key library; fingerprints are
//! OpenSSH's `SHA256:` form.

pub mod edit;

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use sha2::Digest;

/// The marker in front of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    None,
    /// `@revoked`: this key must never be accepted.
    Revoked,
    /// `@cert-authority`: a CA for host certificates (see [`KnownHosts::authorities_for`]);
    /// never vouches for a plain key.
    CertAuthority,
}

/// Which host names an entry applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatcher {
    /// `|1|base64(salt)|base64(hmac-sha1(salt, host))`.
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
    /// Comma-separated patterns; `!pattern` negates.
    Patterns(Vec<(bool, String)>),
}

/// One parsed known_hosts line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line number in its file.
    pub line: usize,
    pub marker: Marker,
    pub hosts: HostMatcher,
    pub key_type: String,
    /// The decoded key blob.
    pub blob: Vec<u8>,
}

/// All entries of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownHostsFile {
    pub path: PathBuf,
    pub entries: Vec<Entry>,
    /// Lines that could not be parsed (line number, reason); ignored like OpenSSH does.
    pub skipped: Vec<(usize, String)>,
}

/// A set of known_hosts files, searched in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownHosts {
    pub files: Vec<KnownHostsFile>,
}

/// A known key for a host, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownKey {
    pub path: PathBuf,
    pub line: usize,
    pub key_type: String,
    pub fingerprint: String,
}

impl std::fmt::Display for KnownKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} ({}:{})",
            self.key_type,
            self.fingerprint,
            self.path.display(),
            self.line
        )
    }
}

/// Outcome of looking up an offered host key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The key is listed for this host.
    Known(KnownKey),
    /// The key is marked `@revoked`.
    Revoked(KnownKey),
    /// The host is listed, but with other keys: possible man-in-the-middle.
    Changed(Vec<KnownKey>),
    /// The host is not listed at all.
    Unknown,
}

/// The name OpenSSH looks up for a host: `host` on port 22, else `[host]:port`.
pub fn host_key_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// OpenSSH's `SHA256:` fingerprint of a key blob.
pub fn fingerprint(blob: &[u8]) -> String {
    let digest = sha2::Sha256::digest(blob);
    format!("SHA256:{}", STANDARD_NO_PAD.encode(digest))
}

/// The line accept-new appends: `[host]:port keytype base64` (no hashing, like
/// `HashKnownHosts no`).
pub fn format_entry(host: &str, port: u16, key_type: &str, blob: &[u8]) -> String {
    format!(
        "{} {key_type} {}\n",
        host_key_name(host, port),
        STANDARD.encode(blob)
    )
}

/// [`format_entry`] for a looked-up name as is (`[host]:port` or a `HostKeyAlias`).
pub fn format_entry_for_name(name: &str, key_type: &str, blob: &[u8]) -> String {
    format!("{name} {key_type} {}\n", STANDARD.encode(blob))
}

impl KnownHostsFile {
    /// Parse the text of one file.
    pub fn parse(path: impl Into<PathBuf>, text: &str) -> Self {
        let mut entries = Vec::new();
        let mut skipped = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_line(line) {
                Ok(mut e) => {
                    e.line = i + 1;
                    entries.push(e);
                }
                Err(msg) => skipped.push((i + 1, msg)),
            }
        }
        KnownHostsFile {
            path: path.into(),
            entries,
            skipped,
        }
    }
}

pub(crate) fn parse_line(line: &str) -> Result<Entry, String> {
    let mut fields = line.split_whitespace();
    let mut first = fields.next().ok_or("empty line")?;
    let marker = match first {
        "@revoked" => Marker::Revoked,
        "@cert-authority" => Marker::CertAuthority,
        m if m.starts_with('@') => return Err(format!("unknown marker {m}")),
        _ => Marker::None,
    };
    if marker != Marker::None {
        first = fields.next().ok_or("marker without host")?;
    }
    let hosts = parse_hosts(first)?;
    let key_type = fields.next().ok_or("missing key type")?.to_string();
    let b64 = fields.next().ok_or("missing key")?;
    let blob = STANDARD
        .decode(b64)
        .map_err(|e| format!("bad base64 key: {e}"))?;
    // The blob starts with its own type name; a disagreement means a corrupt line.
    if let Some(name) = blob_type(&blob)
        && name != key_type
    {
        return Err(format!(
            "key type {key_type} does not match key blob ({name})"
        ));
    }
    Ok(Entry {
        line: 0,
        marker,
        hosts,
        key_type,
        blob,
    })
}

pub(crate) fn parse_hosts(field: &str) -> Result<HostMatcher, String> {
    if let Some(rest) = field.strip_prefix("|1|") {
        let (salt, hash) = rest.split_once('|').ok_or("bad hashed host")?;
        let salt = STANDARD
            .decode(salt)
            .map_err(|e| format!("bad hashed host salt: {e}"))?;
        let hash = STANDARD
            .decode(hash)
            .map_err(|e| format!("bad hashed host hash: {e}"))?;
        if hash.len() != 20 {
            return Err("bad hashed host: hash is not 20 bytes".into());
        }
        return Ok(HostMatcher::Hashed { salt, hash });
    }
    if field.starts_with('|') {
        return Err("unsupported hashed host format".into());
    }
    let pats = field
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| match p.strip_prefix('!') {
            Some(p) => (true, p.to_ascii_lowercase()),
            None => (false, p.to_ascii_lowercase()),
        })
        .collect::<Vec<_>>();
    if pats.is_empty() {
        return Err("no host patterns".into());
    }
    Ok(HostMatcher::Patterns(pats))
}

/// The type name at the start of an SSH key blob.
fn blob_type(blob: &[u8]) -> Option<&str> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    std::str::from_utf8(blob.get(4..4 + len)?).ok()
}

/// HMAC-SHA1, as `HashKnownHosts` uses it.
pub(crate) fn hmac_sha1(key: &[u8], msg: &[u8]) -> [u8; 20] {
    use sha1::Digest as _;
    const B: usize = 64;
    let mut k = [0u8; B];
    if key.len() > B {
        k[..20].copy_from_slice(&sha1::Sha1::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = sha1::Sha1::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let ih = inner.finalize();
    let mut outer = sha1::Sha1::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(ih);
    let mut out = [0u8; 20];
    out.copy_from_slice(&outer.finalize());
    out
}

/// OpenSSH `match_pattern`: `*` and `?` wildcards, case already folded.
fn wildcard(pat: &[u8], s: &[u8]) -> bool {
    match (pat.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => wildcard(&pat[1..], s) || (!s.is_empty() && wildcard(pat, &s[1..])),
        (Some(b'?'), Some(_)) => wildcard(&pat[1..], &s[1..]),
        (Some(p), Some(c)) if p == c => wildcard(&pat[1..], &s[1..]),
        _ => false,
    }
}

impl HostMatcher {
    /// Does this entry apply to `name` (as produced by [`host_key_name`])?
    pub fn matches(&self, name: &str) -> bool {
        match self {
            HostMatcher::Hashed { salt, hash } => hmac_sha1(salt, name.as_bytes())[..] == hash[..],
            HostMatcher::Patterns(pats) => {
                let name = name.to_ascii_lowercase();
                let mut hit = false;
                for (neg, p) in pats {
                    if wildcard(p.as_bytes(), name.as_bytes()) {
                        if *neg {
                            return false;
                        }
                        hit = true;
                    }
                }
                hit
            }
        }
    }
}

impl KnownHosts {
    /// Read the given files; a missing file is treated as empty (as OpenSSH does).
    pub fn load(paths: &[PathBuf]) -> Result<Self, String> {
        let mut files = Vec::new();
        for p in paths {
            match std::fs::read_to_string(p) {
                Ok(text) => files.push(KnownHostsFile::parse(p, &text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    files.push(KnownHostsFile::parse(p, ""))
                }
                Err(e) => return Err(format!("{}: {e}", p.display())),
            }
        }
        Ok(KnownHosts { files })
    }

    /// Key types listed for a host (to prefer them in the handshake, as OpenSSH does).
    pub fn key_types_for(&self, host: &str, port: u16) -> Vec<String> {
        self.key_types_for_name(&host_key_name(host, port))
    }

    /// [`Self::key_types_for`] by the looked-up name (`[host]:port` or a `HostKeyAlias`).
    pub fn key_types_for_name(&self, name: &str) -> Vec<String> {
        let name = name.to_string();
        let mut out: Vec<String> = Vec::new();
        for f in &self.files {
            for e in &f.entries {
                if e.marker == Marker::None && e.hosts.matches(&name) && !out.contains(&e.key_type)
                {
                    out.push(e.key_type.clone());
                }
            }
        }
        out
    }

    /// `@cert-authority` entries whose host patterns match `name`: (where, CA key blob).
    pub fn authorities_for(&self, name: &str) -> Vec<(KnownKey, &[u8])> {
        self.marked_for(name, Marker::CertAuthority)
    }

    /// The `@revoked` entry for `blob` that applies to `name`, if any (for plain keys, the
    /// key inside a certificate and CA keys alike).
    pub fn revoked(&self, name: &str, blob: &[u8]) -> Option<KnownKey> {
        self.marked_for(name, Marker::Revoked)
            .into_iter()
            .find(|(_, b)| *b == blob)
            .map(|(k, _)| k)
    }

    fn marked_for(&self, name: &str, marker: Marker) -> Vec<(KnownKey, &[u8])> {
        let mut out = Vec::new();
        for f in &self.files {
            for e in &f.entries {
                if e.marker == marker && e.hosts.matches(name) {
                    out.push((
                        KnownKey {
                            path: f.path.clone(),
                            line: e.line,
                            key_type: e.key_type.clone(),
                            fingerprint: fingerprint(&e.blob),
                        },
                        &e.blob[..],
                    ));
                }
            }
        }
        out
    }

    /// Check an offered key (type name and wire blob) for `host:port`.
    pub fn check(&self, host: &str, port: u16, blob: &[u8]) -> Verdict {
        self.check_name(&host_key_name(host, port), blob)
    }

    /// [`Self::check`] by the looked-up name (`[host]:port` or a `HostKeyAlias`).
    pub fn check_name(&self, name: &str, blob: &[u8]) -> Verdict {
        let name = name.to_string();
        let mut others = Vec::new();
        let mut known = None;
        for f in &self.files {
            for e in &f.entries {
                if !e.hosts.matches(&name) {
                    continue;
                }
                let kk = KnownKey {
                    path: f.path.clone(),
                    line: e.line,
                    key_type: e.key_type.clone(),
                    fingerprint: fingerprint(&e.blob),
                };
                match e.marker {
                    Marker::Revoked if e.blob == blob => return Verdict::Revoked(kk),
                    Marker::Revoked | Marker::CertAuthority => {}
                    Marker::None if e.blob == blob => {
                        if known.is_none() {
                            known = Some(kk);
                        }
                    }
                    Marker::None => others.push(kk),
                }
            }
        }
        match known {
            Some(k) => Verdict::Known(k),
            None if others.is_empty() => Verdict::Unknown,
            None => Verdict::Changed(others),
        }
    }
}

/// Append one entry to `path` (accept-new), creating the file 0600 (and its directory 0700)
/// if needed. One `write` with `O_APPEND`, so concurrent appends do not interleave.
pub fn append_entry(path: &Path, line: &str) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .read(true)
        .mode(0o600)
        .open(path)?;
    // Make sure we start on a fresh line.
    let len = f.metadata()?.len();
    let mut buf = String::new();
    if len > 0 {
        use std::io::{Read, Seek, SeekFrom};
        let mut last = [0u8; 1];
        f.seek(SeekFrom::Start(len - 1))?;
        f.read_exact(&mut last)?;
        if last[0] != b'\n' {
            buf.push('\n');
        }
    }
    buf.push_str(line);
    f.write_all(buf.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Generated with ssh-keygen (-t ed25519, then `ssh-keygen -H` for the hashed lines).
    const KEY_B64: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIPNKk17//p3pZqOsxCs5BBVAO1iSeA/XgCCnF9t1qFTr";
    const KEY_FP: &str = "SHA256:3FYwfnHiL4HnDgc9gWn5fGIhQizeeLJifxww5/YsgFE";
    // hashed "[127.0.0.1]:2222" and "example.com"
    const HASHED_PORT: &str = "|1|vFVkxwvJeogr3wbsMpZEzHlHLHY=|Nbr1v4QKFFyV8emgLBc02Ly21lw=";
    const HASHED_NAME: &str = "|1|72kzPk7M8QCPiLqd8pNtGmfop3w=|n/kbT5KkpuxnuAyntwQDn+AB/nw=";
    const OTHER_B64: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";

    fn blob(b64: &str) -> Vec<u8> {
        STANDARD.decode(b64).unwrap()
    }

    fn kh(text: &str) -> KnownHosts {
        KnownHosts {
            files: vec![KnownHostsFile::parse("/kh", text)],
        }
    }

    #[test]
    fn fingerprint_matches_ssh_keygen() {
        assert_eq!(fingerprint(&blob(KEY_B64)), KEY_FP);
    }

    #[test]
    fn host_names() {
        assert_eq!(host_key_name("a.example", 22), "a.example");
        assert_eq!(host_key_name("127.0.0.1", 2222), "[127.0.0.1]:2222");
    }

    #[test]
    fn plain_entry_with_port() {
        let k = kh(&format!("[127.0.0.1]:2222 ssh-ed25519 {KEY_B64} comment\n"));
        assert!(matches!(
            k.check("127.0.0.1", 2222, &blob(KEY_B64)),
            Verdict::Known(KnownKey { line: 1, .. })
        ));
        // Same address, other port: unknown.
        assert_eq!(k.check("127.0.0.1", 22, &blob(KEY_B64)), Verdict::Unknown);
        assert_eq!(k.check("127.0.0.1", 2223, &blob(KEY_B64)), Verdict::Unknown);
    }

    #[test]
    fn hashed_entries() {
        let k = kh(&format!(
            "{HASHED_PORT} ssh-ed25519 {KEY_B64}\n{HASHED_NAME} ssh-ed25519 {KEY_B64}\n"
        ));
        assert!(matches!(
            k.check("127.0.0.1", 2222, &blob(KEY_B64)),
            Verdict::Known(KnownKey { line: 1, .. })
        ));
        assert!(matches!(
            k.check("example.com", 22, &blob(KEY_B64)),
            Verdict::Known(KnownKey { line: 2, .. })
        ));
        assert_eq!(k.check("example.org", 22, &blob(KEY_B64)), Verdict::Unknown);
    }

    #[test]
    fn changed_key_reports_expected_fingerprint_and_line() {
        let k = kh(&format!(
            "# comment\n\n{HASHED_PORT} ssh-ed25519 {KEY_B64}\n"
        ));
        match k.check("127.0.0.1", 2222, &blob(OTHER_B64)) {
            Verdict::Changed(v) => {
                assert_eq!(v.len(), 1);
                assert_eq!(v[0].line, 3);
                assert_eq!(v[0].fingerprint, KEY_FP);
                assert_eq!(v[0].path, PathBuf::from("/kh"));
                assert!(v[0].to_string().contains("/kh:3"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn patterns_wildcards_and_negation() {
        let k = kh(&format!(
            "*.example.com,!bad.example.com,host?,[10.0.0.*]:2200 ssh-ed25519 {KEY_B64}\n"
        ));
        let b = blob(KEY_B64);
        assert!(matches!(
            k.check("a.example.com", 22, &b),
            Verdict::Known(_)
        ));
        assert!(matches!(
            k.check("A.Example.COM", 22, &b),
            Verdict::Known(_)
        ));
        assert_eq!(k.check("bad.example.com", 22, &b), Verdict::Unknown);
        assert!(matches!(k.check("host7", 22, &b), Verdict::Known(_)));
        assert_eq!(k.check("host77", 22, &b), Verdict::Unknown);
        assert!(matches!(k.check("10.0.0.5", 2200, &b), Verdict::Known(_)));
        assert_eq!(k.check("10.0.0.5", 22, &b), Verdict::Unknown);
    }

    #[test]
    fn revoked_and_cert_authority_are_not_misparsed() {
        let k = kh(&format!(
            "@cert-authority *.example.com ssh-ed25519 {OTHER_B64}\n\
             @revoked * ssh-ed25519 {KEY_B64}\n\
             a.example.com ssh-ed25519 {KEY_B64}\n"
        ));
        assert_eq!(k.files[0].entries.len(), 3);
        assert_eq!(k.files[0].entries[0].marker, Marker::CertAuthority);
        // Revoked wins even though a plain entry lists the key.
        assert!(matches!(
            k.check("a.example.com", 22, &blob(KEY_B64)),
            Verdict::Revoked(KnownKey { line: 2, .. })
        ));
        // A CA line alone does not make the host "known" nor "changed".
        assert_eq!(
            k.check("b.example.com", 22, &blob(OTHER_B64)),
            Verdict::Unknown
        );
    }

    #[test]
    fn bad_lines_are_skipped_with_reason() {
        let f = KnownHostsFile::parse(
            "/kh",
            &format!(
                "garbage\nh ssh-ed25519 !!!\nh ssh-rsa {KEY_B64}\n@weird h ssh-ed25519 {KEY_B64}\nh ssh-ed25519 {KEY_B64}\n"
            ),
        );
        assert_eq!(f.entries.len(), 1);
        assert_eq!(f.entries[0].line, 5);
        assert_eq!(
            f.skipped.iter().map(|s| s.0).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
    }

    #[test]
    fn multiple_files_and_key_types() {
        let k = KnownHosts {
            files: vec![
                KnownHostsFile::parse("/a", &format!("h ssh-ed25519 {OTHER_B64}\n")),
                KnownHostsFile::parse("/b", &format!("h ssh-ed25519 {KEY_B64}\n")),
            ],
        };
        assert!(matches!(
            k.check("h", 22, &blob(KEY_B64)),
            Verdict::Known(KnownKey { ref path, .. }) if path == Path::new("/b")
        ));
        assert_eq!(k.key_types_for("h", 22), vec!["ssh-ed25519".to_string()]);
        assert!(k.key_types_for("x", 22).is_empty());
    }

    #[test]
    fn format_and_reparse_round_trip() {
        let line = format_entry("127.0.0.1", 2201, "ssh-ed25519", &blob(KEY_B64));
        assert_eq!(line, format!("[127.0.0.1]:2201 ssh-ed25519 {KEY_B64}\n"));
        let k = kh(&line);
        assert!(matches!(
            k.check("127.0.0.1", 2201, &blob(KEY_B64)),
            Verdict::Known(_)
        ));
    }

    #[test]
    fn hmac_sha1_rfc2202() {
        // RFC 2202 test case 2.
        let mac = hmac_sha1(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            crate::target::hex(&mac),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }

    #[test]
    fn append_adds_newline_when_missing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/known_hosts");
        append_entry(&p, "a ssh-ed25519 X\n").unwrap();
        std::fs::write(&p, "a ssh-ed25519 X").unwrap();
        append_entry(&p, "b ssh-ed25519 Y\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "a ssh-ed25519 X\nb ssh-ed25519 Y\n"
        );
    }
}
