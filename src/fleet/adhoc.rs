//! The ad-hoc commands: `ping` (connect, authenticate, run `true`) and `run -- CMD ARGS`
//! (argv executed without shell interpretation: every word is quoted for the remote shell;
//! output per host like `ansible -m command`; `rc != 0` is failed).

use serde_json::json;

use super::{HostOutcome, RunOptions, block_on, connector_for, resolve::resolve_targets};
use crate::error::{ExitCode, Result};
use crate::report::{LineStyle, Reporter};
use crate::run::GlobalConfig;
use crate::target::Target;

fn no_hosts(pattern: &str) -> ExitCode {
    eprintln!("[WARNING]: No hosts matched pattern {pattern:?}, nothing to do");
    ExitCode::Ok
}

/// `sshfleet ping [PATTERN]`.
pub fn ping(g: &GlobalConfig, pattern: &str) -> Result<ExitCode> {
    let specs = resolve_targets(g, pattern)?;
    if specs.is_empty() {
        return Ok(no_hosts(pattern));
    }
    let connector = connector_for(g);
    let mut reporter = Reporter::for_global(g).with_title("ping");
    let opts = RunOptions::from_global(g);
    Ok(block_on(async move {
        let recap = super::run(specs, &connector, &opts, &mut reporter, |ctx| async move {
            let t = ctx.target().await?;
            let out = t.run(&["true".to_string()], None).await?;
            if out.status != 0 {
                return Ok(HostOutcome::failed(
                    ctx.host(),
                    format!(
                        "`true` exited with rc={}: {}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr).trim()
                    ),
                ));
            }
            Ok(HostOutcome::ok(ctx.host(), json!({"ping": "pong"})))
        })
        .await;
        reporter.finish(&recap)
    }))
}

/// `sshfleet run [-H PATTERN] -- CMD ARGS`.
pub fn run_command(g: &GlobalConfig, pattern: &str, argv: &[String]) -> Result<ExitCode> {
    if argv.is_empty() {
        return Err(crate::error::Error::Usage("run: no command given".into()));
    }
    let specs = resolve_targets(g, pattern)?;
    if specs.is_empty() {
        return Ok(no_hosts(pattern));
    }
    let connector = connector_for(g);
    let mut reporter = Reporter::for_global(g).with_style(LineStyle::Command);
    let opts = RunOptions::from_global(g);
    let argv = argv.to_vec();
    Ok(block_on(async move {
        let recap = super::run(specs, &connector, &opts, &mut reporter, move |ctx| {
            let argv = argv.clone();
            async move {
                let t = ctx.target().await?;
                let start = std::time::Instant::now();
                let out = t.run(&argv, None).await?;
                let result = json!({
                    "cmd": argv,
                    "rc": out.status,
                    "stdout": String::from_utf8_lossy(&out.stdout),
                    "stderr": String::from_utf8_lossy(&out.stderr),
                    "delta": format!("{:.6}", start.elapsed().as_secs_f64()),
                });
                Ok(if out.status == 0 {
                    HostOutcome::changed(ctx.host(), result)
                } else {
                    HostOutcome::failed(ctx.host(), "non-zero return code").with_result(result)
                })
            }
        })
        .await;
        reporter.finish(&recap)
    }))
}
