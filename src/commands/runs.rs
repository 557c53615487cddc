//! `sshfleet runs` and `sshfleet runs show ID`: the run journal ([`crate::journal`]) for
//! people (a table, one run's records) and for programs (`--json`).

use serde_json::json;

use super::Config;
use crate::error::{ExitCode, Result};
use crate::journal::{FileKind, Record, RunSummary};
use crate::report::OutputMode;

/// `runs` (`show = None`) or `runs show ID`.
pub fn command(g: &Config, show: Option<&str>) -> Result<ExitCode> {
    let journal = g.journal_store()?;
    let json = g.report.output == OutputMode::Json;
    match show {
        None => {
            let runs = journal.runs()?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "journal": journal.dir(),
                        "runs": runs,
                    }))
                    .unwrap_or_default()
                );
            } else if runs.is_empty() {
                println!("no runs in {}", journal.dir().display());
            } else {
                print!("{}", format_runs(&runs));
            }
        }
        Some(id) => {
            let records = journal.load(id)?;
            if json {
                let summary = crate::journal::summarize(&records);
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "run": summary,
                        "records": records,
                    }))
                    .unwrap_or_default()
                );
            } else {
                print!("{}", format_run(&records));
            }
        }
    }
    Ok(ExitCode::Ok)
}

/// The command line as a shell would take it back (words quoted where needed).
fn command_line(argv: &[String]) -> String {
    argv.iter()
        .map(|w| {
            let plain = !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%~!&*".contains(c));
            if plain {
                w.clone()
            } else {
                crate::target::shell_quote(w)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn short(hash: &Option<String>) -> String {
    match hash {
        Some(h) => h.chars().take(12).collect(),
        None => "(absent)".into(),
    }
}

/// The `runs` table, oldest first.
pub fn format_runs(runs: &[RunSummary]) -> String {
    let idw = runs
        .iter()
        .map(|r| r.info.run.len())
        .max()
        .unwrap_or(3)
        .max(3);
    let opw = runs
        .iter()
        .map(|r| r.info.operator.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let mut s = format!(
        "{:idw$}  {:24}  {:opw$}  {:>5}  {:>7}  COMMAND\n",
        "RUN", "TIME", "OPERATOR", "HOSTS", "CHANGED"
    );
    for r in runs {
        s.push_str(&format!(
            "{:idw$}  {:24}  {:opw$}  {:>5}  {:>7}  {}\n",
            r.info.run,
            r.info.time,
            r.info.operator,
            r.hosts.len(),
            r.changed,
            command_line(&r.info.command)
        ));
    }
    s
}

/// One run's records as text.
pub fn format_run(records: &[Record]) -> String {
    let Some(first) = records.first() else {
        return String::new();
    };
    let mut s = format!(
        "run:      {}\ntime:     {}\noperator: {}\ncommand:  {}\n",
        first.info.run,
        first.info.time,
        first.info.operator,
        command_line(&first.info.command)
    );
    for r in records {
        let kind = match r.kind {
            FileKind::AuthorizedKeys => "authorized_keys",
            FileKind::Copied => "copied",
        };
        s.push_str(&format!(
            "\n{}: {} ({kind}{})\n    sha256 {} -> {}\n",
            r.host,
            r.file,
            r.user
                .as_ref()
                .map(|u| format!(", user {u}"))
                .unwrap_or_default(),
            short(&r.sha256_before),
            short(&r.sha256_after)
        ));
        for fp in &r.fingerprints_added {
            s.push_str(&format!("    + {fp}\n"));
        }
        for fp in &r.fingerprints_removed {
            s.push_str(&format!("    - {fp}\n"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_quote_words_with_blanks() {
        let argv: Vec<String> = ["sshfleet", "-l", "!web", "--key", "ssh-ed25519 AAAA x@y"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            command_line(&argv),
            "sshfleet -l !web --key 'ssh-ed25519 AAAA x@y'"
        );
    }
}
