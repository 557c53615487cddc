//! Pure renderers for the files a fleet writes: host names, `sshd_config`, `known_hosts`
//! and the Ansible INI inventory.

use std::path::Path;

/// `host01`…`host99`, `host001`… when there are more than 99 hosts: zero-padded to at least
/// two digits, wide enough for `count`.
pub fn host_name(prefix: &str, index: usize, count: usize) -> String {
    let width = count.to_string().len().max(2);
    format!("{prefix}{:0width$}", index + 1)
}

/// Everything `sshd_config` needs for one host.
#[derive(Debug, Clone)]
pub struct SshdConfig<'a> {
    pub port: u16,
    pub sftp_server: &'a str,
    pub max_startups: &'a str,
    pub log_level: &'a str,
    pub permit_root_login: bool,
    /// Extra lines, placed before the fleet's settings: sshd uses the first value it reads
    /// for a keyword, so these override the defaults below (drop-ins in `sshd_config.d`,
    /// included first as on Debian, override both).
    pub extra: &'a [String],
}

/// Render one host's `/etc/ssh/sshd_config`, laid out as Debian's stock file: `Include
/// /etc/ssh/sshd_config.d/*.conf` first, the `HostKey` lines commented out (so sshd uses its
/// default keys `/etc/ssh/ssh_host_{rsa,ecdsa,ed25519}_key`, of which the host has the
/// ed25519 one), no `PidFile` (the default `/run/sshd.pid`).
pub fn sshd_config(c: &SshdConfig<'_>) -> String {
    let mut s = String::from(
        "# Written by sshfleet::testfleet, laid out as Debian's stock sshd_config.\n\
         # See sshd_config(5). Uncommented options override the default value.\n\n\
         Include /etc/ssh/sshd_config.d/*.conf\n\n",
    );
    if !c.extra.is_empty() {
        s.push_str("# Extra options (first value wins).\n");
    }
    for line in c.extra {
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s.push_str(&format!(
        "ListenAddress 127.0.0.1:{port}\n\
         \n\
         #HostKey /etc/ssh/ssh_host_rsa_key\n\
         #HostKey /etc/ssh/ssh_host_ecdsa_key\n\
         #HostKey /etc/ssh/ssh_host_ed25519_key\n\
         \n\
         UsePAM no\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         PubkeyAuthentication yes\n\
         AuthorizedKeysFile .ssh/authorized_keys\n\
         PermitRootLogin {root}\n\
         StrictModes yes\n\
         UseDNS no\n\
         PrintMotd no\n\
         PrintLastLog no\n\
         X11Forwarding no\n\
         MaxStartups {max_startups}\n\
         LogLevel {log_level}\n\
         Subsystem sftp {sftp}\n",
        port = c.port,
        root = if c.permit_root_login {
            "prohibit-password"
        } else {
            "no"
        },
        max_startups = c.max_startups,
        log_level = c.log_level,
        sftp = c.sftp_server,
    ));
    s
}

/// One `known_hosts` line: `[127.0.0.1]:PORT TYPE BASE64` (the comment of the `.pub` file is
/// dropped).
pub fn known_hosts_line(port: u16, host_pub: &str) -> String {
    let mut fields = host_pub.split_whitespace();
    let kind = fields.next().unwrap_or_default();
    let blob = fields.next().unwrap_or_default();
    format!("[127.0.0.1]:{port} {kind} {blob}\n")
}

/// Connection settings written to the inventory's `[fleet:vars]`.
#[derive(Debug, Clone)]
pub struct InventoryVars<'a> {
    pub user: &'a str,
    pub private_key: &'a Path,
    pub known_hosts: &'a Path,
    /// The fleet's OpenSSH client config ([`ssh_config`]), given with `-F` to hosts behind a
    /// bastion.
    pub ssh_config: &'a Path,
    pub python: &'a str,
}

/// An OpenSSH client config giving the fleet's hosts (all on 127.0.0.1) the fleet key and
/// known_hosts: what a user's ~/.ssh/config does for a bastion, since OpenSSH logs in to a
/// ProxyJump hop with the hop's own configuration, never with the target's `-i`.
pub fn ssh_config(v: &InventoryVars<'_>) -> String {
    format!(
        "# Written by sshfleet::testfleet.\nHost 127.0.0.1\n  User {user}\n  IdentityFile {key}\n  UserKnownHostsFile {kh}\n  StrictHostKeyChecking yes\n",
        user = v.user,
        key = v.private_key.display(),
        kh = v.known_hosts.display()
    )
}

/// The Ansible INI inventory: group `fleet` with every host, and connection vars.
/// How the inventory reaches one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    Direct,
    /// `-o ProxyJump=VALUE`
    Jump(String),
    /// `-o ProxyCommand=VALUE`
    Command(String),
}

/// One inventory line's facts.
#[derive(Debug, Clone)]
pub struct InventoryHost {
    pub name: String,
    pub port: u16,
    pub via: Via,
}

