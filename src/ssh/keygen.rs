//! Controller-side key pairs for `keys rotate`: generate a new pair (ed25519 by default, rsa
//! on request), write it the way `ssh-keygen` does (private key in OpenSSH format, mode 0600,
//! optionally encrypted with bcrypt-pbkdf + aes256-ctr; public key in `NAME.pub`), load an
//! existing pair, and install a pair into the place the connection uses, keeping the previous
//! pair as a timestamped backup.
//!
//! Every file is written atomically (temp file in the same directory, fsync, rename) and never
//! over an existing file unless installing (which backs the old file up first).

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use russh::keys::ssh_key::private::{KeypairData, RsaKeypair};
use russh::keys::ssh_key::{self, LineEnding};
use russh::keys::{Algorithm, HashAlg, PrivateKey, PublicKey};

/// Smallest and largest RSA modulus we generate.
pub const RSA_MIN_BITS: usize = 2048;
pub const RSA_MAX_BITS: usize = 16384;
/// `ssh-keygen -t rsa` default.
pub const RSA_DEFAULT_BITS: usize = 3072;

/// A key pair problem, naming the file involved.
#[derive(Debug, thiserror::Error)]
pub enum KeygenError {
    #[error("{path}: {msg}")]
    File { path: PathBuf, msg: String },
    #[error("{path}: already exists; refusing to overwrite a key (drop --generate to use it)")]
    Exists { path: PathBuf },
    #[error("{path}: cannot read private key: {msg}")]
    Load { path: PathBuf, msg: String },
    #[error("key generation failed: {0}")]
    Generate(String),
    #[error("rsa key size {0} out of range ({RSA_MIN_BITS}..={RSA_MAX_BITS})")]
    Bits(usize),
    #[error("environment variable {0} is not set (passphrase for the new key)")]
    PassphraseEnv(String),
}

type KResult<T> = Result<T, KeygenError>;

fn file_err(path: &Path, msg: impl fmt::Display) -> KeygenError {
    KeygenError::File {
        path: path.to_path_buf(),
        msg: msg.to_string(),
    }
}

/// Which kind of key to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Ed25519,
    Rsa { bits: usize },
}

impl KeyType {
    /// The type for `--type NAME [--bits N]`.
    pub fn from_name(name: &str, bits: Option<usize>) -> Result<KeyType, String> {
        match name {
            "ed25519" => match bits {
                None => Ok(KeyType::Ed25519),
                Some(_) => Err("--bits applies only to --type rsa".into()),
            },
            "rsa" => {
                let bits = bits.unwrap_or(RSA_DEFAULT_BITS);
                if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
                    return Err(KeygenError::Bits(bits).to_string());
                }
                Ok(KeyType::Rsa { bits })
            }
            other => Err(format!(
                "unsupported key type {other:?} (expected ed25519 or rsa)"
            )),
        }
    }
}

/// A passphrase held in memory: never printed, wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Secret(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Read from an environment variable; an unset variable is an error.
    pub fn from_env(var: &str) -> KResult<Secret> {
        std::env::var(var)
            .map(Secret)
            .map_err(|_| KeygenError::PassphraseEnv(var.to_string()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // SAFETY: overwriting with zero bytes keeps the string valid UTF-8.
        unsafe { self.0.as_bytes_mut() }.fill(0);
    }
}

/// What `--generate` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateSpec {
    pub key_type: KeyType,
    /// Comment stored in the key and its `.pub` line.
    pub comment: String,
}

/// A default key comment: `sshfleet-rotated-YYYY-MM-DD`.
pub fn default_comment(unix_secs: i64) -> String {
    let (y, m, d, ..) = crate::target::civil_from_unix(unix_secs);
    format!("sshfleet-rotated-{y:04}-{m:02}-{d:02}")
}

/// Generate a fresh key pair in memory.
pub fn generate(spec: &GenerateSpec) -> KResult<PrivateKey> {
    let mut rng = rand::rng();
    let mut key = match spec.key_type {
        KeyType::Ed25519 => PrivateKey::random(&mut rng, Algorithm::Ed25519)
            .map_err(|e| KeygenError::Generate(e.to_string()))?,
        KeyType::Rsa { bits } => {
            if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
                return Err(KeygenError::Bits(bits));
            }
            let pair = RsaKeypair::random(&mut rng, bits)
                .map_err(|e| KeygenError::Generate(e.to_string()))?;
            PrivateKey::new(KeypairData::from(pair), "")
                .map_err(|e| KeygenError::Generate(e.to_string()))?
        }
    };
    key.set_comment(spec.comment.as_str());
    Ok(key)
}

