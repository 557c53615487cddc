//! Events in, output out: progress bar (TTY only), Ansible-like per-host lines and recap, JSON.
//!
//! [`Reporter`] is an [`EventSink`]: the fleet runner feeds it ([`Reporter::host_done`] as
//! hosts finish) without knowing it, and it prints at the end ([`Reporter::finish`]): in text
//! mode a `PLAY RECAP` aligned like Ansible's; with `--json` one document `{"hosts": {h:
//! {status, changed, msg, ...result}}, "stats": {h: {ok, changed, ...}}, "interrupted": bool}`
//! on stdout. It knows nothing of the runner or of exit codes (those are
//! `ExitCode::of_recap`'s, in the top-level error module); it sees only the vocabulary of [`crate::events`].

pub mod live;

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::events::{EventSink, HostOutcome, HostTiming, Recap, Status};
use crate::progress::ProgressHandle;
use live::{Live, LiveKind};

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// Ansible-like per-host lines and a PLAY RECAP (progress bar on a TTY).
    Text,
    /// One JSON document on stdout.
    Json,
}

/// The reporter's part of the global flags (`--json`, `-v`, `--diff`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportOptions {
    pub output: OutputMode,
    pub verbose: u8,
    /// Print each host's diff under its line.
    pub diff: bool,
}

/// One host's recap counters (Ansible counts a changed task in `ok` too).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct HostStats {
    pub ok: u32,
    pub changed: u32,
    pub unreachable: u32,
    pub failed: u32,
    pub skipped: u32,
    pub rescued: u32,
    pub ignored: u32,
}

impl HostStats {
    pub fn of(o: &HostOutcome) -> Self {
        let mut s = HostStats::default();
        match o.status {
            Status::Ok => s.ok = 1,
            Status::Changed => {
                s.ok = 1;
                s.changed = 1
            }
            Status::Failed => s.failed = 1,
            Status::Unreachable => s.unreachable = 1,
            Status::Skipped => s.skipped = 1,
        }
        s
    }
}

/// Ansible's banner: `TITLE ****…` to 80 columns.
pub fn banner(title: &str) -> String {
    let stars = 80usize.saturating_sub(title.len() + 1).max(3);
    format!("{title} {}", "*".repeat(stars))
}

/// The `PLAY RECAP` block, aligned as Ansible prints it (`%-26s : ok=%-4s changed=%-4s …`).
pub fn format_recap(recap: &Recap) -> String {
    let mut s = banner("PLAY RECAP");
    s.push('\n');
    for o in &recap.outcomes {
        let st = HostStats::of(o);
        s.push_str(&format!(
            "{:<26} : ok={:<4} changed={:<4} unreachable={:<4} failed={:<4} skipped={:<4} rescued={:<4} ignored={:<4}\n",
            o.host, st.ok, st.changed, st.unreachable, st.failed, st.skipped, st.rescued, st.ignored
        ));
    }
    if recap.interrupted {
        s.push_str(&format!(
            "\n[interrupted] {} host(s) did not finish: {}\n",
            recap.not_finished.len(),
            recap.not_finished.join(", ")
        ));
    }
    s
}

