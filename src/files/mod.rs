//! File specs shared by slurp, copy and replicate (pure; no I/O).
//!
//! - [`spec`]: where each source file goes (Ansible's copy rules for trailing slashes,
//!   directories and several sources; the fetch layout `DIR/HOST/PATH`), path checks.
//! - [`expand`]: `~`, `~user` and `$VAR` in paths (Ansible's rule on the managed host).
//! - [`mode`]: octal and symbolic modes.
//! - [`owner`]: owner/group by name or number.
//! - [`checksum`]: sha256 of bytes and of streams.
//! - [`plan`]: the per-file decision (create / replace / fix attributes / nothing / keep) and
//!   the attributes and precondition of the atomic write.
//! - [`diff`]: unified diffs for `--diff`, "binary files differ" otherwise, and Ansible's diff
//!   object.

pub mod checksum;
pub mod diff;
pub mod expand;
pub mod mode;
pub mod owner;
pub mod plan;
pub mod spec;
