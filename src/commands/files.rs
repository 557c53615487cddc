//! The `slurp`, `copy` and `replicate` commands over the fleet (controller only).
//!
//! - `replicate`: connect to the `--from` host, [`scan_source`] (a source that cannot be read
//!   stops here: nothing is written anywhere), then [`replicate`] to every other selected
//!   host: each destination's job runs through [`crate::fleet::run`] while the large files
//!   are streamed once per wave of `--forks` hosts.
//! - `copy`: the same with the controller's own files as the source ([`LocalTarget`]).
//! - `slurp`: per host of `--from`, fetch each path into `DIR/HOST/PATH`, or return
//!   Ansible-slurp JSON (`--json`).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::{Config, finish, no_hosts, run_on_specs};
use crate::error::{Error, ExitCode, Result};
use crate::events::{ChangeKind, FileChange, HostOutcome};
use crate::fleet::{self, HostCtx, block_on};
use crate::inventory::conn::ConnSpec;
use crate::ops::copy::{CopyOptions, HostReport, SourceSet};
use crate::ops::expand::expand_path;
use crate::ops::replicate::{FilesCommand, replicate, scan_source};
use crate::ops::slurp;
use crate::report::OutputMode;
use crate::ssh::Connector;
use crate::target::local::LocalTarget;
use crate::target::{Target, TargetError};

/// Run one files command.
pub fn execute(g: &Config, cmd: &FilesCommand) -> Result<ExitCode> {
    match cmd {
        FilesCommand::Slurp {
            from,
            paths,
            dest,
            limit,
        } => run_slurp(g, from, paths, dest.as_deref(), *limit),
        FilesCommand::Copy {
            pattern,
            sources,
            opts,
        } => run_copy(g, pattern, sources, opts),
        FilesCommand::Replicate {
            from,
            pattern,
            paths,
            opts,
        } => run_replicate(g, from, pattern, paths, opts),
    }
}

fn with_global(opts: &CopyOptions, g: &Config) -> CopyOptions {
    CopyOptions {
        check: g.check,
        diff: g.diff,
        ..opts.clone()
    }
}

/// A host's copy report as the fleet reporter's outcome.
pub fn outcome(r: &HostReport, diff: bool) -> HostOutcome {
    let result = r.to_json();
    let mut o = if r.is_unreachable() {
        HostOutcome::unreachable(&r.host, r.message().unwrap_or_default()).with_result(result)
    } else if let Some(msg) = r.message() {
        HostOutcome::failed(&r.host, msg).with_result(result)
    } else if r.changed() {
        HostOutcome::changed(&r.host, result)
    } else {
        HostOutcome::ok(&r.host, result)
    };
    if diff {
        let text = r.rendered_diff();
        if !text.is_empty() {
            o = o.with_diff(Value::String(text));
        }
    }
    o.with_changes(file_changes(r))
}

/// The journal's view of a host's copy report: every file changed (content or attributes),
/// with hashes only — a copied file's content is never journaled.
pub fn file_changes(r: &HostReport) -> Vec<FileChange> {
    r.files
        .iter()
        .filter(|f| f.changed && f.error.is_none())
        .map(|f| {
            let writes = f.action.is_some_and(|a| a.writes_content());
            let after = crate::files::checksum::to_hex(&f.sha256);
            FileChange {
                path: f.dest.clone(),
                kind: ChangeKind::Copied {
                    sha256_before: if writes {
                        f.sha256_before.as_ref().map(crate::files::checksum::to_hex)
                    } else {
                        Some(after.clone())
                    },
                    sha256_after: after,
                },
            }
        })
        .collect()
}

