//! Driver of `keys audit`: run [`crate::ops::keys::audit::gather`] on every selected host
//! (progress bar while hosts answer), then group the keys across the fleet and list the
//! findings ([`crate::keyaudit`]) as a table on a terminal, one JSON document (`--json`) or
//! CSV rows (`--csv`, one row per place a key appears).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::commands::{Config, no_hosts};
use crate::error::{Error, ExitCode, Result};
use crate::events::{HostOutcome, Recap, Status};
use crate::fleet::HostCtx;
use crate::keyaudit::{FileState, Finding, HostAudit, KeyGroup, findings, group_by_key};
use crate::ops::keys::audit::{MatchConn, gather};
use crate::report::{LineStyle, OutputMode, format_task_line, recap_json};
use crate::ssh::target::SshTarget;
use crate::target::TargetError;

use super::AuditConfig;

/// The fingerprints of a `--known-keys` file (authorized_keys or `.pub` lines; options and
/// comments allowed, `#` and blank lines skipped).
pub fn load_known_keys(path: &std::path::Path) -> Result<HashSet<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::KeyFile {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    let parsed = crate::authorized_keys::AuthorizedKeys::parse(&text);
    if let Some((n, r)) = parsed.invalid().next() {
        return Err(Error::KeyFile {
            path: path.to_path_buf(),
            msg: format!("line {n}: {r}"),
        });
    }
    Ok(parsed.keys().map(|(_, k)| k.fingerprint()).collect())
}

/// Where `Match` is evaluated for: the controller's connection as sshd saw it.
pub(super) async fn match_conn(t: &SshTarget) -> (MatchConn, Option<String>) {
    let seen = t
        .session()
        .exec("echo \"$SSH_CONNECTION\"", None)
        .await
        .ok()
        .and_then(|o| MatchConn::from_ssh_connection(&String::from_utf8_lossy(&o.stdout)));
    match seen {
        Some(c) => (c, None),
        None => (
            MatchConn {
                addr: "127.0.0.1".into(),
                laddr: None,
                lport: None,
            },
            Some(
                "the connection's SSH_CONNECTION (Match Address/Host evaluated for 127.0.0.1)"
                    .into(),
            ),
        ),
    }
}

/// Audit one host over its connection.
pub(super) async fn audit_host(ctx: &HostCtx) -> std::result::Result<HostAudit, TargetError> {
    let t = ctx.target().await?;
    let (conn, note) = match_conn(t).await;
    let mut a = gather(t, &t.session().user, &conn).await?;
    a.not_seen.extend(note);
    Ok(a)
}

/// A one-line summary of a host's audit.
fn summary(a: &HostAudit) -> Value {
    let files = a.accounts.iter().flat_map(|x| &x.files);
    let keys: usize = files.clone().map(|f| f.keys.len()).sum();
    let accepted: usize = files
        .clone()
        .map(|f| f.keys.iter().filter(|k| k.accepted).count())
        .sum();
    json!({
        "accounts": a.accounts.len(),
        "files": files.filter(|f| f.state != FileState::Missing).count(),
        "keys": keys,
        "accepted": accepted,
        "privileged": a.privileged,
        "not_seen": a.not_seen,
    })
}

