//! sshfleet: fleet-wide `authorized_keys` rotation and content replication over SSH.
//!
//! One implementation of each operation ([`ops`]), written against the [`target::Target`]
//! trait, and two drivers: the `sshfleet` CLI runs operations over SSH on many hosts in
//! parallel, and the Ansible binary modules ([`module`]) run the same operations on the local
//! host. See `ARCHITECTURE.md` for the layers; in short, bottom up:
//!
//! - single-host core (also in the module binaries): [`authorized_keys`], [`files`] and
//!   [`known_hosts`] (file models), [`target`] (the host abstraction and the local host), [`ops`]
//!   and the [`progress`] they report, [`module`];
//! - controller (feature `controller`): `ansible_config` (ansible.cfg and `ANSIBLE_*`),
//!   `inventory`, `ssh_config` (OpenSSH client config resolution), `ssh` (transport and
//!   `SshTarget`),
//!   `events`, `fleet` (runner), `report`, `error`, `commands` (drivers), `run`, `cli`;
//! - `testfleet` (feature `testfleet`): a local fleet of real sshd hosts for tests and demos.

pub mod authorized_keys;
pub mod files;
pub mod keyaudit;
pub mod known_hosts;
pub mod module;
pub mod ops;
pub mod progress;
pub mod secret;
pub mod target;

#[cfg(feature = "controller")]
pub mod ansible_config;
#[cfg(feature = "controller")]
pub mod cli;
#[cfg(feature = "controller")]
pub mod commands;
#[cfg(feature = "controller")]
pub mod error;
#[cfg(feature = "controller")]
pub mod events;
#[cfg(feature = "controller")]
pub mod fleet;
#[cfg(feature = "controller")]
pub mod inventory;
#[cfg(feature = "controller")]
pub mod journal;
#[cfg(feature = "controller")]
pub mod report;
#[cfg(feature = "controller")]
pub mod run;
#[cfg(feature = "controller")]
pub mod ssh;
#[cfg(feature = "controller")]
pub mod ssh_config;
#[cfg(feature = "testfleet")]
pub mod testfleet;
