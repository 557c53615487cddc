//! authorized_key management and lock-out-safe rotation across the fleet.

/// A `keys` subcommand, as domain configuration.
#[derive(Debug, Clone)]
pub enum KeysCommand {}
