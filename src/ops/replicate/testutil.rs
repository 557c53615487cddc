//! Test targets for the copy/replicate unit tests: several "hosts" on this machine, each a
//! directory standing in for `/` ([`Rooted`], real syscalls through
//! [`crate::target::local::LocalTarget`]), and fault injectors wrapping one: a destination
//! whose writes die after some chunks ([`Rooted::fail_write_after`]) and a source whose
//! reads fail mid-way ([`Rooted::fail_read_after`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::target::local::LocalTarget;
use crate::target::{
    Body, CommandOutput, FileStat, TResult, Target, TargetError, UserInfo, WriteOutcome, WriteSpec,
};

/// A current-thread runtime for one test.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A host whose `/` is `root` on this machine.
pub struct Rooted {
    pub name: String,
    pub root: PathBuf,
    inner: LocalTarget,
    /// Abort writes after this many chunks (stream bodies only).
    fail_write_after: Option<usize>,
    /// Send an error after this many chunks of a streamed read.
    fail_read_after: Option<usize>,
    /// Number of write_atomic calls.
    pub writes: AtomicUsize,
}

impl Rooted {
    pub fn new(name: &str, root: &Path) -> Self {
        Rooted {
            name: name.to_string(),
            root: root.to_path_buf(),
            inner: LocalTarget::new(),
            fail_write_after: None,
            fail_read_after: None,
            writes: AtomicUsize::new(0),
        }
    }

    pub fn fail_write_after(mut self, chunks: usize) -> Self {
        self.fail_write_after = Some(chunks);
        self
    }

    pub fn fail_read_after(mut self, chunks: usize) -> Self {
        self.fail_read_after = Some(chunks);
        self
    }

    /// The real path of a host path.
    pub fn real(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    fn p(&self, path: &str) -> String {
        self.real(path).to_string_lossy().into_owned()
    }

    /// Write a file on this host (test setup), creating parents.
    pub fn put(&self, path: &str, data: &[u8]) {
        let p = self.real(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }

    pub fn get(&self, path: &str) -> Option<Vec<u8>> {
        std::fs::read(self.real(path)).ok()
    }

    /// Names in a host directory.
    pub fn ls(&self, path: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.real(path))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

impl Target for Rooted {
    fn host(&self) -> &str {
        &self.name
    }

    async fn stat(&self, path: &str, follow: bool) -> TResult<Option<FileStat>> {
        self.inner.stat(&self.p(path), follow).await
    }

    async fn read(&self, path: &str, limit: u64) -> TResult<Vec<u8>> {
        self.inner.read(&self.p(path), limit).await
    }

    async fn read_stream(
        &self,
        path: &str,
        sink: mpsc::Sender<Result<Bytes, String>>,
    ) -> TResult<FileStat> {
        match self.fail_read_after {
            None => self.inner.read_stream(&self.p(path), sink).await,
            Some(n) => {
                let (tx, mut rx) = mpsc::channel(4);
                let real = self.p(path);
                let read = self.inner.read_stream(&real, tx);
                let relay = async move {
                    let mut sent = 0;
                    while let Some(item) = rx.recv().await {
                        if sent == n {
                            let _ = sink.send(Err("injected read failure".into())).await;
                            return Err(TargetError::Other("injected read failure".into()));
                        }
                        if sink.send(item).await.is_err() {
                            return Err(TargetError::Other("sink gone".into()));
                        }
                        sent += 1;
                    }
                    Ok(())
                };
                let (st, relayed) = tokio::join!(read, relay);
                relayed?;
                st
            }
        }
    }

    async fn sha256(&self, path: &str) -> TResult<Option<[u8; 32]>> {
        self.inner.sha256(&self.p(path)).await
    }

    async fn write_atomic(&self, spec: &WriteSpec, body: Body) -> TResult<WriteOutcome> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        let mut real = spec.clone();
        real.dest = self.p(&spec.dest);
        match (body, self.fail_write_after) {
            (Body::Stream(mut rx) | Body::Vouched(mut rx, _), Some(n)) => {
                // Relay n chunks into a real write, then die like a dropped connection.
                let (tx, rx2) = mpsc::channel(4);
                let write = self.inner.write_atomic(&real, Body::Stream(rx2));
                let relay = async move {
                    for _ in 0..n {
                        match rx.recv().await {
                            Some(c) => {
                                let _ = tx.send(c).await;
                            }
                            None => break,
                        }
                    }
                    let _ = tx.send(Err("injected: connection lost".into())).await;
                    drop(rx);
                };
                let (w, ()) = tokio::join!(write, relay);
                assert!(w.is_err(), "a write whose stream failed must not succeed");
                Err(TargetError::Unreachable("injected: connection lost".into()))
            }
            (body, _) => {
                let mut out = self.inner.write_atomic(&real, body).await?;
                if let Some(b) = &out.backup_file {
                    out.backup_file = Some(
                        b.strip_prefix(self.root.to_string_lossy().as_ref())
                            .unwrap_or(b)
                            .to_string(),
                    );
                }
                Ok(out)
            }
        }
    }

    async fn mkdir(
        &self,
        path: &str,
        mode: u32,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> TResult<()> {
        self.inner.mkdir(&self.p(path), mode, uid, gid).await
    }

    async fn set_attrs(
        &self,
        path: &str,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> TResult<()> {
        self.inner.set_attrs(&self.p(path), mode, uid, gid).await
    }

    async fn remove(&self, path: &str) -> TResult<()> {
        self.inner.remove(&self.p(path)).await
    }

    async fn list_dir(&self, path: &str) -> TResult<Vec<String>> {
        self.inner.list_dir(&self.p(path)).await
    }

    async fn read_link(&self, path: &str) -> TResult<String> {
        self.inner.read_link(&self.p(path)).await
    }

    async fn lookup_user(&self, name: &str) -> TResult<Option<UserInfo>> {
        self.inner.lookup_user(name).await
    }

    async fn lookup_group(&self, name: &str) -> TResult<Option<u32>> {
        self.inner.lookup_group(name).await
    }

    async fn probe_procs(&self, pids: &[u32]) -> TResult<crate::target::temp::ProcProbe> {
        self.inner.probe_procs(pids).await
    }

    async fn run(&self, argv: &[String], stdin: Option<Vec<u8>>) -> TResult<CommandOutput> {
        // Commands see real paths: map arguments that are host paths.
        let mapped: Vec<String> = argv
            .iter()
            .map(|a| {
                if a.starts_with('/')
                    && !a.starts_with(self.root.to_string_lossy().as_ref())
                    && !a.starts_with("/usr")
                    && !a.starts_with("/bin")
                {
                    self.p(a)
                } else {
                    a.clone()
                }
            })
            .collect();
        self.inner.run(&mapped, stdin).await
    }
}