/// [`replicate`] `set` from `src` to `specs`, each destination's job run by the fleet runner,
/// with `~`, `~user` and `$VAR` in `--dest` (and in `given`, the source paths as written when
/// they are also the destination paths) expanded on each destination.
#[allow(clippy::too_many_arguments)] // one call site per command; a struct would only rename them
async fn fan_out_to_fleet<S: Target>(
    g: &Config,
    src: &S,
    set: SourceSet,
    specs: Vec<ConnSpec>,
    mut opts: CopyOptions,
    title: &str,
    given: Option<Vec<String>>,
    connector: Connector,
) -> ExitCode {
    // The bar counts bytes: every destination is expected to need the whole source until
    // it knows better.
    let whole: u64 = set.files.iter().map(|f| f.size).sum();
    let mut reporter = g
        .reporter()
        .with_title(title)
        .with_transfer(whole, set.files.len() == 1);
    opts.progress = reporter.progress(specs.len());
    // Destination number by host name: a job takes its own place in the replication.
    let index: Arc<HashMap<String, usize>> = Arc::new(
        specs
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i))
            .collect(),
    );
    let diff = g.diff;
    let dests = specs.len();
    let given = Arc::new(given);
    let (recap, errors) = replicate(
        src,
        Arc::new(set),
        Arc::new(opts),
        dests,
        g.run.forks,
        |dispatch| {
            fleet::run(
                specs,
                &connector,
                &g.run,
                &mut reporter,
                move |ctx: Arc<HostCtx>| {
                    let job = index.get(ctx.host()).and_then(|&i| dispatch.take(i));
                    let given = Arc::clone(&given);
                    async move {
                        let Some(job) = job else {
                            return Ok(HostOutcome::failed(
                                ctx.host(),
                                "internal error: no ticket",
                            ));
                        };
                        let t = ctx.target().await?;
                        Ok(outcome(&job.run_expanded(t, given.as_deref()).await, diff))
                    }
                },
            )
        },
    )
    .await;
    for e in &errors {
        reporter.warn(&format!("source failed while streaming: {e}"));
    }
    finish(&mut reporter, &recap)
}

fn run_replicate(
    g: &Config,
    from: &str,
    pattern: &str,
    paths: &[String],
    opts: &CopyOptions,
) -> Result<ExitCode> {
    // The source is named on its own; --limit selects destinations only.
    let src_global = Config {
        limit: None,
        ..g.clone()
    };
    let mut sources = src_global.resolve(from)?;
    if sources.len() != 1 {
        return Err(Error::Usage(format!(
            "--from must select exactly one host; {from:?} selects {}",
            sources.len()
        )));
    }
    let src_spec = sources.remove(0);
    let specs: Vec<_> = g
        .resolve(pattern)?
        .into_iter()
        .filter(|s| s.name != src_spec.name)
        .collect();
    if specs.is_empty() {
        return Ok(no_hosts(pattern));
    }
    let opts = with_global(opts, g);
    block_on(async move {
        let ctx = HostCtx::new(src_spec, g.connector());
        let src = ctx.target().await.map_err(|e| Error::Host {
            what: "source",
            host: ctx.host().to_string(),
            source: e,
        })?;
        // `~` and `$VAR` are the source's (its effective user's) on the source, and each
        // destination's on that destination.
        let mut src_paths = Vec::with_capacity(paths.len());
        for p in paths {
            src_paths.push(expand_path(src, p).await.map_err(|e| Error::Host {
                what: "source",
                host: ctx.host().to_string(),
                source: e,
            })?);
        }
        let given = (opts.dest.is_none()
            && paths
                .iter()
                .any(|p| crate::files::expand::needs_expansion(p)))
        .then(|| paths.to_vec());
        let busy = g
            .reporter()
            .busy(&format!("reading and hashing the source on {}", ctx.host()));
        let scanned = scan_source(src, &src_paths, opts.recurse).await;
        drop(busy);
        let (set, warnings) = scanned?;
        for w in &warnings {
            eprintln!("[WARNING]: {w}");
        }
        let code = fan_out_to_fleet(
            g,
            src,
            set,
            specs,
            opts,
            "replicate",
            given,
            // The source's connector: a bastion in front of source and destinations is
            // logged in to once.
            ctx.connector().clone(),
        )
        .await;
        ctx.close().await;
        Ok(code)
    })
}

/// Local paths as absolute paths (keeping a trailing `/`, which matters for directories).
fn absolute_local(p: &str) -> Result<String> {
    let abs = std::path::absolute(p).map_err(|e| Error::io(p, e))?;
    let mut s = abs
        .to_str()
        .ok_or_else(|| Error::Usage(format!("{p}: not a UTF-8 path")))?
        .to_string();
    // Resolve `..` lexically against the real file system (canonicalize the parent).
    if s.split('/').any(|c| c == "..") {
        let canon = std::fs::canonicalize(&abs).map_err(|e| Error::io(p, e))?;
        s = canon.to_string_lossy().into_owned();
    }
    if p.ends_with('/') && !s.ends_with('/') {
        s.push('/');
    }
    Ok(s)
}