/// One host's JSON object: `{status, changed, msg?, ...result, diff?}`.
pub fn host_json(o: &HostOutcome) -> Value {
    let mut m = Map::new();
    m.insert("status".into(), json!(o.status));
    m.insert("changed".into(), json!(o.status == Status::Changed));
    if matches!(o.status, Status::Failed) {
        m.insert("failed".into(), json!(true));
    }
    if matches!(o.status, Status::Unreachable) {
        m.insert("unreachable".into(), json!(true));
    }
    if let Some(msg) = &o.msg {
        m.insert("msg".into(), json!(msg));
    }
    if let Value::Object(r) = &o.result {
        for (k, v) in r {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
    } else if !o.result.is_null() {
        m.insert("result".into(), o.result.clone());
    }
    if let Some(d) = &o.diff {
        m.insert("diff".into(), d.clone());
    }
    Value::Object(m)
}

/// The `--json` document.
pub fn recap_json(recap: &Recap) -> Value {
    let mut hosts = Map::new();
    let mut stats = Map::new();
    for o in &recap.outcomes {
        hosts.insert(o.host.clone(), host_json(o));
        stats.insert(o.host.clone(), json!(HostStats::of(o)));
    }
    json!({
        "hosts": hosts,
        "stats": stats,
        "interrupted": recap.interrupted,
        "not_finished": recap.not_finished,
    })
}

/// A command's own per-host line formatter: `(outcome, verbosity) -> text`.
pub type LineFormatter = Box<dyn Fn(&HostOutcome, u8) -> String + Send>;

/// How per-host lines look.
pub enum LineStyle {
    /// `ok: [h]`, `changed: [h]`, `failed: [h] => msg`, `unreachable: [h] => msg`.
    Task,
    /// Like `ansible -m command`: `h | CHANGED | rc=0 >>` then stdout (result keys `rc`,
    /// `stdout`, `stderr`).
    Command,
    /// A command's own formatter: `(outcome, verbosity) -> text` (without trailing newline).
    Custom(LineFormatter),
}

/// Ansible-like output for one run.
pub struct Reporter {
    mode: OutputMode,
    verbose: u8,
    style: LineStyle,
    /// The live display, once the run started (or the driver asked for [`Self::progress`]).
    live: Option<Arc<Live>>,
    kind: LiveKind,
    show_bar: bool,
    header: Option<String>,
    diff: bool,
    /// The run journal, when this run records what it changes ([`crate::journal`]).
    journal: Option<crate::journal::Recorder>,
}

impl Reporter {
    pub fn new(mode: OutputMode, verbose: u8) -> Self {
        Reporter {
            mode,
            verbose,
            style: LineStyle::Task,
            live: None,
            kind: LiveKind::Hosts,
            show_bar: std::io::stderr().is_terminal(),
            header: None,
            diff: false,
            journal: None,
        }
    }

    /// Record every finished host's file changes in `journal` (see [`crate::journal`]).
    pub fn with_journal(mut self, journal: Option<crate::journal::Recorder>) -> Self {
        self.journal = journal;
        self
    }

    /// The journal recorder, if this run records (commands with their own loops record
    /// through it).
    pub fn journal(&mut self) -> Option<&mut crate::journal::Recorder> {
        self.journal.as_mut()
    }

    /// From the global flags (`--json`, `-v`, `--diff`).
    pub fn from_options(o: &ReportOptions) -> Self {
        let mut r = Self::new(o.output, o.verbose);
        r.diff = o.diff;
        r
    }

    pub fn with_style(mut self, style: LineStyle) -> Self {
        self.style = style;
        self
    }

    /// A `TASK [title]` banner printed before the first host line (text mode).
    pub fn with_title(mut self, title: &str) -> Self {
        self.header = Some(banner(&format!("TASK [{title}]")));
        self
    }

    /// Force the progress bar on or off (it defaults to "stderr is a terminal"; never with
    /// `--json`).
    pub fn with_progress(mut self, on: bool) -> Self {
        self.show_bar = on;
        self
    }

    /// A spinner saying `msg` until the returned guard is dropped, where a bar would show
    /// (text mode, stderr a terminal): for work before the run starts.
    pub fn busy(&self, msg: &str) -> live::Busy {
        live::Busy::new(self.show_bar && self.mode == OutputMode::Text, msg)
    }

    /// A transfer: the bar counts bytes (done/total, throughput, ETA) instead of hosts.
    /// `estimate` is what one host is expected to move until it knows (the source's size);
    /// `single_file` adds the slowest destination.
    pub fn with_transfer(mut self, estimate: u64, single_file: bool) -> Self {
        self.kind = LiveKind::Transfer {
            estimate,
            single_file,
        };
        self
    }

    /// A multi-phase job: the bar shows hosts per phase ([`crate::progress::Phase`]).
    pub fn with_phases(mut self) -> Self {
        self.kind = LiveKind::Phases;
        self
    }

    /// Where the operations report bytes and phases for `hosts` hosts: the live bar when one
    /// is shown, nowhere otherwise (`--json`, stderr not a terminal). Call before the run.
    pub fn progress(&mut self, hosts: usize) -> ProgressHandle {
        match self.live_for(hosts) {
            Some(l) => ProgressHandle::new(l),
            None => ProgressHandle::none(),
        }
    }

    fn live_for(&mut self, hosts: usize) -> Option<Arc<Live>> {
        // Never with --json, whatever `with_progress` said: a machine reads that output.
        if !self.show_bar || self.mode != OutputMode::Text || hosts == 0 {
            return None;
        }
        let kind = self.kind.clone();
        Some(
            self.live
                .get_or_insert_with(|| Arc::new(Live::new(kind, hosts)))
                .clone(),
        )
    }

    /// Called by the runner before any host starts.
    pub fn start(&mut self, total: usize) {
        if self.mode == OutputMode::Text
            && let Some(h) = self.header.take()
        {
            self.print(&format!("\n{h}"));
        }
        self.live_for(total);
    }

    fn print(&self, text: &str) {
        let write = || {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
        };
        match &self.live {
            Some(l) => l.bar().suspend(write),
            None => write(),
        }
    }

    /// A warning line on stderr (`[WARNING]: ...`).
    pub fn warn(&self, msg: &str) {
        let write = || eprintln!("[WARNING]: {msg}");
        match &self.live {
            Some(l) => l.bar().suspend(write),
            None => write(),
        }
    }

    /// The text line(s) for one outcome in this reporter's style.
    pub fn format_line(&self, o: &HostOutcome) -> String {
        match &self.style {
            LineStyle::Task => format_task_line(o, self.verbose, self.diff),
            LineStyle::Command => format_command_line(o),
            LineStyle::Custom(f) => f(o, self.verbose),
        }
    }

    /// A host finished.
    pub fn host_done(&mut self, o: &HostOutcome) {
        if !o.changes.is_empty()
            && let Some(j) = self.journal.as_mut()
            && let Err(e) = j.record_outcome(o)
        {
            // The change is made; failing the host now would misreport it. Say it loudly.
            self.warn(&format!(
                "{}: could not record the change in the run journal: {e}",
                o.host
            ));
        }
        if let Some(l) = &self.live {
            l.host_finished(&o.host);
        }
        if self.mode == OutputMode::Text {
            let mut line = self.format_line(o);
            if self.verbose > 0
                && let Some(t) = &o.timing
            {
                if !line.is_empty() {
                    line.push('\n');
                }
                line.push_str(&format_timing(&o.host, t));
            }
            if !line.is_empty() {
                self.print(&line);
            }
        }
    }

    /// End the live display without printing a recap: for commands that print their own
    /// document (`keys audit --json|--csv`) after the run.
    pub fn finish_quiet(&mut self) {
        if let Some(l) = self.live.take() {
            l.finish();
        }
    }

    /// Print the recap (or the JSON document).
    pub fn finish(&mut self, recap: &Recap) {
        if let Some(l) = self.live.take() {
            l.finish();
        }
        let mut out = std::io::stdout().lock();
        match self.mode {
            OutputMode::Text => {
                let _ = writeln!(out, "\n{}", format_recap(recap));
            }
            OutputMode::Json => {
                let doc = recap_json(recap);
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into())
                );
            }
        }
        let _ = out.flush();
        if let Some(j) = &self.journal
            && j.records() > 0
        {
            // stderr: stdout carries the recap (or the JSON document) unchanged.
            eprintln!(
                "journal: run {} recorded {} changed file(s) in {} (`sshfleet runs show {}`, `sshfleet undo {}`)",
                j.run_id(),
                j.records(),
                j.path().display(),
                j.run_id(),
                j.run_id()
            );
        }
    }
}

