//! The operations, written once against [`crate::target::Target`]: authorized_key, slurp,
//! copy, rotate, replicate.

pub mod keys;
pub mod replicate;
