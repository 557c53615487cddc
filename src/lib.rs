//! sshfleet: fleet-wide `authorized_keys` rotation and content replication over SSH.
//!
//! One implementation of each operation ([`ops`]), written against the [`target::Target`]
//! trait, and two drivers: the `sshfleet` CLI runs operations over SSH on many hosts in
//! parallel ([`fleet`]), and the Ansible binary modules ([`module`]) run the same operations
//! on the local host. Parsing and editing ([`inventory`], [`authorized_keys`], [`files`]) are
//! pure functions with unit tests beside them.

pub mod authorized_keys;
pub mod error;
pub mod files;
pub mod inventory;
pub mod module;
pub mod ops;
pub mod target;

#[cfg(feature = "controller")]
pub mod cli;
#[cfg(feature = "controller")]
pub mod fleet;
#[cfg(feature = "controller")]
pub mod report;
#[cfg(feature = "controller")]
pub mod run;
#[cfg(feature = "controller")]
pub mod ssh;
#[cfg(feature = "controller")]
pub mod testfleet;
