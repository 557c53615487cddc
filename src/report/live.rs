//! The live progress display of one run (stderr, terminal only): what the bar shows while
//! hosts work, fed by the runner (hosts finishing) and by the operations ([`Progress`]:
//! bytes planned and moved, phases reached).
//!
//! Three kinds of bar ([`LiveKind`]):
//! - hosts: `[00:00:03] ████░░░░ 4/10 hosts`;
//! - transfer (`replicate`, `copy`, `slurp`): bytes done / total, throughput, ETA, hosts done,
//!   and for a single file the slowest destination still working:
//!   `[00:00:03] ████░░░░ 1.20 GiB/2.50 GiB 412.3 MiB/s ETA 3s · 4/10 hosts · slowest host07 31%`;
//! - phases (rotation): hosts per phase: `4/10 hosts · added 9 · verified 7 · set 4`.
//!
//! The total of a transfer starts as the driver's estimate per host (the whole source) and is
//! corrected as each host learns what it really needs (hosts already current move nothing) and
//! as hosts finish (a failed host's remainder leaves the total). Redrawn at most 10 times a
//! second; the reporter clears it before the recap, so the recap is the same with or without it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::progress::{Phase, Progress};

/// Redraws per second, at most.
pub const REDRAW_HZ: u8 = 10;
/// How often the message part (hosts, slowest destination) is recomputed during a transfer.
const MESSAGE_EVERY: Duration = Duration::from_millis(100);

/// What the bar counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveKind {
    /// Hosts finished out of hosts selected.
    Hosts,
    /// Bytes moved; `estimate` is each host's expected bytes until it reports its own plan;
    /// `single_file` adds the slowest destination.
    Transfer { estimate: u64, single_file: bool },
    /// Hosts finished, plus hosts per [`Phase`].
    Phases,
}

#[derive(Debug, Default, Clone, Copy)]
struct HostBytes {
    /// What the host said it will move (`None` until it says).
    planned: Option<u64>,
    done: u64,
    finished: bool,
}

impl HostBytes {
    /// This host's share of the total.
    fn contribution(&self, estimate: u64) -> u64 {
        if self.finished {
            self.done
        } else {
            self.planned.unwrap_or(estimate).max(self.done)
        }
    }
}

/// The counters behind the bar; pure (no drawing), so the arithmetic is tested on its own.
#[derive(Debug, Default)]
pub struct Tally {
    estimate: u64,
    hosts: HashMap<String, HostBytes>,
    /// Hosts selected.
    pub selected: usize,
    /// Hosts finished.
    pub finished: usize,
    /// Bytes moved so far (all hosts).
    pub done: u64,
    /// Bytes expected in all (see the module docs).
    pub total: u64,
    phases: [usize; 3],
}

impl Tally {
    pub fn new(selected: usize, estimate: u64) -> Self {
        Tally {
            estimate,
            selected,
            total: estimate.saturating_mul(selected as u64),
            ..Tally::default()
        }
    }

    fn update(&mut self, host: &str, f: impl FnOnce(&mut HostBytes)) {
        let est = self.estimate;
        // A host not seen before counts its estimate in the total already.
        let h = self.hosts.entry(host.to_string()).or_default();
        let before = h.contribution(est);
        f(h);
        let after = h.contribution(est);
        self.total = self.total.saturating_sub(before).saturating_add(after);
    }

    pub fn planned(&mut self, host: &str, bytes: u64) {
        self.update(host, |h| h.planned = Some(h.planned.unwrap_or(0) + bytes));
    }

    pub fn transferred(&mut self, host: &str, bytes: u64) {
        self.done += bytes;
        self.update(host, |h| h.done += bytes);
    }

    pub fn host_finished(&mut self, host: &str) {
        self.finished += 1;
        self.update(host, |h| h.finished = true);
    }

    pub fn phase(&mut self, phase: Phase) {
        let i = Phase::ALL.iter().position(|p| *p == phase).unwrap_or(0);
        self.phases[i] += 1;
    }

    /// Hosts that reached `phase`.
    pub fn in_phase(&self, phase: Phase) -> usize {
        let i = Phase::ALL.iter().position(|p| *p == phase).unwrap_or(0);
        self.phases[i]
    }

    /// The unfinished host with the smallest share of its bytes moved, among those that know
    /// what they move and move something: `(host, percent)`.
    pub fn slowest(&self) -> Option<(&str, u64)> {
        self.hosts
            .iter()
            .filter(|(_, h)| !h.finished && h.planned.is_some_and(|p| p > 0))
            .map(|(name, h)| {
                let p = h.planned.unwrap_or(1).max(1);
                (name.as_str(), (h.done.min(p) * 100) / p)
            })
            .min_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(b.0)))
    }

    /// The message part of the bar for `kind`.
    pub fn message(&self, kind: &LiveKind) -> String {
        let mut s = format!("{}/{} hosts", self.finished, self.selected);
        match kind {
            LiveKind::Hosts => {}
            LiveKind::Transfer { single_file, .. } => {
                if *single_file
                    && self.finished + 1 < self.selected
                    && let Some((host, pct)) = self.slowest()
                {
                    s.push_str(&format!(" · slowest {host} {pct}%"));
                }
            }
            LiveKind::Phases => {
                for p in Phase::ALL {
                    s.push_str(&format!(" · {} {}", p.word(), self.in_phase(p)));
                }
            }
        }
        s
    }
}

