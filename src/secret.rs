//! [`Secret`]: a password or passphrase that must never reach output, logs, JSON, process
//! arguments or a remote environment.
//!
//! `Debug` and `Display` print `<secret>`, there is no `Serialize`, and the bytes are wiped
//! when the last copy is dropped. The only way to the text is [`Secret::expose`], so every
//! place that sends a secret anywhere is easy to find (`grep expose`).

use std::sync::Arc;

/// A secret string (login password, become password, key passphrase).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<Wiped>);

#[derive(PartialEq, Eq)]
struct Wiped(String);

impl Drop for Wiped {
    fn drop(&mut self) {
        // SAFETY: overwriting initialised bytes with zeros keeps the String valid UTF-8.
        unsafe {
            for b in self.0.as_bytes_mut() {
                std::ptr::write_volatile(b, 0);
            }
        }
    }
}

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(Arc::new(Wiped(s.into())))
    }

    /// The secret text: only for sending it where it belongs (an SSH auth request, sudo's or
    /// su's stdin).
    pub fn expose(&self) -> &str {
        &self.0.0
    }

    /// Read a secret from the environment variable `var`; `None` when unset.
    pub fn from_env(var: &str) -> Option<Self> {
        std::env::var(var).ok().map(Secret::new)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

/// Where a command-line secret comes from (`-k`/`-K` or `--*-env VAR`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SecretSource {
    /// Not given.
    #[default]
    None,
    /// Ask on the terminal (`-k`, `-K`).
    Prompt,
    /// This environment variable (`--password-env`, `--become-password-env`).
    Env(String),
}

impl SecretSource {
    /// From a prompt flag and an env-var flag (the env var wins: it is the explicit,
    /// non-interactive choice).
    pub fn from_flags(prompt: bool, env: Option<String>) -> Self {
        match (env, prompt) {
            (Some(v), _) => SecretSource::Env(v),
            (None, true) => SecretSource::Prompt,
            (None, false) => SecretSource::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "<secret> <secret>");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(<secret>)");
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(s, Secret::new("hunter2"));
    }
}
