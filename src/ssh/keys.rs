//! Private keys for authentication: load (OpenSSH, PEM/PKCS#1, SEC1, PKCS#8), decrypt with a
//! passphrase from an environment variable or a TTY prompt, and cache per process so a run
//! over 500 hosts decrypts each key once.
//!
//! The cache is keyed by the file's path *and* content digest, so a key replaced on disk
//! (rotation's `--install`) is re-read. Passphrases are never logged or put in messages.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use russh::keys::PrivateKey;
use sha2::Digest;

use super::SshError;

type Slot = Arc<tokio::sync::OnceCell<Result<Arc<PrivateKey>, SshError>>>;

/// Loads and caches private keys.
#[derive(Default)]
pub struct KeyStore {
    slots: Mutex<HashMap<(PathBuf, [u8; 32]), Slot>>,
    passphrase_env: Option<String>,
    interactive: bool,
}

/// Serialises TTY prompts across hosts.
static PROMPT: Mutex<()> = Mutex::new(());

impl KeyStore {
    pub fn new(passphrase_env: Option<String>, interactive: bool) -> Self {
        KeyStore {
            slots: Mutex::default(),
            passphrase_env,
            interactive,
        }
    }

    /// Load `path` (decrypting it if needed), once per content.
    pub async fn load(&self, path: &Path) -> Result<Arc<PrivateKey>, SshError> {
        let text = tokio::fs::read_to_string(path)
            .await
            .map_err(|e| key_err(path, e.to_string()))?;
        let digest: [u8; 32] = sha2::Sha256::digest(text.as_bytes()).into();
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots
                .entry((path.to_path_buf(), digest))
                .or_default()
                .clone()
        };
        let path = path.to_path_buf();
        let env = self.passphrase_env.clone();
        let interactive = self.interactive;
        slot.get_or_init(|| async move {
            tokio::task::spawn_blocking(move || decode(&path, &text, env.as_deref(), interactive))
                .await
                .map_err(|e| SshError::Protocol(format!("key loader panicked: {e}")))?
        })
        .await
        .clone()
    }
}

fn key_err(path: &Path, msg: impl Into<String>) -> SshError {
    SshError::Key {
        path: path.display().to_string(),
        msg: msg.into(),
    }
}

/// Decode a private key file's text; ask for a passphrase only if it is encrypted.
pub fn decode(
    path: &Path,
    text: &str,
    passphrase_env: Option<&str>,
    interactive: bool,
) -> Result<Arc<PrivateKey>, SshError> {
    match russh::keys::decode_secret_key(text, None) {
        Ok(k) => return Ok(Arc::new(k)),
        Err(russh::keys::Error::KeyIsEncrypted) => {}
        // PKCS#8 / PKCS#5 encrypted PEM report other errors without a password.
        Err(e) if !text.contains("ENCRYPTED") => return Err(key_err(path, e.to_string())),
        Err(_) => {}
    }
    let pass = if let Some(var) = passphrase_env {
        std::env::var(var).map_err(|_| {
            key_err(
                path,
                format!("key is encrypted and environment variable {var} is not set"),
            )
        })?
    } else if interactive {
        prompt(&format!("Enter passphrase for key '{}': ", path.display()))
            .map_err(|e| key_err(path, format!("cannot read passphrase: {e}")))?
    } else {
        return Err(key_err(
            path,
            "key is encrypted; give its passphrase with --passphrase-env VAR",
        ));
    };
    russh::keys::decode_secret_key(text, Some(&pass))
        .map(Arc::new)
        .map_err(|e| key_err(path, format!("cannot decrypt key (wrong passphrase?): {e}")))
}

/// Read a line from /dev/tty with echo off (prompts of concurrent callers are serialised).
pub fn prompt(msg: &str) -> std::io::Result<String> {
    use std::io::{BufRead, Write};
    use std::os::fd::AsRawFd;
    let _guard = PROMPT.lock().unwrap_or_else(|p| p.into_inner());
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    let fd = tty.as_raw_fd();
    // SAFETY: termios calls on a valid, open fd with a zeroed out-parameter.
    let mut old: libc::termios = unsafe { std::mem::zeroed() };
    let have_termios = unsafe { libc::tcgetattr(fd, &mut old) } == 0;
    if have_termios {
        let mut new = old;
        new.c_lflag &= !libc::ECHO;
        new.c_lflag |= libc::ECHONL;
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &new) };
    }
    let mut w = &tty;
    let res = w.write_all(msg.as_bytes()).and_then(|_| {
        let mut line = String::new();
        std::io::BufReader::new(&tty).read_line(&mut line)?;
        Ok(line.trim_end_matches(['\n', '\r']).to_string())
    });
    if have_termios {
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &old) };
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_key_without_passphrase_names_the_flag() {
        // An ed25519 key encrypted with "test" (from russh's own test vectors).
        const KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jYmMAAAAGYmNyeXB0AAAAGAAAABDLGyfA39
J2FcJygtYqi5ISAAAAEAAAAAEAAAAzAAAAC3NzaC1lZDI1NTE5AAAAIN+Wjn4+4Fcvl2Jl
KpggT+wCRxpSvtqqpVrQrKN1/A22AAAAkOHDLnYZvYS6H9Q3S3Nk4ri3R2jAZlQlBbUos5
FkHpYgNw65KCWCTXtP7ye2czMC3zjn2r98pJLobsLYQgRiHIv/CUdAdsqbvMPECB+wl/UQ
e+JpiSq66Z6GIt0801skPh20jxOO3F52SoX1IeO5D5PXfZrfSZlw6S8c7bwyp2FHxDewRx
7/wNsnDM0T7nLv/Q==
-----END OPENSSH PRIVATE KEY-----";
        let err = decode(Path::new("/k"), KEY, None, false).unwrap_err();
        assert!(err.to_string().contains("--passphrase-env"), "{err}");
        let var = "SSHFLEET_TEST_UNSET_PASSPHRASE_VAR";
        let err = decode(Path::new("/k"), KEY, Some(var), false).unwrap_err();
        assert!(err.to_string().contains(var), "{err}");
        assert!(decode(Path::new("/k"), "not a key", None, false).is_err());
    }
}
