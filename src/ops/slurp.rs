//! slurp and fetch: read files from one host.
//!
//! [`slurp`] returns a file's bytes with its sha256, size, mode and owner — as Ansible's
//! `slurp` module result (`content` base64, `encoding: base64`, `source`) plus those
//! attributes. [`fetch`] streams a file into `DIR/HOST/PATH` on the controller like Ansible's
//! `fetch` (atomic write, skipped when the local copy already has the same sha256, verified
//! against the sha256 the host computed); the bytes never sit in memory whole.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::{Value, json};

use crate::files::checksum::{Sha256Digest, sha256, to_hex};
use crate::files::mode::mode_string;
use crate::files::spec;
use crate::ops::replicate::fanout;
use crate::progress::ProgressHandle;
use crate::target::local::LocalTarget;
use crate::target::{Body, Expect, FileKind, Target, TargetError, WriteSpec, id_name};

/// Default size limit for [`slurp`] (content is held in memory and base64-encoded).
pub const SLURP_LIMIT: u64 = 64 * 1024 * 1024;

/// One file read by [`slurp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slurped {
    pub source: String,
    pub content: Vec<u8>,
    pub sha256: Sha256Digest,
    pub size: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub owner: Option<String>,
    pub group: Option<String>,
}

impl Slurped {
    /// The Ansible slurp result for this file, with sha256/size/mode/owner added.
    pub fn to_ansible(&self) -> Value {
        json!({
            "changed": false,
            "content": base64::engine::general_purpose::STANDARD.encode(&self.content),
            "encoding": "base64",
            "source": self.source,
            "sha256": to_hex(&self.sha256),
            "size": self.size,
            "mode": mode_string(self.mode),
            "uid": self.uid,
            "gid": self.gid,
            "owner": self.owner,
            "group": self.group,
        })
    }
}

/// Read `path` (following a symlink) from `t`; fails for directories, missing files and
/// files larger than `limit`.
pub async fn slurp<T: Target>(t: &T, path: &str, limit: u64) -> Result<Slurped, TargetError> {
    let st = t
        .stat(path, true)
        .await?
        .ok_or_else(|| TargetError::NotFound {
            path: path.to_string(),
        })?;
    if st.kind != FileKind::File {
        return Err(TargetError::Other(format!(
            "{path}: source is a directory or special file and must be a regular file"
        )));
    }
    if st.size > limit {
        return Err(TargetError::Other(format!(
            "{path}: {} bytes is larger than the {limit}-byte slurp limit (fetch it to a \
             directory instead)",
            st.size
        )));
    }
    let (content, owner, group) = tokio::join!(
        t.read(path, limit),
        id_name(t, "passwd", st.uid),
        id_name(t, "group", st.gid)
    );
    let content = content?;
    Ok(Slurped {
        source: path.to_string(),
        sha256: sha256(&content),
        size: content.len() as u64,
        content,
        mode: st.mode,
        uid: st.uid,
        gid: st.gid,
        owner,
        group,
    })
}

/// One file fetched by [`fetch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub source: String,
    pub dest: PathBuf,
    pub changed: bool,
    pub sha256: Sha256Digest,
    pub size: u64,
}

impl Fetched {
    pub fn to_json(&self) -> Value {
        json!({
            "changed": self.changed,
            "src": self.source,
            "dest": self.dest.to_string_lossy(),
            "checksum": to_hex(&self.sha256),
            "sha256": to_hex(&self.sha256),
            "size": self.size,
        })
    }
}

