//! `SshTarget`: the [`super::Target`] trait over one russh connection.
