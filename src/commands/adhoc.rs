//! The ad-hoc commands: `ping` (connect, authenticate, run `true`) and `run -- CMD ARGS`
//! (argv executed without shell interpretation: every word is quoted for the remote shell;
//! output per host like `ansible -m command`; `rc != 0` is failed).

use serde_json::json;

use super::{Config, run_on_hosts};
use crate::error::{Error, ExitCode, Result};
use crate::events::HostOutcome;
use crate::report::LineStyle;
use crate::target::Target;

/// `sshfleet ping [PATTERN]`.
pub fn ping(g: &Config, pattern: &str) -> Result<ExitCode> {
    let reporter = g.reporter().with_title("ping");
    run_on_hosts(g, pattern, reporter, |ctx| async move {
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
}

/// `sshfleet run [-H PATTERN] -- CMD ARGS`.
pub fn run_command(g: &Config, pattern: &str, argv: &[String]) -> Result<ExitCode> {
    if argv.is_empty() {
        return Err(Error::Usage("run: no command given".into()));
    }
    let reporter = g.reporter().with_style(LineStyle::Command);
    let argv = argv.to_vec();
    run_on_hosts(g, pattern, reporter, move |ctx| {
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
}
