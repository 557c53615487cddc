//! The `authorized_keys` file model: parse, edit (present / absent / exclusive), render,
//! plus public key parsing and key pair generation (pure).

/// A key or key list that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Invalid(String),
}
