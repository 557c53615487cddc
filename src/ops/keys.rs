//! Reading and planning `authorized_keys` over a [`crate::target::Target`], beyond the
//! `authorized_key` operation itself: [`list`] (a user's keys with fingerprints), [`plan`]
//! (the exclusive set a rotation applies), [`audit`] (every account's key files as sshd
//! would read them) and [`revoke`] (a key removed from all of them). The fleet commands that use them are in the
//! controller's `commands::keys`.

pub mod audit;
pub mod list;
pub mod plan;
pub mod revoke;
