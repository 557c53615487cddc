//! The operations, written once against [`crate::target::Target`]: authorized_key, slurp,
//! copy, rotate, replicate.

pub mod authorized_key;
pub mod copy;
pub mod expand;
pub mod keys;
pub mod replicate;
pub mod slurp;
pub mod sshd;
