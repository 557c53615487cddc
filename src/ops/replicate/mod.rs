//! replicate: read files once from a source and write them to many destinations at once,
//! byte for byte, with [`crate::ops::copy`]'s semantics on every destination.
//!
//! Order of work:
//! 1. [`scan_source`] stats and hashes every source file (walking `-r` trees) before any
//!    destination is touched: a source that cannot be read writes nothing anywhere. Small
//!    files are read into memory once (shared by all destinations, never base64);
//!    larger ones are hashed on the source host and streamed later.
//! 2. Every destination runs [`host_job`]: [`copy::prepare`] (stat + sha256 of what it has,
//!    owner lookup — already-current files are skipped, attributes still fixed), then
//!    registers with the [`hub::Hub`] for the streamed files it needs, then [`copy::apply`].
//! 3. [`pump`] streams each needed large file once through [`fanout::fan_out`] to exactly the
//!    destinations that asked for it.
//!
//! Controller memory: in-memory files total at most [`SMALL_TOTAL_MAX`]; each streamed file
//! holds at most `SOURCE_DEPTH + DEST_DEPTH + RELAY_DEPTH + 2` shared chunks (see [`fanout`]),
//! regardless of file size and destination count (≈ 1.1 MiB with 64 KiB SFTP chunks). A
//! destination that stalls for [`fanout::STALL_TIMEOUT`] is dropped so it cannot hold up the
//! others.
//!
//! [`replicate`] is the one path that does steps 2 and 3 for a set of destinations; the
//! `replicate`/`copy` commands run it over the fleet, [`replicate_to`] over targets already
//! connected (the unit tests).
//!
//! [`FilesCommand`] is the domain configuration of the `slurp`, `copy` and `replicate`
//! commands; the controller's `commands::files` runs them over the fleet.

pub mod fanout;
pub mod hub;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::files::checksum::sha256;
use crate::files::spec::{self, SourceRoot};
use crate::ops::copy::{
    self, CopyError, CopyOptions, HOST_CONCURRENCY, HostReport, SourceDir, SourceFile, SourceSet,
    check_report, futures_join_all, host_failure, join_all_bounded,
};
use crate::target::{FileKind, Target, TargetError};

/// Files up to this size are read into memory once and shared by all destinations.
pub const SMALL_FILE_MAX: u64 = 2 * 1024 * 1024;
/// Total bytes held in memory for small files; beyond it, files are streamed.
pub const SMALL_TOTAL_MAX: u64 = 32 * 1024 * 1024;

/// A `slurp`, `copy` or `replicate` invocation, as domain configuration.
#[derive(Debug, Clone)]
pub enum FilesCommand {
    /// Fetch `paths` from host `from` into `dest/HOST/PATH`, or print slurp JSON
    /// (when `dest` is `None`).
    Slurp {
        from: String,
        paths: Vec<String>,
        dest: Option<PathBuf>,
        /// Largest file printed as JSON (content is held in memory and base64-encoded).
        limit: u64,
    },
    /// Controller files `sources` to every host matching `pattern`.
    Copy {
        pattern: String,
        sources: Vec<String>,
        opts: CopyOptions,
    },
    /// `paths` on host `from` to every other host matching `pattern`.
    Replicate {
        from: String,
        pattern: String,
        paths: Vec<String>,
        opts: CopyOptions,
    },
}

/// A failure that stops the whole command before any destination is written.
#[derive(Debug, thiserror::Error)]
pub enum ReplicateError {
    #[error("{host}: source {path}: {source}")]
    Source {
        host: String,
        path: String,
        #[source]
        source: TargetError,
    },
    #[error("{host}: {source}")]
    Spec {
        host: String,
        #[source]
        source: spec::SpecError,
    },
}