impl EventSink for Reporter {
    fn run_started(&mut self, hosts: usize) {
        self.start(hosts);
    }
    fn host_finished(&mut self, outcome: &HostOutcome) {
        self.host_done(outcome);
    }
    fn warning(&mut self, msg: &str) {
        self.warn(msg);
    }
}

/// A duration for people: `850 ms`, `1.25 s`, `75.0 s`.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 10_000 {
        format!("{:.2} s", d.as_secs_f64())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// `-v`: where one host's time went, `[h] timing: connect 12 ms, auth 31 ms, work 1.20 s`
/// (`connect failed after 10.0 s` when no connection was made).
pub fn format_timing(host: &str, t: &HostTiming) -> String {
    match (t.connect, t.auth) {
        (Some(c), Some(a)) => format!(
            "[{host}] timing: connect {}, auth {}, work {}",
            human_duration(c),
            human_duration(a),
            human_duration(t.work())
        ),
        _ => format!(
            "[{host}] timing: no connection, {} in all",
            human_duration(t.total)
        ),
    }
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Ok => "ok",
        Status::Changed => "changed",
        Status::Failed => "failed",
        Status::Unreachable => "unreachable",
        Status::Skipped => "skipping",
    }
}

/// `ok: [h]`, `changed: [h]`, `failed: [h] => msg`, `unreachable: [h] => msg`; `-v` adds the
/// result JSON, `--diff` the diff.
pub fn format_task_line(o: &HostOutcome, verbose: u8, diff: bool) -> String {
    let mut s = format!("{}: [{}]", status_word(o.status), o.host);
    let is_bad = matches!(o.status, Status::Failed | Status::Unreachable);
    if verbose > 0 {
        let j = host_json(o);
        s.push_str(&format!(
            " => {}",
            serde_json::to_string_pretty(&j).unwrap_or_default()
        ));
    } else if let Some(msg) = &o.msg
        && (is_bad || o.status == Status::Skipped || !msg.is_empty())
    {
        s.push_str(&format!(" => {msg}"));
    }
    if diff && let Some(d) = &o.diff {
        let text = match d {
            Value::String(t) => t.clone(),
            other => serde_json::to_string_pretty(other).unwrap_or_default(),
        };
        s.push('\n');
        s.push_str(text.trim_end());
    }
    s
}