/// The path of the public half: `PATH.pub`.
pub fn pub_path(private: &Path) -> PathBuf {
    let mut s = private.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

/// The `.pub` line of a key: `TYPE BASE64 COMMENT` (no trailing space without a comment).
pub fn public_line(key: &PublicKey) -> KResult<String> {
    key.to_openssh()
        .map(|s| s.trim_end().to_string())
        .map_err(|e| KeygenError::Generate(e.to_string()))
}

/// SHA256 fingerprint as `ssh-keygen -l` prints it (`SHA256:...`).
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Write a generated pair to `path` (0600) and `path.pub` (0644); refuses existing files.
/// With a passphrase the private key is encrypted as `ssh-keygen -N` does.
pub fn write_new_pair(path: &Path, key: &PrivateKey, passphrase: Option<&Secret>) -> KResult<()> {
    let pubp = pub_path(path);
    for p in [path, pubp.as_path()] {
        if fs::symlink_metadata(p).is_ok() {
            return Err(KeygenError::Exists {
                path: p.to_path_buf(),
            });
        }
    }
    let private_text = encode_private(key, passphrase)?;
    let public_text = format!("{}\n", public_line(key.public_key())?);
    write_file_atomic(path, private_text.as_bytes(), 0o600, false)?;
    write_file_atomic(&pubp, public_text.as_bytes(), 0o644, false)?;
    Ok(())
}

fn encode_private(key: &PrivateKey, passphrase: Option<&Secret>) -> KResult<String> {
    let encoded = match passphrase {
        Some(p) if !p.expose().is_empty() => key
            .encrypt(&mut rand::rng(), p.expose().as_bytes())
            .and_then(|k| k.to_openssh(LineEnding::LF)),
        _ => key.to_openssh(LineEnding::LF),
    };
    encoded
        .map(|z| z.to_string())
        .map_err(|e| KeygenError::Generate(e.to_string()))
}

/// Load a private key (decrypting it with `passphrase` if it is encrypted).
pub fn load_private(path: &Path, passphrase: Option<&Secret>) -> KResult<PrivateKey> {
    let text = fs::read_to_string(path).map_err(|e| file_err(path, e))?;
    let key = PrivateKey::from_openssh(&text).map_err(|e| KeygenError::Load {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    if !key.is_encrypted() {
        return Ok(key);
    }
    let Some(p) = passphrase else {
        return Err(KeygenError::Load {
            path: path.to_path_buf(),
            msg: "the key is encrypted; give its passphrase with --new-passphrase-env VAR".into(),
        });
    };
    key.decrypt(p.expose().as_bytes())
        .map_err(|e| KeygenError::Load {
            path: path.to_path_buf(),
            msg: match e {
                ssh_key::Error::Crypto => "wrong passphrase".into(),
                other => other.to_string(),
            },
        })
}

/// Write `bytes` to `dest` atomically: temp file (mode set at creation) in the same
/// directory, fsync, rename, fsync the directory. With `overwrite = false` an existing
/// destination is an error (checked with a hard link, so no race replaces it).
pub fn write_file_atomic(dest: &Path, bytes: &[u8], mode: u32, overwrite: bool) -> KResult<()> {
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = dest
        .file_name()
        .ok_or_else(|| file_err(dest, "not a file path"))?
        .to_string_lossy()
        .into_owned();
    // Owned by this process (the temp-file rule of `crate::target::temp`).
    let owner = crate::target::temp::Owner::current();
    let rand = u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0),
    );
    let tmp = dir.join(crate::target::temp::temp_name(&name, owner.as_ref(), rand));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| file_err(&tmp, e))?;
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| file_err(&tmp, e))?;
        f.write_all(bytes).map_err(|e| file_err(&tmp, e))?;
        f.sync_all().map_err(|e| file_err(&tmp, e))?;
        if overwrite {
            fs::rename(&tmp, dest).map_err(|e| file_err(dest, e))?;
        } else {
            fs::hard_link(&tmp, dest).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    KeygenError::Exists {
                        path: dest.to_path_buf(),
                    }
                } else {
                    file_err(dest, e)
                }
            })?;
            let _ = fs::remove_file(&tmp);
        }
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// What [`install`] did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Installed {
    pub private_key: PathBuf,
    pub public_key: PathBuf,
    /// Backups of the previous pair (only those that existed).
    pub backups: Vec<PathBuf>,
}