/// Stream `path` from `t` into `dir/HOST/PATH` on this machine. The local file keeps the
/// remote permission bits (without set-id bits), so fetched private keys stay private. In
/// `check` mode only compares checksums and reports whether it would fetch.
pub async fn fetch<T: Target>(
    t: &T,
    path: &str,
    dir: &Path,
    check: bool,
    progress: &ProgressHandle,
) -> Result<Fetched, TargetError> {
    let local =
        spec::fetch_path(dir, t.host(), path).map_err(|e| TargetError::Other(e.to_string()))?;
    let local_str = local
        .to_str()
        .ok_or_else(|| TargetError::Other(format!("{}: not UTF-8", local.display())))?
        .to_string();
    let st = t
        .stat(path, true)
        .await?
        .ok_or_else(|| TargetError::NotFound {
            path: path.to_string(),
        })?;
    if st.kind != FileKind::File {
        return Err(TargetError::Other(format!(
            "{path}: remote file is a directory or special file; fetch only supports files"
        )));
    }
    let remote_sha = t.sha256(path).await?.ok_or_else(|| TargetError::NotFound {
        path: path.to_string(),
    })?;
    let here = LocalTarget::new();
    let current = match here.sha256(&local_str).await {
        Ok(s) => s,
        Err(TargetError::NotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    if current == Some(remote_sha) || check {
        return Ok(Fetched {
            source: path.to_string(),
            dest: local,
            changed: current != Some(remote_sha),
            sha256: remote_sha,
            size: st.size,
        });
    }
    if let Some(parent) = local.parent() {
        std::fs::create_dir_all(parent).map_err(|e| TargetError::Io {
            path: parent.display().to_string(),
            op: "mkdir".into(),
            msg: e.to_string(),
        })?;
    }
    progress.planned(t.host(), st.size);
    let (tx, mut rx) = fanout::dest_channel();
    let (tx2, rx2) = fanout::dest_channel();
    // Count what the local writer accepted.
    let relay = async move {
        while let Some(item) = rx.recv().await {
            let n = item.as_ref().map_or(0, |c| c.len() as u64);
            if tx2.send(item).await.is_err() {
                break;
            }
            progress.transferred(t.host(), n);
        }
    };
    let ws = WriteSpec {
        dest: local_str.clone(),
        mode: st.mode & 0o777,
        uid: None,
        gid: None,
        expect: Expect::Any,
        validate: None,
        backup: false,
    };
    let (pumped, written, ()) = tokio::join!(
        fanout::fan_out(t, path, (remote_sha, st.size), vec![(0, tx)]),
        here.write_atomic(&ws, Body::Stream(rx2)),
        relay
    );
    if let Some(e) = pumped.error {
        return Err(TargetError::Other(e));
    }
    let out = written?;
    if out.sha256 != remote_sha {
        return Err(TargetError::Other(format!(
            "{local_str}: verification failed: sha256 {} but the host reported {}",
            to_hex(&out.sha256),
            to_hex(&remote_sha)
        )));
    }
    Ok(Fetched {
        source: path.to_string(),
        dest: local,
        changed: true,
        sha256: out.sha256,
        size: out.size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::replicate::testutil::{Rooted, rt};

    #[test]
    fn slurp_returns_ansible_fields() {
        let dir = tempfile::tempdir().unwrap();
        let h = Rooted::new("h", dir.path());
        let data = b"bin\x00ary\r\nno newline";
        h.put("/etc/ca.crt", data);
        let s = rt()
            .block_on(slurp(&h, "/etc/ca.crt", SLURP_LIMIT))
            .unwrap();
        assert_eq!(s.content, data);
        let j = s.to_ansible();
        assert_eq!(j["encoding"], "base64");
        assert_eq!(j["source"], "/etc/ca.crt");
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(j["content"].as_str().unwrap())
                .unwrap(),
            data
        );
        assert_eq!(j["sha256"], to_hex(&sha256(data)));
        assert_eq!(j["size"], data.len());
        assert_eq!(j["owner"], "root");
        let rt = rt();
        assert!(matches!(
            rt.block_on(slurp(&h, "/etc/missing", SLURP_LIMIT)),
            Err(TargetError::NotFound { .. })
        ));
        assert!(rt.block_on(slurp(&h, "/etc", SLURP_LIMIT)).is_err());
        let e = rt.block_on(slurp(&h, "/etc/ca.crt", 4)).unwrap_err();
        assert!(e.to_string().contains("limit"), "{e}");
    }

    #[test]
    fn fetch_lays_out_dir_host_path_and_skips_when_current() {
        let dir = tempfile::tempdir().unwrap();
        let h = Rooted::new("host01", &dir.path().join("remote"));
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
        h.put("/var/lib/big.bin", &big);
        let out = dir.path().join("out");
        let rt = rt();
        let rec = std::sync::Arc::new(crate::progress::testutil::Recorder::default());
        let progress = ProgressHandle::new(rec.clone());
        let c = rt
            .block_on(fetch(&h, "/var/lib/big.bin", &out, true, &progress))
            .unwrap();
        assert!(c.changed && !c.dest.exists(), "check mode fetches nothing");
        let f = rt
            .block_on(fetch(&h, "/var/lib/big.bin", &out, false, &progress))
            .unwrap();
        assert!(f.changed);
        assert_eq!(f.dest, out.join("host01/var/lib/big.bin"));
        assert_eq!(std::fs::read(&f.dest).unwrap(), big);
        let again = rt
            .block_on(fetch(&h, "/var/lib/big.bin", &out, false, &progress))
            .unwrap();
        assert!(!again.changed);
        // Only the one real fetch moved bytes, and the progress saw all of them.
        assert_eq!(rec.planned.lock().unwrap()["host01"], big.len() as u64);
        assert_eq!(rec.moved.lock().unwrap()["host01"], big.len() as u64);
        assert!(
            rt.block_on(fetch(&h, "/var/lib/none", &out, false, &progress))
                .is_err()
        );
    }
}