/// Stat, hash and (if small) read every source path on `src`, walking directories when
/// `recurse`. Symlinks inside trees are followed when they point at a file and skipped
/// otherwise (listed in the returned warnings); a symlink given on the command line is
/// followed.
pub async fn scan_source<S: Target>(
    src: &S,
    paths: &[String],
    recurse: bool,
) -> Result<(SourceSet, Vec<String>), ReplicateError> {
    let host = src.host().to_string();
    let source_err = |path: &str, e: TargetError| ReplicateError::Source {
        host: host.clone(),
        path: path.to_string(),
        source: e,
    };
    let mut set = SourceSet::default();
    let mut warnings = Vec::new();
    // (root, rel, absolute path, mode, size) of every regular file, in order.
    let mut found: Vec<(usize, String, String, u32, u64)> = Vec::new();
    for (root, given) in paths.iter().enumerate() {
        spec::check_path(given).map_err(|e| ReplicateError::Spec {
            host: host.clone(),
            source: e,
        })?;
        let st = src
            .stat(given, true)
            .await
            .map_err(|e| source_err(given, e))?
            .ok_or_else(|| {
                source_err(
                    given,
                    TargetError::NotFound {
                        path: given.clone(),
                    },
                )
            })?;
        match st.kind {
            FileKind::File => {
                set.roots.push(SourceRoot {
                    given: given.clone(),
                    is_dir: false,
                });
                found.push((
                    root,
                    String::new(),
                    spec::normalize(given),
                    st.mode,
                    st.size,
                ));
            }
            FileKind::Dir => {
                set.roots.push(SourceRoot {
                    given: given.clone(),
                    is_dir: true,
                });
                if !recurse {
                    return Err(ReplicateError::Spec {
                        host: host.clone(),
                        source: spec::SpecError::DirWithoutRecurse {
                            path: given.clone(),
                        },
                    });
                }
                set.dirs.push(SourceDir {
                    root,
                    rel: String::new(),
                    mode: st.mode,
                });
                // Breadth-first walk; names checked so a hostile listing cannot escape.
                let mut queue = vec![String::new()];
                while let Some(rel) = queue.pop() {
                    let dir = spec::join(given, &rel);
                    let mut names = src.list_dir(&dir).await.map_err(|e| source_err(&dir, e))?;
                    names.sort();
                    for n in &names {
                        spec::check_entry_name(&dir, n).map_err(|e| ReplicateError::Spec {
                            host: host.clone(),
                            source: e,
                        })?;
                    }
                    let child_paths: Vec<String> =
                        names.iter().map(|n| spec::join(&dir, n)).collect();
                    let stats = join_all_bounded(
                        child_paths.iter().map(|p| src.stat(p, false)),
                        HOST_CONCURRENCY,
                    )
                    .await;
                    for ((n, path), st) in names.iter().zip(child_paths).zip(stats) {
                        let child_rel = spec::join_rel(&rel, n);
                        let Some(st) = st.map_err(|e| source_err(&path, e))? else {
                            continue; // vanished meanwhile
                        };
                        match st.kind {
                            FileKind::Dir => {
                                set.dirs.push(SourceDir {
                                    root,
                                    rel: child_rel.clone(),
                                    mode: st.mode,
                                });
                                queue.push(child_rel);
                            }
                            FileKind::File => found.push((root, child_rel, path, st.mode, st.size)),
                            FileKind::Symlink => match src.stat(&path, true).await {
                                Ok(Some(t)) if t.kind == FileKind::File => {
                                    found.push((root, child_rel, path, t.mode, t.size))
                                }
                                _ => warnings.push(format!(
                                    "{host}: skipped {path}: symlink to a directory or nothing"
                                )),
                            },
                            FileKind::Other => {
                                warnings.push(format!("{host}: skipped {path}: not a regular file"))
                            }
                        }
                    }
                }
            }
            _ => {
                return Err(source_err(
                    given,
                    TargetError::Other(format!("{given}: not a regular file or directory")),
                ));
            }
        }
    }
    set.dirs
        .sort_by(|a, b| (a.root, &a.rel).cmp(&(b.root, &b.rel)));
    // Small files: read now (one copy in memory for every destination). Large: hash on the
    // source host; the bytes are streamed later.
    let mut budget = SMALL_TOTAL_MAX;
    let mut plan_small = Vec::with_capacity(found.len());
    for f in &found {
        let small = f.4 <= SMALL_FILE_MAX && f.4 <= budget;
        if small {
            budget -= f.4;
        }
        plan_small.push(small);
    }
    let results = join_all_bounded(
        found.iter().zip(&plan_small).map(|(f, small)| {
            let path = f.2.clone();
            async move {
                if *small {
                    let data = src.read(&path, SMALL_FILE_MAX).await?;
                    Ok((
                        sha256(&data),
                        data.len() as u64,
                        Some(bytes::Bytes::from(data)),
                    ))
                } else {
                    let sha = src
                        .sha256(&path)
                        .await?
                        .ok_or_else(|| TargetError::NotFound { path: path.clone() })?;
                    Ok((sha, f.4, None))
                }
            }
        }),
        HOST_CONCURRENCY,
    )
    .await;
    for (f, r) in found.into_iter().zip(results) {
        let (sha, size, content) = r.map_err(|e: TargetError| source_err(&f.2, e))?;
        set.files.push(SourceFile {
            root: f.0,
            rel: f.1,
            label: f.2,
            size,
            mode: Some(f.3),
            sha256: sha,
            content,
        });
    }
    Ok((set, warnings))
}

