//! `keys audit` on one host: gather, through any [`Target`], what [`crate::keyaudit`]
//! analyses: the accounts (`getent passwd`, `getent shadow` when root), sshd's effective
//! settings per account (`sshd -T -C user=U,host=H,addr=A,...`, so `Match` blocks apply),
//! the files each account's `AuthorizedKeysFile` names, their `StrictModes` facts (realpath
//! and the stat of every directory up to `/`), and their content.
//!
//! Three commands and one read per file, whatever the number of accounts. Without root
//! (`sshd -T` needs the host keys; other users' files are often unreadable) the result says
//! in [`HostAudit::not_seen`] and per file ([`FileState::Unseen`]) what could not be seen.

use std::collections::HashMap;

use crate::keyaudit::accounts::{login_accounts, parse_passwd, parse_shadow_locks};
use crate::keyaudit::sshd::{
    ConfigSource, RootRule, SshdAuth, expand_keys_file, parse_sshd_config_global, parse_sshd_t,
    root_key_rule,
};
use crate::keyaudit::strict::{
    PathReport, Unusable, UserGroups, Who, is_debian_openssh, parse_stat_report, verdict,
};
use crate::keyaudit::{
    AccountAudit, FileAudit, FileState, HostAudit, keys_refused, other_ways, read_file_keys,
};
use crate::target::{TResult, Target, TargetError};

use super::list::MAX_FILE;

/// The connection `Match` blocks are evaluated for (`sshd -T -C`): where the controller
/// connects from and to, as sshd saw it (`SSH_CONNECTION`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchConn {
    /// Client address (used for both `host=` and `addr=`: sshd runs with `UseDNS no` by
    /// default, so `Match Host` sees the address).
    pub addr: String,
    pub laddr: Option<String>,
    pub lport: Option<u16>,
}

impl MatchConn {
    /// From `SSH_CONNECTION` (`client_ip client_port server_ip server_port`).
    pub fn from_ssh_connection(s: &str) -> Option<MatchConn> {
        let f: Vec<&str> = s.split_whitespace().collect();
        if f.len() != 4 {
            return None;
        }
        Some(MatchConn {
            addr: f[0].to_string(),
            laddr: Some(f[2].to_string()),
            lport: f[3].parse().ok(),
        })
    }

    /// The `-C` specification after `user=U,`.
    pub fn spec(&self) -> String {
        let mut s = format!("host={},addr={}", self.addr, self.addr);
        if let Some(l) = &self.laddr {
            s.push_str(&format!(",laddr={l}"));
        }
        if let Some(p) = self.lport {
            s.push_str(&format!(",lport={p}"));
        }
        s
    }
}

const FACTS: &str = "id -u; echo @@; getent passwd; echo @@; getent shadow 2>/dev/null; echo @@; getent group; echo @@; ssh -V 2>&1; true";

const SSHD_T: &str = r#"PATH="$PATH:/usr/sbin:/sbin"; c=$1; shift
for u in "$@"; do
  printf '@@U %s\n' "$u"
  printf '@@G %s\n' "$(id -G -- "$u" 2>/dev/null)"
  if out=$(sshd -T -C "user=$u,$c" 2>&1); then printf '%s\n@@OK\n' "$out"; else printf '%s\n@@FAIL\n' "$out"; fi
done"#;

const STATS: &str = r#"n=$1; shift; i=0
for p in "$@"; do
  i=$((i+1))
  if [ "$i" -gt "$n" ]; then printf 'H %s\n' "$(realpath -e -- "$p" 2>/dev/null)"; continue; fi
  printf 'P %s\n' "$p"
  if r=$(realpath -e -- "$p" 2>/dev/null); then
    printf 'R %s\n' "$r"; d=$r
    while :; do
      stat -c 'S %F|%u|%g|%a|%n' -- "$d" 2>/dev/null || printf 'E %s\n' "$d"
      [ "$d" = / ] && break
      d=$(dirname -- "$d")
    done
  else
    d=$(dirname -- "$p")
    while [ ! -d "$d" ]; do d=$(dirname -- "$d"); done
    if [ -x "$d" ]; then printf 'M\n'; else printf 'U\n'; fi
  fi
