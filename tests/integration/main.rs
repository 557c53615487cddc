//! Integration tests: one binary, one shared harness (`support`), real OpenSSH sshd fleets
//! on loopback and real ansible-core.

mod support;

mod ansible_config;
mod audit;
mod auth;
mod cli;
mod collection;
mod fleet;
mod hostile;
mod hostkeys;
mod hostkeys_scan;
mod inventory;
mod journal;
mod keys;
mod modules_authorized_key;
mod modules_files;
mod playbooks;
mod properties;
mod proxy;
mod reliability;
mod replicate;
mod sessions;
mod ssh;
mod ssh_config;
mod upstream;
mod ux;