/// Timestamped backup name: `PATH.YYYY-MM-DD@HH:MM:SS~` (UTC; Ansible's backup style), with
/// a counter appended if that exists already.
pub fn backup_path(path: &Path, unix_secs: i64) -> PathBuf {
    let (y, mo, d, h, mi, s) = crate::target::civil_from_unix(unix_secs);
    let base = format!(
        "{}.{y:04}-{mo:02}-{d:02}@{h:02}:{mi:02}:{s:02}~",
        path.display()
    );
    let mut candidate = PathBuf::from(&base);
    let mut n = 1;
    while fs::symlink_metadata(&candidate).is_ok() {
        candidate = PathBuf::from(format!("{base}{n}"));
        n += 1;
    }
    candidate
}

/// Move the pair at `new` (private + `.pub`) to `dest` (+ `.pub`). The previous pair at
/// `dest`, if any, is first copied to timestamped backups (same mode); then each new file
/// replaces its destination atomically, and the source files are removed. Resumable: run again
/// after an interruption it backs up nothing already replaced and finishes the move.
pub fn install(new: &Path, dest: &Path, unix_secs: i64) -> KResult<Installed> {
    let new_pub = pub_path(new);
    let dest_pub = pub_path(dest);
    let private_bytes = fs::read(new).map_err(|e| file_err(new, e))?;
    let public_bytes = fs::read(&new_pub).map_err(|e| file_err(&new_pub, e))?;
    if fs::canonicalize(new).ok() == fs::canonicalize(dest).ok() && fs::metadata(dest).is_ok() {
        return Err(file_err(dest, "the new key is already installed here"));
    }
    // Resumable: a run interrupted after writing the private key (the backups are taken
    // before it) has nothing more to back up; files already holding the new bytes stay.
    let same = |p: &Path, bytes: &[u8]| fs::read(p).is_ok_and(|b| b == bytes);
    let private_done = same(dest, &private_bytes);
    let mut backups = Vec::new();
    for (old, default_mode) in [(dest, 0o600), (dest_pub.as_path(), 0o644)] {
        if private_done {
            break;
        }
        match fs::read(old) {
            Ok(bytes) => {
                let mode = fs::metadata(old)
                    .map(|m| m.permissions().mode() & 0o7777)
                    .unwrap_or(default_mode);
                let b = backup_path(old, unix_secs);
                write_file_atomic(&b, &bytes, mode, false)?;
                backups.push(b);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(file_err(old, e)),
        }
    }
    if !private_done {
        write_file_atomic(dest, &private_bytes, 0o600, true)?;
    }
    if !same(&dest_pub, &public_bytes) {
        write_file_atomic(&dest_pub, &public_bytes, 0o644, true)?;
    }
    for p in [new, new_pub.as_path()] {
        fs::remove_file(p).map_err(|e| file_err(p, e))?;
    }
    Ok(Installed {
        private_key: dest.to_path_buf(),
        public_key: dest_pub,
        backups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn ssh_keygen_available() -> bool {
        Command::new("ssh-keygen").arg("-?").output().is_ok()
    }

    fn spec(t: KeyType) -> GenerateSpec {
        GenerateSpec {
            key_type: t,
            comment: "rotated@test".into(),
        }
    }

    #[test]
    fn key_type_flags() {
        assert_eq!(KeyType::from_name("ed25519", None), Ok(KeyType::Ed25519));
        assert_eq!(
            KeyType::from_name("rsa", None),
            Ok(KeyType::Rsa {
                bits: RSA_DEFAULT_BITS
            })
        );
        assert_eq!(
            KeyType::from_name("rsa", Some(4096)),
            Ok(KeyType::Rsa { bits: 4096 })
        );
        assert!(KeyType::from_name("rsa", Some(1024)).is_err());
        assert!(KeyType::from_name("ed25519", Some(4096)).is_err());
        assert!(KeyType::from_name("dsa", None).is_err());
    }

    #[test]
    fn secret_is_redacted() {
        let s = Secret::new("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn generated_ed25519_is_readable_by_ssh_keygen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id_new");
        let key = generate(&spec(KeyType::Ed25519)).unwrap();
        write_new_pair(&path, &key, None).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let pub_text = fs::read_to_string(pub_path(&path)).unwrap();
        assert!(pub_text.starts_with("ssh-ed25519 "), "{pub_text}");
        assert!(pub_text.ends_with(" rotated@test\n"), "{pub_text:?}");
        assert!(ssh_keygen_available(), "ssh-keygen is needed for this test");
        let out = Command::new("ssh-keygen")
            .arg("-y")
            .arg("-f")
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{:?}", out);
        let derived = String::from_utf8(out.stdout).unwrap();
        // ssh-keygen -y prints "TYPE BLOB COMMENT"; the blob must equal the .pub file's.
        let blob = |s: &str| s.split_whitespace().nth(1).unwrap().to_string();
        assert_eq!(blob(&derived), blob(&pub_text));
        // The fingerprint we compute equals ssh-keygen -lf.
        let out = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(pub_path(&path))
            .output()
            .unwrap();
        let listed = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            listed.split_whitespace().nth(1).unwrap(),
            fingerprint(key.public_key())
        );
        // Loading it back gives the same key.
        let loaded = load_private(&path, None).unwrap();
        assert_eq!(loaded.public_key().key_data(), key.public_key().key_data());
        // A second generate into the same path is refused and leaves the file alone.
        let before = fs::read(&path).unwrap();
        let other = generate(&spec(KeyType::Ed25519)).unwrap();
        assert!(matches!(
            write_new_pair(&path, &other, None),
            Err(KeygenError::Exists { .. })
        ));
        assert_eq!(fs::read(&path).unwrap(), before);
    }

    #[test]
    fn encrypted_key_needs_its_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id_enc");
        let key = generate(&spec(KeyType::Ed25519)).unwrap();
        let pass = Secret::new("correct horse".into());
        write_new_pair(&path, &key, Some(&pass)).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
        // ssh-keygen refuses the wrong passphrase and accepts the right one.
        let run = |p: &str| {
            Command::new("ssh-keygen")
                .args(["-y", "-P", p, "-f"])
                .arg(&path)
                .output()
                .unwrap()
        };
        assert!(!run("wrong").status.success());
        let ok = run("correct horse");
        assert!(ok.status.success(), "{ok:?}");
        assert!(matches!(
            load_private(&path, None),
            Err(KeygenError::Load { .. })
        ));
        assert!(load_private(&path, Some(&Secret::new("nope".into()))).is_err());
        let loaded = load_private(&path, Some(&pass)).unwrap();
        assert_eq!(loaded.public_key().key_data(), key.public_key().key_data());
    }

    #[test]
    fn rsa_key_on_request() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id_rsa_new");
        let key = generate(&spec(KeyType::Rsa { bits: 2048 })).unwrap();
        write_new_pair(&path, &key, None).unwrap();
        let out = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(&path)
            .output()
            .unwrap();
        let listed = String::from_utf8(out.stdout).unwrap();
        assert!(listed.starts_with("2048 SHA256:"), "{listed}");
        assert!(listed.trim_end().ends_with("(RSA)"), "{listed}");
    }

    #[test]
    fn install_moves_pair_and_keeps_backup() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("id_ed25519");
        let new = dir.path().join("id_new");
        let old_key = generate(&spec(KeyType::Ed25519)).unwrap();
        write_new_pair(&dest, &old_key, None).unwrap();
        let old_private = fs::read(&dest).unwrap();
        let new_key = generate(&spec(KeyType::Ed25519)).unwrap();
        write_new_pair(&new, &new_key, None).unwrap();
        let new_private = fs::read(&new).unwrap();
        let got = install(&new, &dest, 1_700_000_000).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), new_private);
        assert_eq!(
            fs::metadata(&dest).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!new.exists() && !pub_path(&new).exists());
        assert_eq!(got.backups.len(), 2);
        assert!(
            got.backups[0]
                .to_string_lossy()
                .ends_with("id_ed25519.2023-11-14@22:13:20~")
        );
        assert_eq!(fs::read(&got.backups[0]).unwrap(), old_private);
        assert_eq!(
            fs::metadata(&got.backups[0]).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // A second backup in the same second gets a distinct name.
        assert_ne!(backup_path(&dest, 1_700_000_000), got.backups[0]);
    }

    #[test]
    fn install_interrupted_after_the_private_key_finishes_without_a_second_backup() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("id_ed25519");
        let new = dir.path().join("id_new");
        write_new_pair(&dest, &generate(&spec(KeyType::Ed25519)).unwrap(), None).unwrap();
        let old_pub = fs::read(pub_path(&dest)).unwrap();
        write_new_pair(&new, &generate(&spec(KeyType::Ed25519)).unwrap(), None).unwrap();
        // The first run backed up the old pair and wrote the private key, then died.
        let b = backup_path(&dest, 1_700_000_000);
        write_file_atomic(&b, &fs::read(&dest).unwrap(), 0o600, false).unwrap();
        fs::copy(&new, &dest).unwrap();
        let got = install(&new, &dest, 1_700_000_001).unwrap();
        assert!(got.backups.is_empty(), "{:?}", got.backups);
        assert_ne!(fs::read(pub_path(&dest)).unwrap(), old_pub);
        assert!(!new.exists() && !pub_path(&new).exists());
    }
}
