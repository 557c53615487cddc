//! Integration tests: one binary, one shared harness (`support`), real OpenSSH sshd fleets
//! on loopback and real ansible-core.

mod support;

mod cli;