done"#;

fn sh(script: &str, args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut v = vec!["sh".to_string(), "-c".into(), script.into(), "sh".into()];
    v.extend(args);
    v
}

async fn run_text<T: Target>(t: &T, argv: Vec<String>) -> TResult<String> {
    let out = t.run(&argv, None).await?;
    if out.status != 0 {
        return Err(TargetError::Other(format!(
            "{}: exit {}: {}",
            argv.get(2)
                .map(|s| s.lines().next().unwrap_or(""))
                .unwrap_or(""),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One account's `sshd -T` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SshdAnswer {
    groups: Vec<u32>,
    /// The output, or the error text when `sshd -T` failed.
    result: Result<String, String>,
}

/// Parse the `SSHD_T` script's output per user.
fn parse_sshd_answers(text: &str) -> HashMap<String, SshdAnswer> {
    let mut out = HashMap::new();
    let mut cur: Option<(String, Vec<u32>, String)> = None;
    for line in text.lines() {
        if let Some(u) = line.strip_prefix("@@U ") {
            cur = Some((u.to_string(), vec![], String::new()));
        } else if let Some(g) = line.strip_prefix("@@G") {
            if let Some(c) = &mut cur {
                c.1 = g
                    .split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect();
            }
        } else if line == "@@OK" || line == "@@FAIL" {
            if let Some((u, groups, body)) = cur.take() {
                let result = if line == "@@OK" {
                    Ok(body)
                } else {
                    Err(body.trim().lines().next().unwrap_or("failed").to_string())
                };
                out.insert(u, SshdAnswer { groups, result });
            }
        } else if let Some(c) = &mut cur {
            c.2.push_str(line);
            c.2.push('\n');
        }
    }
    out
}

/// Audit one host. `login_user` is who the connection logged in as (for messages).
pub async fn gather<T: Target>(t: &T, login_user: &str, conn: &MatchConn) -> TResult<HostAudit> {
    let facts = run_text(t, sh(FACTS, [])).await?;
    let mut parts = facts.splitn(5, "@@\n");
    let uid: Option<u32> = parts.next().and_then(|s| s.trim().parse().ok());
    let passwd = parse_passwd(parts.next().unwrap_or(""));
    let shadow = parse_shadow_locks(parts.next().unwrap_or(""));
    let group_text = parts.next().unwrap_or("");
    let version = parts.next().unwrap_or("").trim().to_string();
    let user_groups = is_debian_openssh(&version).then(|| {
        UserGroups::new(
            passwd
                .iter()
                .map(|u| (u.name.clone(), u.uid, u.gid))
                .collect(),
            group_text,
        )
    });
    let privileged = uid == Some(0);
    let mut not_seen = Vec::new();
    if shadow.is_empty() {
        not_seen.push(format!(
            "lock state of accounts (getent shadow needs root; {login_user} is not root: use -b)"
        ));
    }
    let accounts = login_accounts(&passwd);

    // sshd's settings per account.
    let answers = run_text(
        t,
        sh(
            SSHD_T,
            std::iter::once(conn.spec()).chain(accounts.iter().map(|a| a.name.clone())),
        ),
    )
    .await?;
    let answers = parse_sshd_answers(&answers);
    let mut fallback: Option<SshdAuth> = None;
    let mut sshd_error: Option<String> = None;
    let mut settings = Vec::new();
    for a in &accounts {
        let ans = answers.get(&a.name);
        let s = match ans.map(|x| &x.result) {
            Some(Ok(text)) => parse_sshd_t(text),
            other => {
                if sshd_error.is_none() {
                    sshd_error = Some(match other {
                        Some(Err(e)) => e.clone(),
                        _ => "no answer".into(),
                    });
                }
                if fallback.is_none() {
                    fallback = Some(match t.read("/etc/ssh/sshd_config", MAX_FILE).await {
                        Ok(b) => {
                            let (s, partial) =
                                parse_sshd_config_global(&String::from_utf8_lossy(&b));
                            if partial {
                                not_seen.push(
                                    "Match blocks and Include files of /etc/ssh/sshd_config were not applied".into(),
                                );
                            }
                            s
                        }
                        Err(e) => {
                            not_seen.push(format!(
                                "/etc/ssh/sshd_config ({e}): OpenSSH's defaults assumed"
                            ));
                            SshdAuth::default()
                        }
                    });
                }
                fallback.clone().unwrap_or_default()
            }
        };
        settings.push(s);
    }
    if let Some(e) = &sshd_error {
        not_seen.insert(
            0,
            format!(
                "sshd's effective configuration: `sshd -T` failed as {login_user} ({e}); it needs root (use -b); settings taken from the global section of /etc/ssh/sshd_config"
            ),
        );
    }

    // The files, and their StrictModes facts.
    let mut per_account: Vec<Vec<Result<String, String>>> = Vec::new();
    let mut paths: Vec<String> = Vec::new();
    for (a, s) in accounts.iter().zip(&settings) {
        let files: Vec<Result<String, String>> = s
            .authorized_keys_files
            .iter()
            .map(|p| expand_keys_file(p, &a.name, &a.home, a.uid))
            .collect();
        for p in files.iter().flatten() {
            if !paths.contains(p) {
                paths.push(p.clone());
            }
        }
        per_account.push(files);
    }
    let homes: Vec<String> = accounts.iter().map(|a| a.home.clone()).collect();
    let stats = run_text(
        t,
        sh(
            STATS,
            std::iter::once(paths.len().to_string())
                .chain(paths.iter().cloned())
                .chain(homes.iter().cloned()),
        ),
    )
    .await?;
    let home_real: Vec<String> = stats
        .lines()
        .filter_map(|l| l.strip_prefix("H").map(|r| r.trim_start().to_string()))
        .collect();
    let reports: HashMap<String, PathReport> = parse_stat_report(&stats).into_iter().collect();

    let mut out_accounts = Vec::new();
    for (i, a) in accounts.iter().enumerate() {
        let s = &settings[i];
        let locked = shadow.iter().find(|(n, _)| *n == a.name).map(|(_, l)| *l);
        let refused = keys_refused(&a.name, a.uid, s, locked);
        let root_forced = (a.uid == 0 || a.name == "root")
            && root_key_rule(&s.permit_root_login) == RootRule::ForcedCommandsOnly;
        let groups = answers
            .get(&a.name)
            .map(|x| x.groups.clone())
            .unwrap_or_default();
        let who = Who {
            uid: a.uid,
            groups: &groups,
            gid: a.gid,
            home_real: home_real
                .get(i)
                .map(String::as_str)
                .filter(|h| !h.is_empty()),
            user_groups: user_groups.as_ref(),
        };
        let mut files = Vec::new();
        for f in &per_account[i] {
            let path = match f {
                Ok(p) => p.clone(),
                Err(e) => {
                    files.push(FileAudit {
                        path: e.clone(),
                        state: FileState::Ignored(e.clone()),
                        keys: vec![],
                        unparseable: vec![],
                        content: None,
                    });
                    continue;
                }
            };
            files.push(
                file_audit(
                    t,
                    &path,
                    reports.get(&path),
                    &who,
                    s,
                    login_user,
                    refused.as_deref(),
                    root_forced,
                )
                .await?,
            );
        }
        out_accounts.push(AccountAudit {
            user: a.name.clone(),
            uid: a.uid,
            home: a.home.clone(),
            shell: a.shell.clone(),
            locked,
            keys_refused: refused,
            other_ways: other_ways(s),
            config: s.clone(),
            files,
        });
    }
    if settings.iter().any(|s| s.source != ConfigSource::SshdT) && sshd_error.is_none() {
        not_seen.push("sshd's effective configuration (no answer from sshd -T)".into());
    }
    Ok(HostAudit {
        host: t.host().to_string(),
        login_user: login_user.to_string(),
        openssh: (!version.is_empty()).then_some(version),
        privileged,
        accounts: out_accounts,
        not_seen,
    })
}

#[allow(clippy::too_many_arguments)]
async fn file_audit<T: Target>(
    t: &T,
    path: &str,
    report: Option<&PathReport>,
    who: &Who<'_>,
    s: &SshdAuth,
    login_user: &str,
    refused: Option<&str>,
    root_forced: bool,
) -> TResult<FileAudit> {
    let mut fa = FileAudit {
        path: path.to_string(),
        state: FileState::Missing,
        keys: vec![],
        unparseable: vec![],
        content: None,
    };
    let used = match report {
        None | Some(PathReport::Unknown) => {
            fa.state = FileState::Unseen(format!(
                "whether it exists: a directory on the way is not searchable by {login_user} (use -b)"
            ));
            return Ok(fa);
        }
        Some(PathReport::Missing) => return Ok(fa),
        Some(PathReport::Found { chain, .. }) => match verdict(chain, who, s.strict_modes) {
            Ok(()) => Ok(()),
            Err(Unusable::Ignored(r)) => Err(r),
            Err(Unusable::Unknown(r)) => {
                fa.state = FileState::Unseen(format!("{r} as {login_user} (use -b)"));
                return Ok(fa);
            }
        },
    };
    fa.state = match &used {
        Ok(()) => FileState::Used,
        Err(r) => FileState::Ignored(r.clone()),
    };
    // A directory (or other non-file) has no content to read.
    if matches!(report, Some(PathReport::Found { chain, .. }) if !matches!(chain.first(), Some(Ok(c)) if c.is_file))
    {
        return Ok(fa);
    }
    match t.read(path, MAX_FILE).await {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let (keys, bad) = read_file_keys(&text, used, refused, root_forced, s);
            fa.keys = keys;
            fa.unparseable = bad;
            fa.content = Some(text);
        }
        Err(TargetError::PermissionDenied { .. }) => {
            fa.state = FileState::Unseen(format!(
                "its content: not readable by {login_user} (use -b){}",
                match &fa.state {
                    FileState::Ignored(r) => format!("; sshd ignores it anyway: {r}"),
                    _ => String::new(),
                }
            ));
        }
        Err(TargetError::NotFound { .. }) => fa.state = FileState::Missing,
        Err(e) => return Err(e),
    }
    Ok(fa)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_conn_from_ssh_connection() {
        let c = MatchConn::from_ssh_connection("127.0.0.1 40000 127.0.0.1 2201").unwrap();
        assert_eq!(
            c.spec(),
            "host=127.0.0.1,addr=127.0.0.1,laddr=127.0.0.1,lport=2201"
        );
        assert!(MatchConn::from_ssh_connection("").is_none());
    }

    #[test]
    fn parses_sshd_answers() {
        let a = parse_sshd_answers(
            "@@U root\n@@G 0\nport 22\nstrictmodes yes\n@@OK\n@@U bob\n@@G 1001 27\nsshd: no hostkeys available -- exiting.\n@@FAIL\n",
        );
        assert_eq!(a["root"].groups, [0]);
        assert!(
            a["root"]
                .result
                .as_ref()
                .unwrap()
                .contains("strictmodes yes")
        );
        assert_eq!(a["bob"].groups, [1001, 27]);
        assert_eq!(
            a["bob"].result,
            Err("sshd: no hostkeys available -- exiting.".to_string())
        );
    }

    /// The whole gathering on this machine's own accounts and sshd, as root or not: it
    /// must answer for every login account and never fail for lack of privileges.
    #[tokio::test]
    async fn gathers_on_a_local_target() {
        use crate::target::local::LocalTarget;
        let t = LocalTarget::new();
        let me = crate::ssh::current_user();
        let conn = MatchConn {
            addr: "127.0.0.1".into(),
            laddr: None,
            lport: None,
        };
        let h = gather(&t, &me, &conn).await.unwrap();
        assert!(h.accounts.iter().all(|a| !a.shell.ends_with("nologin")));
        assert!(!h.accounts.is_empty());
        for a in &h.accounts {
            assert!(!a.files.is_empty() || a.config.authorized_keys_files.is_empty());
        }
        if !h.privileged {
            assert!(!h.not_seen.is_empty());
        }
    }
}
