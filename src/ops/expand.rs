//! Expansion of `~`, `~user` and `$VAR` in a path on the target, for the user the target
//! runs as (the become user under become), as an Ansible module would expand it there
//! ([`crate::files::expand`]). One round trip (`env -0`) when the path has a `~` or `$`;
//! none otherwise; `~user` is a user database lookup.

use crate::files::expand::{expand_user, expand_vars, needs_expansion, tilde_user};
use crate::target::{TResult, Target, TargetError};

/// `path` with `$VAR`s from the target session's environment and a leading `~`/`~user`
/// replaced by the home directory.
pub async fn expand_path<T: Target>(t: &T, path: &str) -> TResult<String> {
    if !needs_expansion(path) {
        return Ok(path.to_string());
    }
    let env = session_env(t).await?;
    let get = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let p = expand_vars(path, get);
    let home = match tilde_user(&p) {
        None => None,
        Some("") => match get("HOME") {
            Some(h) => Some(h),
            None => {
                let me = run_ok(t, &["id", "-un"]).await?;
                t.lookup_user(me.trim()).await?.map(|u| u.home)
            }
        },
        Some(name) => t.lookup_user(name).await?.map(|u| u.home),
    };
    Ok(expand_user(&p, home.as_deref()))
}

/// The environment of a command run on the target (`env -0`), in order.
async fn session_env<T: Target>(t: &T) -> TResult<Vec<(String, String)>> {
    let out = run_ok(t, &["env", "-0"]).await?;
    Ok(out
        .split('\0')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

async fn run_ok<T: Target>(t: &T, argv: &[&str]) -> TResult<String> {
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    let out = t.run(&argv, None).await?;
    if out.status != 0 {
        return Err(TargetError::Other(format!(
            "expanding a path: {} exited {}: {}",
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::local::LocalTarget;

    #[tokio::test]
    async fn expands_in_the_target_session() {
        let t = LocalTarget::new();
        let home = std::env::var("HOME").unwrap();
        assert_eq!(expand_path(&t, "~/x").await.unwrap(), format!("{home}/x"));
        assert_eq!(
            expand_path(&t, "$HOME/y").await.unwrap(),
            format!("{home}/y")
        );
        assert_eq!(expand_path(&t, "/srv/a~b").await.unwrap(), "/srv/a~b");
        assert_eq!(expand_path(&t, "~root").await.unwrap(), "/root");
        assert_eq!(
            expand_path(&t, "~no-such-user-sshfleet/x").await.unwrap(),
            "~no-such-user-sshfleet/x"
        );
    }
}