/// One destination's whole job: prepare, register for streams, apply (or report the check).
/// `ticket` is dropped unused when nothing is streamed to this host.
pub async fn host_job<D: Target>(
    t: &D,
    set: &SourceSet,
    opts: &CopyOptions,
    ticket: hub::Ticket,
) -> HostReport {
    let plan = match copy::prepare(t, set, opts).await {
        Ok(p) => p,
        Err(e) => return host_failure(t.host(), &e),
    };
    if opts.check {
        opts.progress.planned(t.host(), 0);
        return check_report(t.host(), set, &plan);
    }
    opts.progress.planned(t.host(), plan.bytes_to_write(set));
    let streams = ticket.register(&plan.needs_stream(set));
    copy::apply(t, set, &plan, streams, opts).await
}

/// Stream every streamed file to the destinations that need it: once per wave (see
/// [`hub`]), so once in all when every destination runs at the same time. Returns the source
/// failures every destination of a wave was told about (empty when all went well).
pub async fn pump<S: Target>(src: &S, set: &SourceSet, hub: &hub::Hub) -> Vec<String> {
    let streamed = set.streamed();
    let mut errors = Vec::new();
    while let Some(mut wave) = hub.next_wave().await {
        for (k, i) in streamed.iter().enumerate() {
            let sinks = std::mem::take(&mut wave[k]);
            if sinks.is_empty() {
                continue;
            }
            let f = &set.files[*i];
            let r = fanout::fan_out(src, &f.label, (f.sha256, f.size), sinks).await;
            if let Some(e) = r.error {
                errors.push(e);
            }
        }
    }
    errors
}

/// The one replication path, shared by the fleet command and [`replicate_to`]: builds the
/// [`hub::Hub`] for `dests` destinations in waves of `wave` (the fleet's `--forks`), hands
/// `drive` a [`Dispatch`] to start destination jobs with, and runs [`pump`] alongside it.
/// Returns what `drive` returned and the source failures of [`pump`].
///
/// `drive` must, for every destination number `0..dests`, either run
/// [`Dispatch::take`]'s job or let it drop (a dropped job releases its place in the wave);
/// jobs never taken are released when `drive`'s future ends.
pub async fn replicate<S, F, Fut>(
    src: &S,
    set: Arc<SourceSet>,
    opts: Arc<CopyOptions>,
    dests: usize,
    wave: usize,
    drive: F,
) -> (Fut::Output, Vec<String>)
where
    S: Target,
    F: FnOnce(Dispatch) -> Fut,
    Fut: Future,
{
    let (hub, tickets) = hub::Hub::new(set.streamed().len(), dests, wave);
    let dispatch = Dispatch {
        set: Arc::clone(&set),
        opts,
        tickets: Arc::new(Mutex::new(tickets.into_iter().map(Some).collect())),
    };
    tokio::join!(drive(dispatch), pump(src, &set, &hub))
}