pub fn inventory(hosts: &[InventoryHost], v: &InventoryVars<'_>) -> String {
    let mut s = String::from("# Written by sshfleet::testfleet.\n[fleet]\n");
    for h in hosts {
        let (name, port) = (&h.name, h.port);
        s.push_str(&format!(
            "{name} ansible_host=127.0.0.1 ansible_port={port}"
        ));
        let proxy = match &h.via {
            Via::Direct => None,
            Via::Jump(j) => Some(format!("-F {} -o ProxyJump={j}", v.ssh_config.display())),
            Via::Command(c) => Some(format!("-o \"ProxyCommand={c}\"")),
        };
        if let Some(p) = proxy {
            // A host's own ansible_ssh_common_args replaces the group's: repeat those options.
            s.push_str(&format!(
                " ansible_ssh_common_args='-o UserKnownHostsFile={kh} -o StrictHostKeyChecking=yes {p}'",
                kh = v.known_hosts.display()
            ));
        }
        s.push('\n');
    }
    s.push_str(&format!(
        "\n[fleet:vars]\n\
         ansible_user={user}\n\
         ansible_ssh_private_key_file={key}\n\
         ansible_ssh_common_args='-o UserKnownHostsFile={kh} -o StrictHostKeyChecking=yes'\n\
         ansible_python_interpreter={python}\n",
        user = v.user,
        key = v.private_key.display(),
        kh = v.known_hosts.display(),
        python = v.python,
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_padded() {
        assert_eq!(host_name("host", 0, 1), "host01");
        assert_eq!(host_name("host", 19, 20), "host20");
        assert_eq!(host_name("host", 98, 99), "host99");
        assert_eq!(host_name("host", 0, 100), "host001");
        assert_eq!(host_name("host", 99, 100), "host100");
        assert_eq!(host_name("web", 4, 1000), "web0005");
    }

    #[test]
    fn sshd_config_is_debian_like_with_extra_lines_before_the_defaults() {
        let extra = vec!["PubkeyAcceptedAlgorithms ssh-rsa".to_string()];
        let cfg = sshd_config(&SshdConfig {
            port: 2222,
            sftp_server: "/usr/lib/openssh/sftp-server",
            max_startups: "10:30:100",
            log_level: "INFO",
            permit_root_login: true,
            extra: &extra,
        });
        let lines: Vec<&str> = cfg.lines().collect();
        let at = |l: &str| lines.iter().position(|x| *x == l).unwrap();
        // Debian's order: drop-ins first, then extras, then the fleet's settings.
        assert!(
            at("Include /etc/ssh/sshd_config.d/*.conf") < at("PubkeyAcceptedAlgorithms ssh-rsa")
        );
        assert!(at("PubkeyAcceptedAlgorithms ssh-rsa") < at("ListenAddress 127.0.0.1:2222"));
        // Stock HostKey lines commented out: sshd uses its default key paths; default pidfile.
        assert!(lines.contains(&"#HostKey /etc/ssh/ssh_host_ed25519_key"));
        assert!(
            !lines
                .iter()
                .any(|l| l.starts_with("HostKey") || l.starts_with("PidFile"))
        );
        assert!(lines.contains(&"PermitRootLogin prohibit-password"));
        assert!(lines.contains(&"UsePAM no"));
        assert!(lines.contains(&"Subsystem sftp /usr/lib/openssh/sftp-server"));
    }

    #[test]
    fn known_hosts_line_drops_comment() {
        assert_eq!(
            known_hosts_line(40001, "ssh-ed25519 AAAAC3Nz root@box\n"),
            "[127.0.0.1]:40001 ssh-ed25519 AAAAC3Nz\n"
        );
    }

    #[test]
    fn inventory_lists_hosts_and_vars() {
        let inv = inventory(
            &[
                InventoryHost {
                    name: "host01".into(),
                    port: 40001,
                    via: Via::Direct,
                },
                InventoryHost {
                    name: "host02".into(),
                    port: 40002,
                    via: Via::Jump("deploy@127.0.0.1:40001".into()),
                },
                InventoryHost {
                    name: "host03".into(),
                    port: 40003,
                    via: Via::Command("socat - UNIX-CONNECT:/f/host03.sock".into()),
                },
            ],
            &InventoryVars {
                user: "deploy",
                private_key: Path::new("/f/id_ed25519"),
                known_hosts: Path::new("/f/known_hosts"),
                ssh_config: Path::new("/f/ssh_config"),
                python: "/usr/bin/python3",
            },
        );
        assert!(inv.contains("[fleet]\nhost01 ansible_host=127.0.0.1 ansible_port=40001\nhost02 "));
        // A proxied host repeats the group's ssh options with its own proxy.
        assert!(inv.contains(
            "host02 ansible_host=127.0.0.1 ansible_port=40002 ansible_ssh_common_args='-o UserKnownHostsFile=/f/known_hosts -o StrictHostKeyChecking=yes -F /f/ssh_config -o ProxyJump=deploy@127.0.0.1:40001'\n"
        ));
        assert!(inv.contains(
            "host03 ansible_host=127.0.0.1 ansible_port=40003 ansible_ssh_common_args='-o UserKnownHostsFile=/f/known_hosts -o StrictHostKeyChecking=yes -o \"ProxyCommand=socat - UNIX-CONNECT:/f/host03.sock\"'\n"
        ));
        assert!(inv.contains("[fleet:vars]\nansible_user=deploy\n"));
        assert!(inv.contains("ansible_ssh_private_key_file=/f/id_ed25519\n"));
        assert!(inv.contains(
            "ansible_ssh_common_args='-o UserKnownHostsFile=/f/known_hosts -o StrictHostKeyChecking=yes'\n"
        ));
        assert!(inv.contains("ansible_python_interpreter=/usr/bin/python3\n"));
    }
}