/// The bar and its counters; shared with the operations as a [`Progress`].
pub struct Live {
    kind: LiveKind,
    bar: ProgressBar,
    state: Mutex<(Tally, Instant)>,
}

impl Live {
    /// A bar for `selected` hosts, drawn on stderr (the caller checked it is a terminal).
    pub fn new(kind: LiveKind, selected: usize) -> Self {
        let estimate = match kind {
            LiveKind::Transfer { estimate, .. } => estimate,
            _ => 0,
        };
        let tally = Tally::new(selected, estimate);
        let (len, template) = match kind {
            LiveKind::Transfer { .. } => (
                tally.total,
                "{spinner} [{elapsed_precise}] {bar:30} {binary_bytes}/{binary_total_bytes} \
                 {binary_bytes_per_sec} ETA {eta} · {msg}",
            ),
            _ => (
                selected as u64,
                "{spinner} [{elapsed_precise}] {bar:40} {msg}",
            ),
        };
        let bar =
            ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr_with_hz(REDRAW_HZ));
        bar.set_style(
            ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(tally.message(&kind));
        bar.enable_steady_tick(Duration::from_millis(1000 / u64::from(REDRAW_HZ)));
        Live {
            kind,
            bar,
            state: Mutex::new((tally, Instant::now())),
        }
    }

    pub fn bar(&self) -> &ProgressBar {
        &self.bar
    }

    fn with<R>(&self, force_message: bool, f: impl FnOnce(&mut Tally) -> R) -> R {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let before = st.0.done;
        let r = f(&mut st.0);
        let tally = &st.0;
        if before == 0 && tally.done > 0 {
            // Rate and ETA from the first byte on, not from the start (connecting, hashing
            // and waiting for the wave are not throughput).
            self.bar.reset_eta();
        }
        if matches!(self.kind, LiveKind::Transfer { .. }) {
            self.bar.set_length(tally.total.max(tally.done));
            self.bar.set_position(tally.done);
        } else {
            self.bar.set_position(tally.finished as u64);
        }
        if force_message || st.1.elapsed() >= MESSAGE_EVERY {
            self.bar.set_message(st.0.message(&self.kind));
            st.1 = Instant::now();
        }
        r
    }

    /// A host's job ended.
    pub fn host_finished(&self, host: &str) {
        self.with(true, |t| t.host_finished(host));
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Live {
    fn planned(&self, host: &str, bytes: u64) {
        self.with(false, |t| t.planned(host, bytes));
    }
    fn transferred(&self, host: &str, bytes: u64) {
        self.with(false, |t| t.transferred(host, bytes));
    }
    fn phase(&self, _host: &str, phase: Phase) {
        self.with(true, |t| t.phase(phase));
    }
}

/// A spinner with a message for work before the hosts start (e.g. hashing the source of a
/// replication), cleared when dropped. Shown only where the bar would be.
pub struct Busy(Option<ProgressBar>);

impl Busy {
    pub fn new(show: bool, msg: &str) -> Self {
        if !show {
            return Busy(None);
        }
        let bar =
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(REDRAW_HZ));
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(msg.to_string());
        bar.enable_steady_tick(Duration::from_millis(1000 / u64::from(REDRAW_HZ)));
        Busy(Some(bar))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Some(b) = self.0.take() {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_follows_what_hosts_really_move() {
        // 3 hosts, 100 bytes expected each.
        let mut t = Tally::new(3, 100);
        assert_eq!(t.total, 300);
        // a is already current: it moves nothing.
        t.planned("a", 0);
        assert_eq!(t.total, 200);
        t.host_finished("a");
        assert_eq!((t.total, t.finished), (200, 1));
        // b moves 60 of its 100 then fails: its remainder leaves the total.
        t.planned("b", 100);
        t.transferred("b", 60);
        assert_eq!((t.done, t.total), (60, 200));
        t.host_finished("b");
        assert_eq!(t.total, 160);
        // c moves everything.
        t.planned("c", 100);
        t.transferred("c", 100);
        t.host_finished("c");
        assert_eq!((t.done, t.total, t.finished), (160, 160, 3));
    }

    #[test]
    fn plans_add_up_and_replace_the_estimate() {
        let mut t = Tally::new(1, 0); // slurp: nothing known in advance
        t.planned("h", 10);
        t.planned("h", 5);
        assert_eq!(t.total, 15);
        t.transferred("h", 15);
        assert_eq!(t.done, 15);
    }

    #[test]
    fn slowest_is_the_unfinished_host_with_the_smallest_share() {
        let mut t = Tally::new(3, 1000);
        for h in ["a", "b", "c"] {
            t.planned(h, 1000);
        }
        t.transferred("a", 900);
        t.transferred("b", 200);
        t.transferred("c", 1000);
        t.host_finished("c");
        assert_eq!(t.slowest(), Some(("b", 20)));
        let kind = LiveKind::Transfer {
            estimate: 1000,
            single_file: true,
        };
        assert_eq!(t.message(&kind), "1/3 hosts · slowest b 20%");
        let many = LiveKind::Transfer {
            estimate: 1000,
            single_file: false,
        };
        assert_eq!(t.message(&many), "1/3 hosts");
    }

    #[test]
    fn phases_are_counted_per_phase() {
        let mut t = Tally::new(2, 0);
        t.phase(Phase::Added);
        t.phase(Phase::Added);
        t.phase(Phase::Verified);
        t.host_finished("x");
        assert_eq!(
            t.message(&LiveKind::Phases),
            "1/2 hosts · added 2 · verified 1 · set 0"
        );
    }
}