/// `keys audit`.
pub fn audit(g: &Config, cfg: &AuditConfig) -> Result<ExitCode> {
    let known = cfg.known_keys.as_deref().map(load_known_keys).transpose()?;
    let specs = g.resolve(&cfg.hosts.pattern)?;
    if specs.is_empty() {
        return Ok(no_hosts(&cfg.hosts.pattern));
    }
    let csv = cfg.csv;
    let text = g.report.output == OutputMode::Text && !csv;
    let diff = g.diff;
    let reporter = g.reporter().with_title("keys audit");
    let mut reporter = reporter.with_style(LineStyle::Custom(Box::new(move |o, v| {
        if !text {
            return String::new();
        }
        let mut s = format_task_line(o, v, diff);
        if o.status == Status::Ok
            && let Some(n) = o.result.get("keys")
        {
            s.push_str(&format!(
                " {} accounts, {} files, {} keys ({} accepted by sshd)",
                o.result["accounts"], o.result["files"], n, o.result["accepted"]
            ));
            if o.result["privileged"] == json!(false) {
                s.push_str(" — not root: partial (see NOT SEEN)");
            }
        }
        s
    })));
    let audits: Arc<Mutex<Vec<HostAudit>>> = Arc::default();
    let sink = audits.clone();
    let connector = g.connector();
    let recap = crate::fleet::block_on(async {
        crate::fleet::run(specs, &connector, &g.run, &mut reporter, move |ctx| {
            let sink = sink.clone();
            async move {
                let a = audit_host(&ctx).await?;
                let s = summary(&a);
                sink.lock().expect("audit results").push(a);
                Ok(HostOutcome::ok(ctx.host(), s))
            }
        })
        .await
    });
    let mut hosts = std::mem::take(&mut *audits.lock().expect("audit results"));
    let order: Vec<&str> = recap.outcomes.iter().map(|o| o.host.as_str()).collect();
    hosts.sort_by_key(|h| order.iter().position(|n| *n == h.host));
    let groups = group_by_key(&hosts, known.as_ref());
    let found = findings(&hosts, known.as_ref());
    if g.report.output == OutputMode::Json {
        reporter.finish_quiet();
        let doc = json!({
            "hosts": hosts,
            "keys": groups,
            "findings": found,
            "recap": recap_json(&recap),
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else if csv {
        reporter.finish_quiet();
        print!("{}", format_csv(&groups));
        for o in failures(&recap) {
            eprintln!("[WARNING]: {}: {}", o.host, o.msg.as_deref().unwrap_or(""));
        }
    } else {
        print!("{}", format_table(&groups, &found, &hosts));
        reporter.finish(&recap);
    }
    Ok(ExitCode::of_recap(&recap))
}

fn failures(recap: &Recap) -> impl Iterator<Item = &HostOutcome> {
    recap
        .outcomes
        .iter()
        .filter(|o| matches!(o.status, Status::Failed | Status::Unreachable))
}

/// The text report: keys with where they appear, findings, what was not seen.
pub fn format_table(groups: &[KeyGroup], found: &[Finding], hosts: &[HostAudit]) -> String {
    let mut s = String::new();
    s.push_str(&format!("\nKEYS ({})\n", groups.len()));
    for g in groups {
        let bits = g.bits.map(|b| format!(" {b}")).unwrap_or_default();
        s.push_str(&format!("{} {}{}", g.fingerprint, g.key_type, bits));
        if !g.comments.is_empty() {
            let c: Vec<&str> = g.comments.iter().map(String::as_str).collect();
            s.push_str(&format!("  {}", c.join(", ")));
        }
        if g.known == Some(false) {
            s.push_str("  [NOT IN KNOWN KEYS]");
        }
        s.push('\n');
        let rows: Vec<[String; 4]> = g
            .places
            .iter()
            .map(|p| {
                [
                    p.host.clone(),
                    p.user.clone(),
                    format!("{}:{}", p.file, p.line),
                    match (&p.why_not, p.options.is_empty()) {
                        (Some(w), _) => format!("NOT ACCEPTED: {w}"),
                        (None, true) => "accepted".into(),
                        (None, false) => format!("accepted [{}]", p.options),
                    },
                ]
            })
            .collect();
        let w: Vec<usize> = (0..3)
            .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
            .collect();
        for r in &rows {
            s.push_str(&format!(
                "    {:w0$}  {:w1$}  {:w2$}  {}\n",
                r[0],
                r[1],
                r[2],
                r[3],
                w0 = w[0],
                w1 = w[1],
                w2 = w[2]
            ));
        }
    }
    s.push_str(&format!("\nFINDINGS ({})\n", found.len()));
    for f in found {
        let kind = serde_json::to_value(f.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let mut at = f.host.clone();
        if let Some(u) = &f.user {
            at.push_str(&format!(" {u}"));
        }
        if let Some(file) = &f.file {
            at.push_str(&format!(" {file}"));
            if let Some(l) = f.line {
                at.push_str(&format!(":{l}"));
            }
        }
        let fp = f
            .fingerprint
            .as_deref()
            .map(|x| format!(" {x}"))
            .unwrap_or_default();
        s.push_str(&format!("  {kind:<18} {at}{fp}: {}\n", f.detail));
    }
    let unseen: Vec<String> = hosts
        .iter()
        .flat_map(|h| {
            let mut v: Vec<String> = h
                .not_seen
                .iter()
                .map(|n| format!("{}: {n}", h.host))
                .collect();
            for a in &h.accounts {
                for f in &a.files {
                    if let FileState::Unseen(r) = &f.state {
                        v.push(format!("{}: {} {}: {r}", h.host, a.user, f.path));
                    }
                }
            }
            v
        })
        .collect();
    if !unseen.is_empty() {
        s.push_str(&format!("\nNOT SEEN ({})\n", unseen.len()));
        for u in unseen {
            s.push_str(&format!("  {u}\n"));
        }
    }
    s
}

/// One CSV field (RFC 4180 quoting).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// CSV: a header, then one row per place a key appears.
pub fn format_csv(groups: &[KeyGroup]) -> String {
    let mut s = String::from(
        "fingerprint,type,bits,known,host,user,file,line,accepted,why_not,options,comment\n",
    );
    for g in groups {
        for p in &g.places {
            let row = [
                g.fingerprint.clone(),
                g.key_type.clone(),
                g.bits.map(|b| b.to_string()).unwrap_or_default(),
                g.known.map(|k| k.to_string()).unwrap_or_default(),
                p.host.clone(),
                p.user.clone(),
                p.file.clone(),
                p.line.to_string(),
                p.accepted.to_string(),
                p.why_not.clone().unwrap_or_default(),
                p.options.clone(),
                p.comment.clone(),
            ];
            let row: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
            s.push_str(&row.join(","));
            s.push('\n');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyaudit::Place;
    use std::collections::BTreeSet;

    fn group() -> KeyGroup {
        KeyGroup {
            fingerprint: "SHA256:x".into(),
            key_type: "ssh-ed25519".into(),
            bits: Some(256),
            comments: BTreeSet::from(["bob@laptop".to_string()]),
            options: BTreeSet::new(),
            known: Some(false),
            places: vec![Place {
                host: "h1".into(),
                user: "deploy".into(),
                file: "/home/deploy/.ssh/authorized_keys".into(),
                line: 3,
                options: "command=\"a,b\"".into(),
                comment: "bob@laptop".into(),
                accepted: true,
                why_not: None,
            }],
        }
    }

    #[test]
    fn csv_quotes_fields() {
        let c = format_csv(&[group()]);
        let lines: Vec<&str> = c.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[1],
            "SHA256:x,ssh-ed25519,256,false,h1,deploy,/home/deploy/.ssh/authorized_keys,3,true,,\"command=\"\"a,b\"\"\",bob@laptop"
        );
    }

    #[test]
    fn table_names_places() {
        let t = format_table(&[group()], &[], &[]);
        assert!(
            t.contains("SHA256:x ssh-ed25519 256  bob@laptop  [NOT IN KNOWN KEYS]"),
            "{t}"
        );
        assert!(
            t.contains("h1  deploy  /home/deploy/.ssh/authorized_keys:3  accepted [command"),
            "{t}"
        );
    }

    #[test]
    fn known_keys_file() {
        use crate::authorized_keys::testkeys::{ED1, ED1_FP};
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("k");
        std::fs::write(&p, format!("# team\nno-pty {ED1}\n")).unwrap();
        assert_eq!(
            load_known_keys(&p).unwrap(),
            HashSet::from([ED1_FP.to_string()])
        );
        std::fs::write(&p, "junk\n").unwrap();
        assert!(
            load_known_keys(&p)
                .unwrap_err()
                .to_string()
                .contains("line 1")
        );
    }
}
