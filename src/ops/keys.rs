//! Reading and planning `authorized_keys` over a [`crate::target::Target`], beyond the
//! `authorized_key` operation itself: [`list`] (a user's keys with fingerprints) and [`plan`]
//! (the exclusive set a rotation applies). The fleet commands that use them are in the
//! controller's `commands::keys`.

pub mod list;
pub mod plan;