/// Hands out the destination jobs of one [`replicate`] run (cheap to clone, `'static`).
#[derive(Clone)]
pub struct Dispatch {
    set: Arc<SourceSet>,
    opts: Arc<CopyOptions>,
    tickets: Arc<Mutex<Vec<Option<hub::Ticket>>>>,
}

impl Dispatch {
    /// Destination number `i`'s job; `None` when `i` is out of range or already taken. Take
    /// it before connecting, so that a destination that cannot be reached (the job is dropped)
    /// does not hold up its wave.
    pub fn take(&self, i: usize) -> Option<DestJob> {
        let ticket = self
            .tickets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(i)
            .and_then(Option::take)?;
        Some(DestJob {
            set: Arc::clone(&self.set),
            opts: Arc::clone(&self.opts),
            ticket,
        })
    }
}

/// One destination's place in a [`replicate`] run.
pub struct DestJob {
    set: Arc<SourceSet>,
    opts: Arc<CopyOptions>,
    ticket: hub::Ticket,
}

impl DestJob {
    /// Run [`host_job`] on the connected destination `t`.
    pub async fn run<D: Target>(self, t: &D) -> HostReport {
        host_job(t, &self.set, &self.opts, self.ticket).await
    }

    /// [`Self::run`] with `~`, `~user` and `$VAR` expanded on `t` for the user it runs as
    /// (see [`expand_for_host`]).
    pub async fn run_expanded<D: Target>(self, t: &D, given: Option<&[String]>) -> HostReport {
        match expand_for_host(t, &self.set, &self.opts, given).await {
            Ok((set, opts)) => {
                host_job(
                    t,
                    set.as_ref().unwrap_or(&self.set),
                    opts.as_ref().unwrap_or(&self.opts),
                    self.ticket,
                )
                .await
            }
            Err(e) => host_failure(t.host(), &CopyError::Target(e)),
        }
    }
}

/// The source set and options as one destination sees them: `~`, `~user` and `$VAR` in
/// `dest`, and in the source paths as written (`given`: replicate without a `dest`, where
/// they are also the destination paths), expanded on that host for its effective user
/// ([`crate::ops::expand`]). `None` where nothing changes.
pub async fn expand_for_host<T: Target>(
    t: &T,
    set: &SourceSet,
    opts: &CopyOptions,
    given: Option<&[String]>,
) -> Result<(Option<SourceSet>, Option<CopyOptions>), TargetError> {
    use crate::ops::expand::expand_path;
    let mut host_opts = None;
    if let Some(d) = &opts.dest
        && crate::files::expand::needs_expansion(d)
    {
        host_opts = Some(CopyOptions {
            dest: Some(expand_path(t, d).await?),
            ..opts.clone()
        });
    }
    let mut host_set = None;
    if let Some(given) = given
        && given.len() == set.roots.len()
    {
        let mut s = set.clone();
        for (root, p) in s.roots.iter_mut().zip(given) {
            root.given = expand_path(t, p).await?;
        }
        host_set = Some(s);
    }
    Ok((host_set, host_opts))
}

/// Replicate `set` (scanned from `src`) to already-connected destinations, all at once,
/// through [`replicate`] (the path the fleet command takes). Returns one report per
/// destination (in order) and the source failures of [`pump`].
pub async fn replicate_to<S: Target, D: Target>(
    src: &S,
    set: &SourceSet,
    dests: &[D],
    opts: &CopyOptions,
) -> (Vec<HostReport>, Vec<String>) {
    let set = Arc::new(set.clone());
    let opts = Arc::new(opts.clone());
    replicate(src, set, opts, dests.len(), dests.len(), |dispatch| {
        futures_join_all(dests.iter().enumerate().map(move |(i, d)| {
            let job = dispatch.take(i);
            async move {
                match job {
                    Some(job) => job.run(d).await,
                    None => failed_host(d.host(), "internal error: no ticket"),
                }
            }
        }))
    })
    .await
}

/// Convenience for errors that stop one host.
pub fn failed_host(host: &str, msg: impl Into<String>) -> HostReport {
    host_failure(host, &CopyError::Other(msg.into()))
}
