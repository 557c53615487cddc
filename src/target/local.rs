//! [`LocalTarget`]: the [`super::Target`] trait over direct syscalls on this host.

/// The local host.
#[derive(Debug, Default, Clone)]
pub struct LocalTarget;
