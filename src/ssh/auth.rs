//! Password authentication (`-k`, `ansible_password`): OpenSSH's order after the keys —
//! `keyboard-interactive` when the server offers it (PAM), then `password` — each tried with
//! the one password at most once, so a wrong password is one failed attempt per method,
//! never a loop.
//!
//! The password goes only into the SSH authentication request; it is never put in a
//! message (see [`crate::secret::Secret`]).

use russh::MethodKind;
use russh::client::{self, KeyboardInteractiveAuthResponse};

use crate::secret::Secret;

/// Rounds of keyboard-interactive prompts answered at most (PAM stacks ask for the password,
/// then may send an empty info request).
const KBD_ROUNDS: usize = 4;

/// Try `password` for `user`; `Ok(true)` when logged in. Appends what was tried to `tried`.
pub async fn try_password<H: client::Handler>(
    handle: &mut client::Handle<H>,
    user: &str,
    password: &Secret,
    tried: &mut Vec<String>,
) -> Result<bool, russh::Error> {
    // What does the server still accept? (one cheap round trip, only when a password is set)
    let methods: Vec<MethodKind> = match handle.authenticate_none(user).await? {
        client::AuthResult::Success => return Ok(true),
        client::AuthResult::Failure {
            remaining_methods, ..
        } => remaining_methods.iter().copied().collect(),
    };
    let offered = |m: MethodKind| methods.contains(&m);
    if offered(MethodKind::KeyboardInteractive) {
        if keyboard_interactive(handle, user, password).await? {
            return Ok(true);
        }
        tried.push("keyboard-interactive (password refused)".into());
    }
    if offered(MethodKind::Password) {
        if handle
            .authenticate_password(user, password.expose())
            .await?
            .success()
        {
            return Ok(true);
        }
        tried.push("password (refused)".into());
    }
    if !offered(MethodKind::Password) && !offered(MethodKind::KeyboardInteractive) {
        tried.push(format!(
            "password (the server does not accept passwords; it offers: {})",
            methods
                .iter()
                .map(<&str>::from)
                .collect::<Vec<_>>()
                .join(",")
        ));
    }
    Ok(false)
}

/// Whether a keyboard-interactive prompt asks for the password: a prompt without echo, or
/// one that says "password" (PAM's "Password: ", localized ones without echo).
pub fn is_password_prompt(prompt: &str, echo: bool) -> bool {
    !echo || prompt.to_ascii_lowercase().contains("password")
}

async fn keyboard_interactive<H: client::Handler>(
    handle: &mut client::Handle<H>,
    user: &str,
    password: &Secret,
) -> Result<bool, russh::Error> {
    let mut resp = handle
        .authenticate_keyboard_interactive_start(user, None)
        .await?;
    let mut answered = false;
    for _ in 0..KBD_ROUNDS {
        match resp {
            KeyboardInteractiveAuthResponse::Success => return Ok(true),
            KeyboardInteractiveAuthResponse::Failure { .. } => return Ok(false),
            KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                let mut answers = Vec::with_capacity(prompts.len());
                for p in &prompts {
                    if is_password_prompt(&p.prompt, p.echo) {
                        // A second password prompt means the first answer was wrong.
                        if answered {
                            return Ok(false);
                        }
                        answers.push(password.expose().to_string());
                    } else {
                        answers.push(String::new());
                    }
                }
                answered |= answers.iter().any(|a| !a.is_empty());
                resp = handle
                    .authenticate_keyboard_interactive_respond(answers)
                    .await?;
            }
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_prompts() {
        assert!(is_password_prompt("Password: ", false));
        assert!(is_password_prompt("deploy's Password:", true));
        assert!(is_password_prompt("Passwort: ", false));
        assert!(!is_password_prompt("Verification code: ", true));
    }
}
