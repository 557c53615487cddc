//! What sshd runs with on one host, gathered in one read-only command as root: the main
//! `sshd_config` and the drop-ins its `Include` lines match, the effective host keys and
//! pidfile from `sshd -T`, the public half of each host key (`ssh-keygen -y`), which service
//! manager runs sshd, and whether some extra paths exist. The script is rendered and its
//! output parsed by pure functions; [`gather`] is the I/O.

use std::collections::BTreeMap;

use base64::Engine as _;

use super::SshdError;
use crate::target::{Target, shell_quote};

/// The main configuration file (sshd's default, as on Debian).
pub const MAIN_CONFIG: &str = "/etc/ssh/sshd_config";

/// How sshd is reloaded on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manager {
    /// `/run/systemd/system` exists (systemd is PID 1, as `sd_booted(3)` decides) and
    /// `systemctl` is installed: `systemctl reload ssh` (Debian's unit) or `sshd`.
    Systemd,
    /// No service manager we know: SIGHUP to the PID in sshd's pidfile (sshd re-executes
    /// itself with the same PID and re-reads its configuration).
    Pidfile,
}

/// sshd's state on one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshdFacts {
    /// Absolute path of the sshd binary.
    pub sshd: String,
    pub manager: Manager,
    /// `sshd -T`'s `pidfile` (`none` possible).
    pub pidfile: String,
    /// The main config text.
    pub main: String,
    /// Drop-ins matched by the main config's `Include` lines: path → text (sorted as sshd
    /// reads them).
    pub dropins: BTreeMap<String, String>,
    /// `sshd -T`'s `hostkey` values, in sshd's order.
    pub host_keys: Vec<String>,
    /// `ssh-keygen -y` of each host key: path → `TYPE BASE64` (absent: unreadable).
    pub public_keys: BTreeMap<String, String>,
    /// Which of the asked-for extra paths exist.
    pub existing: Vec<String>,
}