fn run_copy(g: &Config, pattern: &str, sources: &[String], opts: &CopyOptions) -> Result<ExitCode> {
    let specs = g.resolve(pattern)?;
    if specs.is_empty() {
        return Ok(no_hosts(pattern));
    }
    let sources = sources
        .iter()
        .map(|s| absolute_local(s))
        .collect::<Result<Vec<_>>>()?;
    let opts = with_global(opts, g);
    block_on(async move {
        let here = LocalTarget::new();
        let busy = g.reporter().busy("reading and hashing the local sources");
        let scanned = scan_source(&here, &sources, opts.recurse).await;
        drop(busy);
        let (set, warnings) = scanned?;
        for w in &warnings {
            eprintln!("[WARNING]: {w}");
        }
        Ok(fan_out_to_fleet(g, &here, set, specs, opts, "copy", None, g.connector()).await)
    })
}

fn run_slurp(
    g: &Config,
    from: &str,
    paths: &[String],
    dest: Option<&std::path::Path>,
    limit: u64,
) -> Result<ExitCode> {
    if dest.is_none() && g.report.output != OutputMode::Json {
        return Err(Error::Usage(
            "slurp: give --dest DIR to fetch files, or --json to print them".into(),
        ));
    }
    for p in paths {
        // `~` and `$VAR` are expanded on each host (then checked).
        if !crate::files::expand::needs_expansion(p) {
            crate::files::spec::check_path(p).map_err(|e| Error::Usage(e.to_string()))?;
        }
    }
    let specs = g.resolve(from)?;
    if specs.is_empty() {
        return Ok(no_hosts(from));
    }
    let dest = dest.map(std::path::Path::to_path_buf);
    if let Some(d) = &dest {
        std::fs::create_dir_all(d).map_err(|e| Error::io(d.display(), e))?;
    }
    let title = if dest.is_some() { "fetch" } else { "slurp" };
    // Sizes are known per host only once it stats its files: no estimate in advance.
    let mut reporter = g
        .reporter()
        .with_title(title)
        .with_transfer(0, paths.len() == 1);
    let progress = reporter.progress(specs.len());
    let paths = Arc::new(paths.to_vec());
    let check = g.check;
    Ok(run_on_specs(g, specs, reporter, move |ctx| {
        let paths = Arc::clone(&paths);
        let dest = dest.clone();
        let progress = progress.clone();
        async move {
            let t = ctx.target().await?;
            let mut results = Vec::new();
            let mut errors = Vec::new();
            let mut changed = false;
            for given in paths.iter() {
                let p = match expand_path(t, given).await {
                    Ok(p) => p,
                    Err(e @ TargetError::Unreachable(_)) => return Err(e),
                    Err(e) => {
                        errors.push(e.to_string());
                        continue;
                    }
                };
                if let Err(e) = crate::files::spec::check_path(&p) {
                    errors.push(e.to_string());
                    continue;
                }
                let p = p.as_str();
                let r = match &dest {
                    Some(d) => slurp::fetch(t, p, d, check, &progress).await.map(|f| {
                        changed |= f.changed;
                        f.to_json()
                    }),
                    None => slurp::slurp(t, p, limit).await.map(|s| s.to_ansible()),
                };
                match r {
                    Ok(v) => results.push(v),
                    Err(e @ TargetError::Unreachable(_)) => return Err(e),
                    Err(e) => errors.push(e.to_string()),
                }
            }
            let result = if results.len() == 1 && errors.is_empty() {
                results.pop().unwrap_or_default()
            } else {
                json!({ "results": results })
            };
            Ok(if !errors.is_empty() {
                HostOutcome::failed(ctx.host(), errors.join("; ")).with_result(result)
            } else if changed {
                HostOutcome::changed(ctx.host(), result)
            } else {
                HostOutcome::ok(ctx.host(), result)
            })
        }
    }))
}
