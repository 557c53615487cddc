//! The `slurp`, `copy` and `replicate` commands over the fleet (controller only).
//!
//! - `replicate`: connect to the `--from` host, [`scan_source`] (a source that cannot be read
//!   stops here: nothing is written anywhere), then run [`host_job`] on every other selected
//!   host through [`crate::fleet::run`] while [`pump`] streams the large files once per wave
//!   of `--forks` hosts.
//! - `copy`: the same with the controller's own files as the source ([`LocalTarget`]).
//! - `slurp`: per host of `--from`, fetch each path into `DIR/HOST/PATH`, or return
//!   Ansible-slurp JSON (`--json`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::{FilesCommand, host_job, hub, pump, scan_source};
use crate::error::{Error, ExitCode, Result};
use crate::fleet::resolve::resolve_targets;
use crate::fleet::{HostCtx, HostOutcome, RunOptions, block_on, connector_for};
use crate::ops::copy::{CopyOptions, HostReport, SourceSet};
use crate::ops::slurp;
use crate::report::Reporter;
use crate::run::{GlobalConfig, OutputMode};
use crate::target::local::LocalTarget;
use crate::target::{Target, TargetError};

/// Run one files command.
pub fn execute(g: &GlobalConfig, cmd: &FilesCommand) -> Result<ExitCode> {
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

fn with_global(opts: &CopyOptions, g: &GlobalConfig) -> CopyOptions {
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
    o
}

fn no_hosts(pattern: &str) -> ExitCode {
    eprintln!("[WARNING]: No hosts matched pattern {pattern:?}, nothing to do");
    ExitCode::Ok
}

/// Run `host_job` on `specs` via the fleet runner, with `pump` streaming from `src`.
async fn fan_out_to_fleet<S: Target>(
    g: &GlobalConfig,
    src: &S,
    set: SourceSet,
    specs: Vec<crate::inventory::conn::ConnSpec>,
    opts: CopyOptions,
    title: &str,
) -> ExitCode {
    let connector = connector_for(g);
    let mut reporter = Reporter::for_global(g).with_title(title);
    let run_opts = RunOptions::from_global(g);
    let (hub, tickets) = hub::Hub::new(set.streamed().len(), specs.len(), run_opts.forks);
    // One ticket per host name; a job takes its own. Tickets of jobs that never run are
    // dropped with the job closure when the runner returns.
    let pool: HashMap<String, hub::Ticket> =
        specs.iter().map(|s| s.name.clone()).zip(tickets).collect();
    let pool = Arc::new(Mutex::new(pool));
    let set = Arc::new(set);
    let opts = Arc::new(opts);
    let diff = g.diff;
    let job = {
        let set = Arc::clone(&set);
        move |ctx: Arc<HostCtx>| {
            let ticket = pool
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(ctx.host());
            let set = Arc::clone(&set);
            let opts = Arc::clone(&opts);
            async move {
                let Some(ticket) = ticket else {
                    return Ok(HostOutcome::failed(ctx.host(), "internal error: no ticket"));
                };
                let t = ctx.target().await?;
                let report = host_job(t, &set, &opts, ticket).await;
                Ok(outcome(&report, diff))
            }
        }
    };
    let (recap, errors) = tokio::join!(
        crate::fleet::run(specs, &connector, &run_opts, &mut reporter, job),
        pump(src, &set, &hub)
    );
    for e in &errors {
        reporter.warn(&format!("source failed while streaming: {e}"));
    }
    reporter.finish(&recap)
}

fn run_replicate(
    g: &GlobalConfig,
    from: &str,
    pattern: &str,
    paths: &[String],
    opts: &CopyOptions,
) -> Result<ExitCode> {
    // The source is named on its own; --limit selects destinations only.
    let src_global = GlobalConfig {
        limit: None,
        ..g.clone()
    };
    let mut sources = resolve_targets(&src_global, from)?;
    if sources.len() != 1 {
        return Err(Error::Usage(format!(
            "--from must select exactly one host; {from:?} selects {}",
            sources.len()
        )));
    }
    let src_spec = sources.remove(0);
    let specs: Vec<_> = resolve_targets(g, pattern)?
        .into_iter()
        .filter(|s| s.name != src_spec.name)
        .collect();
    if specs.is_empty() {
        return Ok(no_hosts(pattern));
    }
    let opts = with_global(opts, g);
    block_on(async move {
        let ctx = HostCtx::new(src_spec, connector_for(g));
        let src = ctx
            .target()
            .await
            .map_err(|e| Error::Other(format!("source {}: {e}", ctx.host())))?;
        let (set, warnings) = scan_source(src, paths, opts.recurse).await?;
        for w in &warnings {
            eprintln!("[WARNING]: {w}");
        }
        let code = fan_out_to_fleet(g, src, set, specs, opts, "replicate").await;
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

fn run_copy(
    g: &GlobalConfig,
    pattern: &str,
    sources: &[String],
    opts: &CopyOptions,
) -> Result<ExitCode> {
    let specs = resolve_targets(g, pattern)?;
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
        let (set, warnings) = scan_source(&here, &sources, opts.recurse).await?;
        for w in &warnings {
            eprintln!("[WARNING]: {w}");
        }
        Ok(fan_out_to_fleet(g, &here, set, specs, opts, "copy").await)
    })
}

fn run_slurp(
    g: &GlobalConfig,
    from: &str,
    paths: &[String],
    dest: Option<&std::path::Path>,
    limit: u64,
) -> Result<ExitCode> {
    if dest.is_none() && g.output != OutputMode::Json {
        return Err(Error::Usage(
            "slurp: give --dest DIR to fetch files, or --json to print them".into(),
        ));
    }
    for p in paths {
        crate::files::spec::check_path(p).map_err(|e| Error::Usage(e.to_string()))?;
    }
    let specs = resolve_targets(g, from)?;
    if specs.is_empty() {
        return Ok(no_hosts(from));
    }
    let dest = dest.map(std::path::Path::to_path_buf);
    if let Some(d) = &dest {
        std::fs::create_dir_all(d).map_err(|e| Error::io(d.display(), e))?;
    }
    let connector = connector_for(g);
    let title = if dest.is_some() { "fetch" } else { "slurp" };
    let mut reporter = Reporter::for_global(g).with_title(title);
    let run_opts = RunOptions::from_global(g);
    let paths = Arc::new(paths.to_vec());
    let check = g.check;
    Ok(block_on(async move {
        let recap = crate::fleet::run(specs, &connector, &run_opts, &mut reporter, move |ctx| {
            let paths = Arc::clone(&paths);
            let dest = dest.clone();
            async move {
                let t = ctx.target().await?;
                let mut results = Vec::new();
                let mut errors = Vec::new();
                let mut changed = false;
                for p in paths.iter() {
                    let r = match &dest {
                        Some(d) => slurp::fetch(t, p, d, check).await.map(|f| {
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
        })
        .await;
        reporter.finish(&recap)
    }))
}