/// The read-only gather script (run as root with `sh -c`).
pub fn gather_script(extra_paths: &[String]) -> String {
    let mut s = String::from(
        r#"set -u
[ "$(id -u)" = 0 ] || { echo "needs root on the host: log in as root or use --become (-b)" >&2; exit 3; }
sshd=$(command -v sshd 2>/dev/null || true)
[ -n "$sshd" ] || for c in /usr/sbin/sshd /usr/local/sbin/sshd /sbin/sshd; do [ -x "$c" ] && sshd=$c && break; done
[ -n "$sshd" ] || { echo "sshd not found" >&2; exit 3; }
echo "sshd $sshd"
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then echo "manager systemd"; else echo "manager pidfile"; fi
[ -r /etc/ssh/sshd_config ] || { echo "/etc/ssh/sshd_config: cannot read (run as root: --become)" >&2; exit 3; }
printf 'file /etc/ssh/sshd_config '; base64 -w0 < /etc/ssh/sshd_config; echo
for pat in $(awk 'tolower($1)=="match"{exit} tolower($1)=="include"{for(i=2;i<=NF;i++)print $i}' /etc/ssh/sshd_config); do
  case $pat in /*) ;; *) pat=/etc/ssh/$pat ;; esac
  for f in $pat; do [ -f "$f" ] || continue; printf 'file %s ' "$f"; base64 -w0 < "$f"; echo; done
done
t=$("$sshd" -T 2>&1) || { printf '%s\n' "$t" >&2; echo "sshd -T failed: the current configuration is invalid; nothing changed" >&2; exit 4; }
printf '%s\n' "$t" | awk '$1=="hostkey"||$1=="pidfile"{print "T " $1 " " $2}'
for k in $(printf '%s\n' "$t" | awk '$1=="hostkey"{print $2}'); do
  p=$(ssh-keygen -y -f "$k" 2>/dev/null) && printf 'key %s %s\n' "$k" "$p"
done
"#,
    );
    for p in extra_paths {
        s.push_str(&format!(
            "[ -e {q} ] && printf 'exists %s\\n' {q}\n",
            q = shell_quote(p)
        ));
    }
    s.push_str("exit 0\n");
    s
}

/// Parse the gather script's output.
pub fn parse_gather(host: &str, out: &str) -> Result<SshdFacts, SshdError> {
    let bad = |msg: String| SshdError::Gather {
        host: host.to_string(),
        msg,
    };
    let mut f = SshdFacts {
        sshd: String::new(),
        manager: Manager::Pidfile,
        pidfile: String::new(),
        main: String::new(),
        dropins: BTreeMap::new(),
        host_keys: Vec::new(),
        public_keys: BTreeMap::new(),
        existing: Vec::new(),
    };
    let mut main = None;
    for line in out.lines() {
        let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
        match tag {
            "sshd" => f.sshd = rest.to_string(),
            "manager" => {
                f.manager = if rest == "systemd" {
                    Manager::Systemd
                } else {
                    Manager::Pidfile
                }
            }
            "file" => {
                let (path, b64) = rest.split_once(' ').unwrap_or((rest, ""));
                let body = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|e| bad(format!("{path}: bad transfer encoding: {e}")))?;
                let text =
                    String::from_utf8(body).map_err(|_| bad(format!("{path}: not UTF-8 text")))?;
                if path == MAIN_CONFIG && main.is_none() {
                    main = Some(text);
                } else {
                    f.dropins.insert(path.to_string(), text);
                }
            }
            "T" => match rest.split_once(' ') {
                Some(("hostkey", k)) => f.host_keys.push(k.to_string()),
                Some(("pidfile", p)) => f.pidfile = p.to_string(),
                _ => {}
            },
            "key" => {
                let (path, key) = rest.split_once(' ').unwrap_or((rest, ""));
                let mut w = key.split_whitespace();
                if let (Some(t), Some(b)) = (w.next(), w.next()) {
                    f.public_keys.insert(path.to_string(), format!("{t} {b}"));
                }
            }
            "exists" => f.existing.push(rest.to_string()),
            _ => {}
        }
    }
    f.main = main.ok_or_else(|| bad(format!("{MAIN_CONFIG} was not read")))?;
    if f.sshd.is_empty() {
        return Err(bad("sshd not found".into()));
    }
    Ok(f)
}

/// Gather the facts on `t` (which must run commands as root: become).
pub async fn gather<T: Target>(t: &T, extra_paths: &[String]) -> Result<SshdFacts, SshdError> {
    let argv = vec!["sh".into(), "-c".into(), gather_script(extra_paths)];
    let out = t.run(&argv, None).await?;
    if out.status != 0 {
        return Err(SshdError::Gather {
            host: t.host().to_string(),
            msg: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    parse_gather(t.host(), &String::from_utf8_lossy(&out.stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn gather_output_is_parsed() {
        let out = format!(
            "sshd /usr/sbin/sshd\nmanager pidfile\nfile /etc/ssh/sshd_config {}\nfile /etc/ssh/sshd_config.d/a.conf {}\nT hostkey /etc/ssh/ssh_host_rsa_key\nT hostkey /etc/ssh/ssh_host_ed25519_key\nT pidfile /run/sshd.pid\nkey /etc/ssh/ssh_host_ed25519_key ssh-ed25519 AAAAC3 root@h\nexists /etc/ssh/x.new\n",
            b64("Include /etc/ssh/sshd_config.d/*.conf\n"),
            b64("PasswordAuthentication no\n")
        );
        let f = parse_gather("h", &out).unwrap();
        assert_eq!(f.manager, Manager::Pidfile);
        assert_eq!(f.pidfile, "/run/sshd.pid");
        assert_eq!(f.main, "Include /etc/ssh/sshd_config.d/*.conf\n");
        assert_eq!(
            f.dropins["/etc/ssh/sshd_config.d/a.conf"],
            "PasswordAuthentication no\n"
        );
        assert_eq!(
            f.host_keys,
            ["/etc/ssh/ssh_host_rsa_key", "/etc/ssh/ssh_host_ed25519_key"]
        );
        // An unreadable (here: missing) rsa key has no public half.
        assert_eq!(f.public_keys.len(), 1);
        assert_eq!(
            f.public_keys["/etc/ssh/ssh_host_ed25519_key"],
            "ssh-ed25519 AAAAC3"
        );
        assert_eq!(f.existing, ["/etc/ssh/x.new"]);
        assert!(parse_gather("h", "sshd /x\n").is_err());
    }

    #[test]
    fn gather_script_quotes_extra_paths() {
        let s = gather_script(&["/etc/ssh/a b".into()]);
        assert!(s.contains("[ -e '/etc/ssh/a b' ] && printf 'exists %s\\n' '/etc/ssh/a b'\n"));
    }
}
