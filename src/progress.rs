//! Progress of long operations, as the operations see it: bytes planned and moved per host,
//! and the phase a multi-step job reached on a host.
//!
//! The operations (`ops`) call a [`Progress`] while they work; they never draw
//! anything. On the controller the reporter implements it (a progress bar on a terminal);
//! everywhere else (the Ansible modules, unit tests) it is [`ProgressHandle::none`], which does
//! nothing. Calls come from many host tasks at once, so implementations take `&self` and must
//! be cheap (they are called once per transferred chunk).

use std::fmt;
use std::sync::Arc;

/// A step of a multi-phase host job (a key rotation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// The new key is in `authorized_keys`.
    Added,
    /// A fresh login offering only the new key worked.
    Verified,
    /// The exclusive set was written (old keys gone).
    Set,
}

impl Phase {
    pub const ALL: [Phase; 3] = [Phase::Added, Phase::Verified, Phase::Set];

    /// The word shown to users (`added`, `verified`, `set`).
    pub fn word(self) -> &'static str {
        match self {
            Phase::Added => "added",
            Phase::Verified => "verified",
            Phase::Set => "set",
        }
    }
}

/// Receives progress from operations running on many hosts at once.
pub trait Progress: Send + Sync {
    /// `host` will move `bytes` more bytes in this run. Calls add up; the first one for a
    /// host replaces whatever the watcher estimated for it (a host with nothing to move says
    /// `planned(host, 0)`).
    fn planned(&self, host: &str, bytes: u64);
    /// `host` moved `bytes` more bytes.
    fn transferred(&self, host: &str, bytes: u64);
    /// `host` finished `phase`.
    fn phase(&self, host: &str, phase: Phase);
}

/// An optional, shareable [`Progress`] (what operations and their options carry).
#[derive(Clone, Default)]
pub struct ProgressHandle(Option<Arc<dyn Progress>>);

impl ProgressHandle {
    /// Reports nowhere.
    pub fn none() -> Self {
        ProgressHandle(None)
    }

    pub fn new(p: Arc<dyn Progress>) -> Self {
        ProgressHandle(Some(p))
    }

    pub fn is_some(&self) -> bool {
        self.0.is_some()
    }

    pub fn planned(&self, host: &str, bytes: u64) {
        if let Some(p) = &self.0 {
            p.planned(host, bytes);
        }
    }

    pub fn transferred(&self, host: &str, bytes: u64) {
        if let Some(p) = &self.0 {
            p.transferred(host, bytes);
        }
    }

    pub fn phase(&self, host: &str, phase: Phase) {
        if let Some(p) = &self.0 {
            p.phase(host, phase);
        }
    }
}

impl fmt::Debug for ProgressHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "ProgressHandle(..)"
        } else {
            "ProgressHandle(none)"
        })
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    /// Records every call (for operation tests).
    #[derive(Default)]
    pub struct Recorder {
        pub planned: Mutex<HashMap<String, u64>>,
        pub moved: Mutex<HashMap<String, u64>>,
        pub phases: Mutex<Vec<(String, Phase)>>,
    }

    impl Progress for Recorder {
        fn planned(&self, host: &str, bytes: u64) {
            *self.planned.lock().unwrap().entry(host.into()).or_default() += bytes;
        }
        fn transferred(&self, host: &str, bytes: u64) {
            *self.moved.lock().unwrap().entry(host.into()).or_default() += bytes;
        }
        fn phase(&self, host: &str, phase: Phase) {
            self.phases.lock().unwrap().push((host.into(), phase));
        }
    }
}
