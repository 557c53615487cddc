//! slurp, copy and one-to-many replicate.

/// A `slurp`, `copy` or `replicate` invocation, as domain configuration.
#[derive(Debug, Clone)]
pub enum FilesCommand {}