/// `ansible -m command` style: `h | CHANGED | rc=0 >>` + stdout (+ stderr), or
/// `h | FAILED | rc=1 >>`, or `h | UNREACHABLE! => msg`.
pub fn format_command_line(o: &HostOutcome) -> String {
    let r = &o.result;
    let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    match o.status {
        Status::Unreachable => format!(
            "{} | UNREACHABLE! => {}",
            o.host,
            o.msg.as_deref().unwrap_or("")
        ),
        _ => {
            let word = match o.status {
                Status::Ok => "SUCCESS",
                Status::Changed => "CHANGED",
                Status::Skipped => "SKIPPED",
                _ => "FAILED",
            };
            match r.get("rc").and_then(Value::as_i64) {
                Some(rc) => {
                    let mut s = format!("{} | {word} | rc={rc} >>", o.host);
                    let out = text("stdout");
                    if !out.is_empty() {
                        s.push('\n');
                        s.push_str(out.trim_end_matches('\n'));
                    }
                    let err = text("stderr");
                    if !err.is_empty() {
                        s.push('\n');
                        s.push_str(err.trim_end_matches('\n'));
                    }
                    s
                }
                None => format!("{} | {word}! => {}", o.host, o.msg.as_deref().unwrap_or("")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::recap_of as recap;

    #[test]
    fn recap_is_aligned_like_ansible() {
        use Status::*;
        let text = format_recap(&recap(&[Changed, Unreachable]));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("PLAY RECAP ****"));
        assert_eq!(lines[0].len(), 80);
        assert_eq!(
            lines[1],
            "host00                     : ok=1    changed=1    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0   "
        );
        assert_eq!(
            lines[2],
            "host01                     : ok=0    changed=0    unreachable=1    failed=0    skipped=0    rescued=0    ignored=0   "
        );
    }

    #[test]
    fn task_lines_and_json() {
        let o = HostOutcome::failed("h1", "boom");
        assert_eq!(format_task_line(&o, 0, false), "failed: [h1] => boom");
        let o = HostOutcome::ok("h2", json!({"ping": "pong"}));
        assert_eq!(format_task_line(&o, 0, false), "ok: [h2]");
        assert!(format_task_line(&o, 1, false).contains("\"ping\": \"pong\""));
        let o = HostOutcome::unreachable("h3", "refused");
        assert_eq!(
            format_task_line(&o, 0, false),
            "unreachable: [h3] => refused"
        );
        let r = Recap {
            outcomes: vec![
                HostOutcome::changed("a", json!({"rc": 0})),
                HostOutcome::failed("b", "x"),
            ],
            ..Default::default()
        };
        let j = recap_json(&r);
        assert_eq!(j["hosts"]["a"]["status"], "changed");
        assert_eq!(j["hosts"]["a"]["changed"], true);
        assert_eq!(j["hosts"]["a"]["rc"], 0);
        assert_eq!(j["hosts"]["b"]["failed"], true);
        assert_eq!(j["hosts"]["b"]["msg"], "x");
        assert_eq!(j["stats"]["a"]["ok"], 1);
        assert_eq!(j["stats"]["a"]["changed"], 1);
        assert_eq!(j["stats"]["b"]["failed"], 1);
    }

    #[test]
    fn no_bar_and_no_progress_with_json_even_when_forced() {
        let mut r = Reporter::new(OutputMode::Json, 0)
            .with_progress(true)
            .with_transfer(10, true);
        assert!(!r.progress(3).is_some());
        r.start(3);
        assert!(r.live.is_none());
        let mut off = Reporter::new(OutputMode::Text, 0).with_progress(false);
        assert!(!off.progress(3).is_some());
    }

    #[test]
    fn timings_for_people() {
        let ms = Duration::from_millis;
        let t = HostTiming {
            connect: Some(ms(12)),
            auth: Some(ms(31)),
            total: ms(1243),
        };
        assert_eq!(
            format_timing("h", &t),
            "[h] timing: connect 12 ms, auth 31 ms, work 1.20 s"
        );
        let none = HostTiming {
            total: ms(10_040),
            ..HostTiming::default()
        };
        assert_eq!(
            format_timing("h", &none),
            "[h] timing: no connection, 10.0 s in all"
        );
    }

    #[test]
    fn command_lines_like_ansible_command_module() {
        let o = HostOutcome::changed("h", json!({"rc": 0, "stdout": "hi\n", "stderr": ""}));
        assert_eq!(format_command_line(&o), "h | CHANGED | rc=0 >>\nhi");
        let o = HostOutcome::failed("h", "non-zero return code")
            .with_result(json!({"rc": 2, "stdout": "", "stderr": "nope"}));
        assert_eq!(format_command_line(&o), "h | FAILED | rc=2 >>\nnope");
        let o = HostOutcome::unreachable("h", "timed out");
        assert_eq!(format_command_line(&o), "h | UNREACHABLE! => timed out");
    }
}
