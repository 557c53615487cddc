//! Resolver tests on config files in a temporary home (the differential test against
//! real `ssh -G` is `tests/integration/ssh_config.rs`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;

fn ctx(home: &Path) -> Context {
    Context {
        local: LocalUser {
            name: "ops".into(),
            home: home.to_string_lossy().into_owned(),
            uid: 1000,
        },
        thishost: "ctl.example.net".into(),
        system_dir: home.join("etc"),
        env: Arc::new(|v| (v == "XDG_RUNTIME_DIR").then(|| "/run/user/1000".to_string())),
        exec: Arc::new(|cmd| Ok(if cmd.contains("true") { 0 } else { 1 })),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

fn res(text: &str, host: &str, opts: &[CmdOption]) -> Result<Resolved, SshConfigError> {
    let d = tempfile::tempdir().unwrap();
    let f = write(d.path(), "cfg", text);
    resolve(&ctx(d.path()), host, opts, &ConfigFiles::File(f))
}

#[test]
fn first_value_wins_and_identity_files_accumulate() {
    let r = res(
        "Host web*\n  User deploy\n  IdentityFile ~/.ssh/a\nHost *\n  User other\n  Port 2222\n  IdentityFile %d/b\n",
        "web1",
        &[],
    )
    .unwrap();
    assert_eq!(r.user, "deploy");
    assert_eq!(r.port, 2222);
    assert_eq!(r.identity_files, ["~/.ssh/a", "%d/b"]);
    assert!(r.identity_files_given);
}

#[test]
fn command_line_options_beat_the_file() {
    let r = res(
        "Host *\n  User fileuser\n  Port 2222\n",
        "h",
        &[
            CmdOption::O("Port=2200".into()),
            CmdOption::O("User \"cli\"".into()),
        ],
    )
    .unwrap();
    assert_eq!((r.user.as_str(), r.port), ("cli", 2200));
}

#[test]
fn host_matching_is_case_sensitive_hostname_lowercased() {
    let cfg = "Host github.com\n  User git\nHost Alias\n  HostName %h.Example.ORG\n";
    assert_eq!(res(cfg, "GitHub.com", &[]).unwrap().user, "ops");
    assert_eq!(res(cfg, "github.com", &[]).unwrap().user, "git");
    assert_eq!(
        res(cfg, "Alias", &[]).unwrap().hostname,
        "alias.example.org"
    );
    assert_eq!(res(cfg, "10.0.0.1", &[]).unwrap().hostname, "10.0.0.1");
}

#[test]
fn negation_excludes() {
    let cfg = "Host * !bastion\n  ProxyJump bastion\n";
    assert!(res(cfg, "bastion", &[]).unwrap().proxy_jump.is_none());
    assert_eq!(
        res(cfg, "db", &[]).unwrap().proxy_jump.unwrap().host,
        "bastion"
    );
}

#[test]
fn unknown_keyword_anywhere_refuses_with_file_and_line() {
    let e = res("Host nomatch\n  Bogus yes\n", "h", &[]).unwrap_err();
    assert!(matches!(e, SshConfigError::Line { line: 2, .. }), "{e}");
    assert!(e.to_string().contains("Bad configuration option: bogus"));
    assert!(res("IgnoreUnknown bogus\nBogus yes\n", "h", &[]).is_ok());
    assert!(res("Host nomatch\n  Port [x]\n", "h", &[]).is_err());
    assert!(res("Host h\n  User a b\n", "h", &[]).is_err());
    assert!(res("Host h\n  ProxyCommand sh -c 'x\n", "h", &[]).is_err());
}

#[test]
fn match_criteria_and_final_pass() {
    let cfg = "Match host *.lan user ops\n  Port 1\nMatch originalhost Web\n  HostName web.lan\nMatch final host web.lan\n  User finaluser\nMatch exec \"true %h\"\n  ServerAliveInterval 5\nMatch exec false\n  ServerAliveCountMax 9\n";
    let r = res(cfg, "web", &[]).unwrap();
    assert_eq!(r.hostname, "web.lan");
    assert_eq!(r.user, "finaluser");
    assert_eq!(
        r.port, 1,
        "the final pass matches host *.lan with the local user"
    );
    assert_eq!(r.server_alive_interval, 5);
    assert_eq!(r.server_alive_count_max, 3);
    assert!(res("Match\n", "h", &[]).is_err());
    assert!(res("Match bogus x\n", "h", &[]).is_err());
    assert!(res("Match all host x\n", "h", &[]).is_err());
}

#[test]
fn includes_are_relative_to_dot_ssh_and_globbed() {
    let d = tempfile::tempdir().unwrap();
    let home = d.path();
    // GLOB_TILDE expands `~` from $HOME; point the include at an absolute path instead.
    write(home, ".ssh/conf.d/10-a.conf", "Host a\n  User alice\n");
    write(home, ".ssh/conf.d/20-b.conf", "Host *\n  User everyone\n");
    let cfg = write(
        home,
        ".ssh/config",
        &format!(
            "Include {}/.ssh/conf.d/*.conf\nInclude /nonexistent/*\n",
            home.display()
        ),
    );
    let r = resolve(&ctx(home), "a", &[], &ConfigFiles::File(cfg.clone())).unwrap();
    assert_eq!(r.user, "alice");
    let r = resolve(&ctx(home), "b", &[], &ConfigFiles::File(cfg)).unwrap();
    assert_eq!(r.user, "everyone");
}

#[test]
fn defaults_as_ssh_g_prints_them() {
    let d = tempfile::tempdir().unwrap();
    let c = ctx(d.path());
    let r = resolve(&c, "h", &[], &ConfigFiles::Disabled).unwrap();
    let h = d.path().display();
    let dump = r.dump();
    assert!(dump.contains("port 22\n"));
    assert!(dump.contains("user ops\n"));
    assert!(dump.contains("identityfile ~/.ssh/id_rsa\n"));
    assert!(dump.contains(&format!(
        "userknownhostsfile {h}/.ssh/known_hosts {h}/.ssh/known_hosts2\n"
    )));
    assert!(
        dump.contains("globalknownhostsfile /etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2\n")
    );
    assert!(dump.contains("connecttimeout none\n"));
    assert!(dump.contains("stricthostkeychecking ask\n"));
    assert!(!dump.contains("proxyjump"));
}

#[test]
fn proxy_jump_and_command_first_seen_wins() {
    let r = res(
        "Host *\n  ProxyCommand ssh -W %h:%p gw\n  ProxyJump j\n",
        "h",
        &[],
    )
    .unwrap();
    assert_eq!(r.proxy_command.as_deref(), Some("ssh -W %h:%p gw"));
    assert!(r.proxy_jump.is_none());
    let r = res("Host *\n  ProxyJump u@j:2200\n  ProxyCommand x\n", "h", &[]).unwrap();
    assert_eq!(r.proxy_jump.unwrap().display(), "u@j:2200");
    assert!(r.proxy_command.is_none());
    let r = res("Host *\n  ProxyCommand none\n  ProxyJump j\n", "h", &[]).unwrap();
    assert!(r.proxy_command.is_none() && r.proxy_jump.is_none());
    assert!(res("Host *\n  ProxyJump a,,b\n", "h", &[]).is_err());
}

#[test]
fn tokens_in_paths_expand_like_ssh() {
    let r = res(
        "Host *\n  User deploy\n  Port 2222\n  IdentityFile ~/.ssh/%r@%h-%p\n  IdentityAgent ${XDG_RUNTIME_DIR}/agent.sock\n  UserKnownHostsFile %d/kh/%h 100%%\n",
        "Web1",
        &[],
    )
    .unwrap();
    let home = r.expander.expand("~").unwrap();
    assert_eq!(r.identity_files, ["~/.ssh/%r@%h-%p"], "printed unexpanded");
    assert_eq!(
        r.expand(&r.identity_files[0]).unwrap(),
        format!("{home}.ssh/deploy@web1-2222")
    );
    assert_eq!(
        r.identity_agent.as_deref(),
        Some("/run/user/1000/agent.sock")
    );
    assert_eq!(r.user_known_hosts[1], "100%");
    assert!(r.user_known_hosts[0].ends_with("/kh/web1"));
    // An unset ${VAR} in IdentityAgent is refused at parse time, as ssh does.
    assert!(res("IdentityAgent ${NOPE}\n", "h", &[]).is_err());
    // An unknown token in HostName is refused.
    assert!(res("HostName %z\n", "h", &[]).is_err());
}

#[test]
fn missing_f_file_is_an_error_missing_default_is_not() {
    let d = tempfile::tempdir().unwrap();
    let c = ctx(d.path());
    assert!(resolve(&c, "h", &[], &ConfigFiles::File(d.path().join("nope"))).is_err());
    assert!(resolve(&c, "h", &[], &ConfigFiles::Default).is_ok());
}
