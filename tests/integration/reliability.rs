//! Reliability (issue 9): tests that try to break the two promises — nothing lost, nobody
//! locked out — with real faults against the real OpenSSH test fleet, plus the replay of the
//! fuzz corpus. `RELIABILITY.md` (repo root) lists every fault and input tried and the test
//! that shows what happens.
//!
//! - [`rotation`]: sshd killed between "add" and "verify" of a rotation; authorized_keys
//!   changed by someone else during a rotation; two concurrent edits of the same files.
//! - [`faults`]: stalled host, impostor host key, MaxStartups burst, SIGINT of a 100-host
//!   run, full / read-only file system, permission denied, missing user, symlinked
//!   authorized_keys, `~/.ssh` with wrong modes.
//! - [`replicate`]: connection cut mid-stream, full / read-only destination, Ctrl-C in the
//!   middle of a large transfer.
//! - [`resume`]: the controller SIGKILLed at five points of a rotation, then the same
//!   command again (issue 20); the replicate equivalent is in [`replicate`].
//! - [`corpus`]: every file of `fuzz/corpus/*/` fed to the fuzz entry points (no panic).
//!
//! Helpers shared with `hostile` live in [`util`].

mod corpus;
mod faults;
mod replicate;
mod resume;
mod rotation;
pub mod util;
