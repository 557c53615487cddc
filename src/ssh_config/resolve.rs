//! Resolving one host: command-line options first, then the config files (user, system,
//! `-F`), `Host`/`Match` blocks, `Include`s, the `Match final` second pass, and the
//! defaults — the steps `ssh` takes in `main()`, `process_config_files()` and
//! `readconf.c`, in the same order, so the first value obtained wins exactly where it
//! wins for `ssh`.

use std::path::{Path, PathBuf};

use super::jump::{self, Jump};
use super::keywords::{self, Kw};
use super::lex::{self, Cursor, Line};
use super::pattern::{match_hostname, match_pattern, match_pattern_list};
use super::sys;
use super::tokens::{self, TokenError};
use super::{ConfigFiles, Context, Resolved, SshConfigError, StrictHostKeyChecking};

/// One option given on the `ssh` command line, in command-line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdOption {
    /// `-o LINE` (a config line: `Key=Value`, `Key Value`).
    O(String),
    /// `-p PORT`
    Port(String),
    /// `-l USER`
    User(String),
    /// `-i FILE`
    Identity(String),
    /// `-J HOPS`
    Jump(String),
}

const MAX_IDENTITY_FILES: usize = 100;
const MAX_CERTIFICATE_FILES: usize = 100;
const MAX_HOSTS_FILES: usize = 16;
const MAX_DEPTH: usize = 16;

/// OpenSSH's `Options`, for the settings sshfleet resolves (`None` = not yet set).
#[derive(Debug, Default, Clone)]
struct Options {
    hostname: Option<String>,
    user: Option<String>,
    port: Option<i64>,
    /// (path as written, given in a user file or on the command line)
    identity_files: Vec<(String, bool)>,
    certificate_files: Vec<(String, bool)>,
    identities_only: Option<bool>,
    identity_agent: Option<String>,
    proxy_command: Option<String>,
    jump: Option<Jump>,
    user_hostfiles: Vec<String>,
    system_hostfiles: Vec<String>,
    strict: Option<String>,
    host_key_alias: Option<String>,
    connect_timeout: Option<i64>,
    server_alive_interval: Option<i64>,
    server_alive_count_max: Option<i64>,
    ignored_unknown: Option<String>,
    canonicalize_hostname: Option<String>,
}

fn add_file(list: &mut Vec<(String, bool)>, path: &str, userprovided: bool) {
    if !list.iter().any(|(p, u)| *u == userprovided && p == path) {
        list.push((path.to_string(), userprovided));
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Flags {
    userconf: bool,
    checkperm: bool,
    nevermatch: bool,
}

/// One pass over the configuration.
struct Pass<'a> {
    ctx: &'a Context,
    opts: &'a mut Options,
    /// The name `Host` lines match (as typed; in the final pass, the resolved name).
    host: String,
    /// `originalhost`, `%n`: the name as typed.
    original_host: String,
    final_pass: bool,
    want_final: bool,
}

/// Where a line came from, for errors.
#[derive(Clone, Copy)]
struct Src<'s> {
    file: &'s str,
    line: usize,
}

impl Pass<'_> {
    fn err(&self, src: Src<'_>, msg: impl Into<String>) -> SshConfigError {
        SshConfigError::Line {
            file: src.file.to_string(),
            line: src.line,
            msg: msg.into(),
        }
    }

    /// `read_config_file_depth`: `Ok(false)` if the file cannot be opened.
    fn read_file(
        &mut self,
        path: &str,
        flags: Flags,
        active: &mut bool,
        depth: usize,
    ) -> Result<bool, SshConfigError> {
        if depth > MAX_DEPTH {
            return Err(SshConfigError::File {
                path: PathBuf::from(path),
                msg: "Too many recursive configuration includes".into(),
            });
        }
        let Ok(bytes) = std::fs::read(path) else {
            return Ok(false);
        };
        if flags.checkperm {
            let meta = std::fs::metadata(path).map_err(|e| SshConfigError::File {
                path: PathBuf::from(path),
                msg: e.to_string(),
            })?;
            if !sys::permissions_ok(&meta) {
                return Err(SshConfigError::File {
                    path: PathBuf::from(path),
                    msg: "Bad owner or permissions".into(),
                });
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        for (i, line) in text.split_inclusive('\n').enumerate() {
            let src = Src {
                file: path,
                line: i + 1,
            };
            self.process_line(line, src, Some(&mut *active), flags, depth)?;
        }
        Ok(true)
    }

    /// `process_config_line_depth`. `active` is `None` for a command-line option.
    fn process_line(
        &mut self,
        line: &str,
        src: Src<'_>,
        active: Option<&mut bool>,
        flags: Flags,
        depth: usize,
    ) -> Result<(), SshConfigError> {
        let mut cmdline_active = true;
        let cmdline = active.is_none();
        let active: &mut bool = match active {
            Some(a) => a,
            None => &mut cmdline_active,
        };
        let (keyword, rest) = match lex::split_line(line) {
            Line::Empty => return Ok(()),
            Line::NoArgument(k) => {
                return Err(self.err(src, format!("no argument after keyword \"{k}\"")));
            }
            Line::Keyword { keyword, rest } => (keyword, rest),
        };
        let kw = match keywords::lookup(&keyword) {
            Some(k) => Some(k),
            None => {
                let ignored = self
                    .opts
                    .ignored_unknown
                    .as_deref()
                    .is_some_and(|pat| match_pattern_list(&keyword, pat, true) == 1);
                if !ignored {
                    return Err(self.err(src, format!("Bad configuration option: {keyword}")));
                }
                None
            }
        };
        let args = lex::argv_split(&rest, true).map_err(|_| self.err(src, "invalid quotes"))?;
        let Some(kw) = kw else {
            return Ok(()); // ignored unknown option
        };
        let on = *active;
        let env = |v: &str| (self.ctx.env)(v);
        let first = args.first().map(String::as_str);
        let need = |what: &str| -> Result<&str, SshConfigError> {
            match first {
                Some(a) if !a.is_empty() => Ok(a),
                _ => Err(self.err(src, what.to_string())),
            }
        };
        let used: usize = match kw {
            Kw::Host => {
                if cmdline {
                    return Err(
                        self.err(src, "Host directive not supported as a command-line option")
                    );
                }
                *active = false;
                for a in &args {
                    if a.is_empty() {
                        return Err(self.err(src, format!("keyword {keyword} empty argument")));
                    }
                    if flags.nevermatch {
                        break;
                    }
                    let (neg, pat) = match a.strip_prefix('!') {
                        Some(p) => (true, p),
                        None => (false, a.as_str()),
                    };
                    if match_pattern(&self.host, pat) {
                        if neg {
                            *active = false;
                            break;
                        }
                        *active = true;
                    }
                }
                args.len()
            }
            Kw::Match => {
                if cmdline {
                    return Err(
                        self.err(src, "Host directive not supported as a command-line option")
                    );
                }
                let mut cur = Cursor::new(&rest);
                let value = self.match_line(&mut cur, src)?;
                *active = !flags.nevermatch && value;
                match cur.rest() {
                    None => args.len(),
                    Some(r) if r.is_empty() => args.len(),
                    Some(_) => 0,
                }
            }
            Kw::Include => {
                if cmdline {
                    return Err(self.err(
                        src,
                        "Include directive not supported as a command-line option",
                    ));
                }
                for a in &args {
                    if a.is_empty() {
                        return Err(self.err(src, format!("keyword {keyword} empty argument")));
                    }
                    if a.starts_with('~') && !flags.userconf {
                        return Err(self.err(src, format!("bad include path {a}.")));
                    }
                    let pattern = if !a.starts_with('/') && !a.starts_with('~') {
                        if flags.userconf {
                            format!("~/.ssh/{a}")
                        } else {
                            format!("{}/{a}", self.ctx.system_dir.display())
                        }
                    } else {
                        a.clone()
                    };
                    let paths = sys::glob(&pattern)
                        .map_err(|_| self.err(src, format!("glob failed for {pattern}.")))?;
                    let oactive = *active;
                    for p in paths {
                        let f = Flags {
                            userconf: flags.userconf,
                            checkperm: true,
                            nevermatch: flags.nevermatch || !oactive,
                        };
                        let opened = self.read_file(&p, f, active, depth + 1)?;
                        *active = oactive;
                        if !opened {
                            return Err(self.err(src, format!("Can't open user config file {p}")));
                        }
                    }
                }
                args.len()
            }
            Kw::IdentityFile | Kw::CertificateFile => {
                let a = need("Missing argument.")?;
                if on {
                    let (list, max) = if kw == Kw::IdentityFile {
                        (&mut self.opts.identity_files, MAX_IDENTITY_FILES)
                    } else {
                        (&mut self.opts.certificate_files, MAX_CERTIFICATE_FILES)
                    };
                    if list.len() >= max {
                        return Err(
                            self.err(src, format!("Too many {keyword}s specified (max {max})."))
                        );
                    }
                    add_file(list, a, flags.userconf);
                }
                1
            }
            Kw::User | Kw::HostName | Kw::HostKeyAlias | Kw::IgnoreUnknown => {
                let a = need("Missing argument.")?.to_string();
                let slot = match kw {
                    Kw::User => &mut self.opts.user,
                    Kw::HostName => &mut self.opts.hostname,
                    Kw::HostKeyAlias => &mut self.opts.host_key_alias,
                    _ => &mut self.opts.ignored_unknown,
                };
                if on && slot.is_none() {
                    *slot = Some(a);
                }
                1
            }
            Kw::Port => {
                let a = need("Missing argument.")?;
                let v = keywords::a2port(a).filter(|v| *v > 0);
                let Some(v) = v else {
                    return Err(self.err(src, format!("Bad port '{a}'.")));
                };
                if on && self.opts.port.is_none() {
                    self.opts.port = Some(v);
                }
                1
            }
            Kw::IdentitiesOnly => {
                let v = keywords::multistate(first, keywords::FLAG).ok_or_else(|| {
                    self.err(
                        src,
                        format!("unsupported option \"{}\".", first.unwrap_or("(null)")),
                    )
                })?;
                if on && self.opts.identities_only.is_none() {
                    self.opts.identities_only = Some(v == "true" || v == "yes");
                }
                1
            }
            Kw::StrictHostKeyChecking | Kw::CanonicalizeHostname => {
                let table = if kw == Kw::StrictHostKeyChecking {
                    keywords::STRICT
                } else {
                    keywords::CANONICALIZE
                };
                let v = keywords::multistate(first, table).ok_or_else(|| {
                    self.err(
                        src,
                        format!("unsupported option \"{}\".", first.unwrap_or("(null)")),
                    )
                })?;
                let slot = if kw == Kw::StrictHostKeyChecking {
                    &mut self.opts.strict
                } else {
                    &mut self.opts.canonicalize_hostname
                };
                if on && slot.is_none() {
                    *slot = Some(v);
                }
                1
            }
            Kw::IdentityAgent => {
                let a = need("Missing argument.")?.to_string();
                if let Some(e) = keywords::agent_path_error(&a, &env) {
                    return Err(self.err(src, e));
                }
                if on && self.opts.identity_agent.is_none() {
                    self.opts.identity_agent = Some(a);
                }
                1
            }
            Kw::ProxyCommand => {
                let v = rest
                    .trim_start_matches([' ', '\t', '\r', '\n', '='])
                    .to_string();
                if on && self.opts.proxy_command.is_none() && self.opts.jump.is_none() {
                    self.opts.proxy_command = Some(v);
                }
                args.len()
            }
            Kw::ProxyJump => {
                let v = rest.trim_start_matches([' ', '\t', '\r', '\n', '=']);
                let j = jump::parse_jump(v)
                    .map_err(|_| self.err(src, format!("Invalid ProxyJump \"{v}\"")))?;
                if on && self.opts.proxy_command.is_none() && self.opts.jump.is_none() {
                    if !(j.host == "none" && j.port == 0) {
                        self.opts.proxy_command = Some("none".into());
                    }
                    self.opts.jump = Some(j);
                }
                args.len()
            }
            Kw::UserKnownHostsFile | Kw::GlobalKnownHostsFile => {
                let list = if kw == Kw::UserKnownHostsFile {
                    &mut self.opts.user_hostfiles
                } else {
                    &mut self.opts.system_hostfiles
                };
                let was_empty = list.is_empty();
                for (i, a) in args.iter().enumerate() {
                    if a.is_empty() {
                        return Err(self.err(src, format!("keyword {keyword} empty argument")));
                    }
                    if a.eq_ignore_ascii_case("none") && (i > 0 || args.len() > 1) {
                        return Err(self.err(
                            src,
                            format!("keyword {keyword} \"none\" argument must appear alone."),
                        ));
                    }
                    if on && was_empty {
                        if list.len() >= MAX_HOSTS_FILES {
                            return Err(self.err(src, format!("too many {keyword} entries.")));
                        }
                        list.push(a.clone());
                    }
                }
                args.len()
            }
            Kw::ConnectTimeout | Kw::ServerAliveInterval => {
                let a = first
                    .filter(|a| !a.is_empty())
                    .ok_or_else(|| self.err(src, "missing time value."))?;
                let v = if a == "none" {
                    None
                } else {
                    Some(
                        keywords::convtime(a)
                            .ok_or_else(|| self.err(src, "invalid time value."))?,
                    )
                };
                let slot = if kw == Kw::ConnectTimeout {
                    &mut self.opts.connect_timeout
                } else {
                    &mut self.opts.server_alive_interval
                };
                if on && slot.is_none() {
                    *slot = v;
                }
                1
            }
            Kw::ServerAliveCountMax => {
                let a = first
                    .filter(|a| !a.is_empty())
                    .ok_or_else(|| self.err(src, "integer value missing."))?;
                let v = keywords::strtonum(a, 0, i32::MAX as i64)
                    .ok_or_else(|| self.err(src, "integer value invalid."))?;
                if on && self.opts.server_alive_count_max.is_none() {
                    self.opts.server_alive_count_max = Some(v);
                }
                1
            }
            Kw::Other(check) => {
                keywords::check_other(check, &keyword, &args, &env).map_err(|m| self.err(src, m))?
            }
        };
        if used < args.len() {
            return Err(self.err(
                src,
                format!("keyword {keyword} extra arguments at end of line"),
            ));
        }
        Ok(())
    }

    /// `match_cfg_line`: whether the criteria hold.
    fn match_line(&mut self, cur: &mut Cursor, src: Src<'_>) -> Result<bool, SshConfigError> {
        let bad = |p: &Self, m: String| Err(p.err(src, format!("{m}; Bad Match condition")));
        let port = self.opts.port.unwrap_or_else(|| i64::from(default_port()));
        let ruser = self
            .opts
            .user
            .clone()
            .unwrap_or_else(|| self.ctx.local.name.clone());
        let host = if self.final_pass {
            self.opts.hostname.clone().unwrap_or_default()
        } else if let Some(h) = &self.opts.hostname {
            tokens::percent_expand(h, &[('h', &self.host)])
                .map_err(|e| self.err(src, format!("HostName {h}: {e}")))?
        } else {
            self.host.clone()
        };
        let mut result = true;
        let mut attributes = 0;
        while let Some(oattrib) = cur.strdelim() {
            if oattrib.is_empty() {
                break;
            }
            if oattrib.starts_with('#') {
                cur.consume();
                break;
            }
            let (negate, attrib) = match oattrib.strip_prefix('!') {
                Some(a) => (true, a.to_string()),
                None => (false, oattrib.clone()),
            };
            let attrib = attrib.to_ascii_lowercase();
            if attrib == "all" {
                let arg = cur.strdelim();
                if attributes > 1
                    || arg
                        .as_deref()
                        .is_some_and(|a| !a.is_empty() && !a.starts_with('#'))
                {
                    return bad(
                        self,
                        format!("'{oattrib}' cannot be combined with other Match attributes"),
                    );
                }
                if arg.as_deref().is_some_and(|a| a.starts_with('#')) {
                    cur.consume();
                }
                if result {
                    result = !negate;
                }
                return Ok(result);
            }
            attributes += 1;
            if attrib == "canonical" || attrib == "final" {
                if attrib == "final" {
                    self.want_final = true;
                }
                if self.final_pass == negate {
                    result = false;
                }
                continue;
            }
            let arg = match cur.strdelim() {
                Some(a) if !a.is_empty() && !a.starts_with('#') => a,
                _ => return bad(self, format!("Missing Match criteria for {attrib}")),
            };
            let r = match attrib.as_str() {
                "host" => match_hostname(&host, &arg) == 1,
                "originalhost" => match_hostname(&self.original_host, &arg) == 1,
                "user" => match_pattern_list(&ruser, &arg, false) == 1,
                "localuser" => match_pattern_list(&self.ctx.local.name, &arg, false) == 1,
                "exec" => {
                    let thishost = self.ctx.thishost.clone();
                    let short = thishost.split('.').next().unwrap_or("").to_string();
                    let portstr = port.to_string();
                    let uid = self.ctx.local.uid.to_string();
                    let hash = connection_hash(&thishost, &host, &portstr, &ruser);
                    let keyalias = self
                        .opts
                        .host_key_alias
                        .clone()
                        .unwrap_or_else(|| host.clone());
                    let cmd = tokens::percent_expand(
                        &arg,
                        &[
                            ('C', &hash),
                            ('L', &short),
                            ('d', &self.ctx.local.home),
                            ('h', &host),
                            ('k', &keyalias),
                            ('l', &thishost),
                            ('n', &self.original_host),
                            ('p', &portstr),
                            ('r', &ruser),
                            ('u', &self.ctx.local.name),
                            ('i', &uid),
                        ],
                    )
                    .map_err(|e| self.err(src, format!("Match exec {arg:?}: {e}")))?;
                    if !result {
                        continue; // a prior criterion failed: not run
                    }
                    let status = (self.ctx.exec)(&cmd)
                        .map_err(|e| self.err(src, format!("match exec '{cmd}' error: {e}")))?;
                    status == 0
                }
                _ => return bad(self, format!("Unsupported Match attribute {attrib}")),
            };
            if r == negate {
                result = false;
            }
        }
        if attributes == 0 {
            return bad(self, "One or more attributes required for Match".into());
        }
        Ok(result)
    }
}

/// `ssh_connection_hash`: SHA-1 of local host, host, port and user, in hex (`%C`).
fn connection_hash(thishost: &str, host: &str, port: &str, user: &str) -> String {
    use sha1::Digest;
    let mut h = sha1::Sha1::new();
    for p in [thishost, host, port, user] {
        h.update(p.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// `default_ssh_port()`: the `ssh` service, else 22.
pub fn default_port() -> u16 {
    sys::service_port("ssh").unwrap_or(22)
}

/// `is_addr_fast` (and numeric IPv4/IPv6): addresses are not lower-cased.
fn is_addr(name: &str) -> bool {
    name.contains('%')
        || name.contains(':')
        || name.bytes().all(|c| c.is_ascii_digit() || c == b'.')
        || name.parse::<std::net::IpAddr>().is_ok()
}

/// The name given on the command line: `[user@]host` or `ssh://[user@]host[:port]`.
fn split_target(target: &str) -> Result<(String, Option<String>, Option<i64>), SshConfigError> {
    let usage = || SshConfigError::Target {
        target: target.to_string(),
        msg: "not a valid destination".into(),
    };
    match jump::parse_ssh_uri(target) {
        Err(_) => Err(usage()),
        Ok(Some(h)) => Ok((h.host, h.user, h.port.map(i64::from))),
        Ok(None) => match target.rfind('@') {
            Some(0) => Err(usage()),
            Some(p) => Ok((
                target[p + 1..].to_string(),
                Some(target[..p].to_string()),
                None,
            )),
            None => Ok((target.to_string(), None, None)),
        },
    }
}

fn process_files(
    ctx: &Context,
    files: &ConfigFiles,
    pass: &mut Pass<'_>,
) -> Result<(), SshConfigError> {
    match files {
        ConfigFiles::Disabled => Ok(()),
        ConfigFiles::File(f) => {
            let path = f.to_string_lossy().into_owned();
            let mut active = true;
            let flags = Flags {
                userconf: true,
                ..Flags::default()
            };
            if !pass.read_file(&path, flags, &mut active, 0)? {
                return Err(SshConfigError::File {
                    path: f.clone(),
                    msg: "Can't open user config file".into(),
                });
            }
            Ok(())
        }
        ConfigFiles::Default => {
            let user = format!("{}/.ssh/config", ctx.local.home);
            let mut active = true;
            let flags = Flags {
                userconf: true,
                checkperm: true,
                nevermatch: false,
            };
            pass.read_file(&user, flags, &mut active, 0)?;
            let mut active = true;
            let sys = ctx
                .system_dir
                .join("ssh_config")
                .to_string_lossy()
                .into_owned();
            pass.read_file(&sys, Flags::default(), &mut active, 0)?;
            Ok(())
        }
    }
}

/// Resolve `target` as `ssh -G [options] [-F file] target` does.
pub fn resolve(
    ctx: &Context,
    target: &str,
    options: &[CmdOption],
    files: &ConfigFiles,
) -> Result<Resolved, SshConfigError> {
    let mut opts = Options::default();
    let cmd_err = |msg: String| SshConfigError::Line {
        file: "command-line".into(),
        line: 0,
        msg,
    };
    // Command-line options, in order, before anything else (host "" as for ssh).
    {
        let mut pass = Pass {
            ctx,
            opts: &mut opts,
            host: String::new(),
            original_host: String::new(),
            final_pass: false,
            want_final: false,
        };
        for o in options {
            match o {
                CmdOption::O(line) => {
                    let flags = Flags {
                        userconf: true,
                        ..Flags::default()
                    };
                    pass.process_line(
                        line,
                        Src {
                            file: "command-line",
                            line: 0,
                        },
                        None,
                        flags,
                        0,
                    )?;
                }
                CmdOption::Port(p) => {
                    if pass.opts.port.is_none() {
                        let v = keywords::a2port(p)
                            .filter(|v| *v > 0)
                            .ok_or_else(|| cmd_err(format!("Bad port '{p}'")))?;
                        pass.opts.port = Some(v);
                    }
                }
                CmdOption::User(u) => {
                    if pass.opts.user.is_none() {
                        pass.opts.user = Some(u.clone());
                    }
                }
                CmdOption::Identity(f) => {
                    // ssh -i: tilde-expanded now, skipped (with a warning) if missing.
                    let p = tokens::tilde_expand(f, &ctx.local.home, &sys::home_of)
                        .map_err(|e| cmd_err(format!("-i {f}: {e}")))?;
                    if Path::new(&p).exists() {
                        add_file(&mut pass.opts.identity_files, &p, true);
                    }
                }
                CmdOption::Jump(j) => {
                    if pass.opts.jump.is_some() {
                        return Err(cmd_err("Only a single -J option is permitted (use commas to separate multiple jump hops)".into()));
                    }
                    if pass.opts.proxy_command.is_some() {
                        return Err(cmd_err("Cannot specify -J with ProxyCommand".into()));
                    }
                    let parsed =
                        jump::parse_jump(j).map_err(|_| cmd_err("Invalid -J argument".into()))?;
                    pass.opts.jump = Some(parsed);
                    pass.opts.proxy_command = Some("none".into());
                }
            }
        }
    }
    let (host_arg, tuser, tport) = split_target(target)?;
    if opts.user.is_none() {
        opts.user = tuser;
    }
    if opts.port.is_none() {
        opts.port = tport;
    }

    let mut pass = Pass {
        ctx,
        opts: &mut opts,
        host: host_arg.clone(),
        original_host: host_arg.clone(),
        final_pass: false,
        want_final: false,
    };
    process_files(ctx, files, &mut pass)?;
    let mut want_final = pass.want_final;

    let mut host = host_arg.clone();
    if let Some(h) = &opts.hostname {
        host =
            tokens::percent_expand(h, &[('h', &host_arg)]).map_err(|e| SshConfigError::Target {
                target: host_arg.clone(),
                msg: format!("HostName {h}: {e}"),
            })?;
        opts.hostname = Some(host.clone());
    }
    if !is_addr(&host) {
        host.make_ascii_lowercase();
    }
    let canonicalize = opts
        .canonicalize_hostname
        .as_deref()
        .is_some_and(|c| c != "no" && c != "false");
    if canonicalize {
        want_final = true;
    }
    if want_final {
        opts.hostname = Some(host.clone());
        let mut pass = Pass {
            ctx,
            opts: &mut opts,
            host: host.clone(),
            original_host: host_arg.clone(),
            final_pass: true,
            want_final: false,
        };
        process_files(ctx, files, &mut pass)?;
    }
    finish(ctx, opts, host_arg, host)
}

/// `fill_default_options` and the tidying `ssh` does before `-G` prints.
fn finish(
    ctx: &Context,
    mut opts: Options,
    host_arg: String,
    host: String,
) -> Result<Resolved, SshConfigError> {
    let err = |msg: String| SshConfigError::Target {
        target: host_arg.clone(),
        msg,
    };
    let identity_files_set = !opts.identity_files.is_empty();
    if !identity_files_set {
        for f in [
            "id_rsa",
            "id_ecdsa",
            "id_ecdsa_sk",
            "id_ed25519",
            "id_ed25519_sk",
            "id_xmss",
            "id_dsa",
        ] {
            opts.identity_files.push((format!("~/.ssh/{f}"), false));
        }
    }
    let system_set = !opts.system_hostfiles.is_empty();
    if !system_set {
        opts.system_hostfiles = vec![
            "/etc/ssh/ssh_known_hosts".into(),
            "/etc/ssh/ssh_known_hosts2".into(),
        ];
    }
    let user_set = !opts.user_hostfiles.is_empty();
    if !user_set {
        opts.user_hostfiles = vec!["~/.ssh/known_hosts".into(), "~/.ssh/known_hosts2".into()];
    }
    let proxy_command = opts
        .proxy_command
        .take()
        .filter(|c| !c.eq_ignore_ascii_case("none"));
    let jump = opts.jump.take().filter(|j| !j.is_none());
    let user_given = opts.user.is_some();
    let user = opts.user.clone().unwrap_or_else(|| ctx.local.name.clone());
    let port_given = opts.port.is_some();
    let port = opts.port.map(|p| p as u16).unwrap_or_else(default_port);

    if let Some(j) = &jump {
        let jport = if j.port <= 0 {
            i32::from(default_port())
        } else {
            j.port
        };
        let juser = j.user.clone().unwrap_or_else(|| user.clone());
        if j.host == host && i32::from(port) == jport && juser == user {
            return Err(err(format!("jumphost loop via {}", j.host)));
        }
    }
    let host_key_alias = opts.host_key_alias.map(|a| a.to_ascii_lowercase());

    let thishost = ctx.thishost.clone();
    let short = thishost.split('.').next().unwrap_or("").to_string();
    let portstr = port.to_string();
    let uid = ctx.local.uid.to_string();
    let keyalias = host_key_alias.clone().unwrap_or_else(|| host_arg.clone());
    let hash = connection_hash(&thishost, &host, &portstr, &user);
    let keys: Vec<(char, String)> = vec![
        ('C', hash),
        ('L', short),
        ('i', uid),
        ('k', keyalias),
        ('l', thishost),
        ('n', host_arg.clone()),
        ('p', portstr),
        ('d', ctx.local.home.clone()),
        ('h', host.clone()),
        ('r', user.clone()),
        ('u', ctx.local.name.clone()),
    ];
    let expander = Expander {
        keys,
        home: ctx.local.home.clone(),
        env: ctx.env.clone(),
    };
    let identity_agent = match &opts.identity_agent {
        Some(a) => Some(
            expander
                .expand(a)
                .map_err(|e| err(format!("IdentityAgent {a}: {e}")))?,
        ),
        None => None,
    };
    if opts.system_hostfiles[0].eq_ignore_ascii_case("none") {
        if opts.system_hostfiles.len() > 1 {
            return Err(err(
                "Invalid GlobalKnownHostsFiles: \"none\" appears with other entries".into(),
            ));
        }
        opts.system_hostfiles.clear();
    }
    if opts.user_hostfiles[0].eq_ignore_ascii_case("none") {
        if opts.user_hostfiles.len() > 1 {
            return Err(err(
                "Invalid UserKnownHostsFiles: \"none\" appears with other entries".into(),
            ));
        }
        opts.user_hostfiles.clear();
    }
    let user_known_hosts = opts
        .user_hostfiles
        .iter()
        .map(|f| {
            expander
                .expand(f)
                .map_err(|e| err(format!("UserKnownHostsFile {f}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let strict = match opts.strict.as_deref() {
        Some("true" | "yes") => StrictHostKeyChecking::Yes,
        Some("false" | "no" | "off") => StrictHostKeyChecking::No,
        Some("accept-new") => StrictHostKeyChecking::AcceptNew,
        _ => StrictHostKeyChecking::Ask,
    };
    Ok(Resolved {
        host_arg,
        hostname: host,
        user,
        user_given,
        port,
        port_given,
        identity_files: opts.identity_files.into_iter().map(|(p, _)| p).collect(),
        identity_files_given: identity_files_set,
        certificate_files: opts.certificate_files.into_iter().map(|(p, _)| p).collect(),
        identities_only: opts.identities_only.unwrap_or(false),
        identity_agent,
        proxy_jump: jump,
        proxy_command,
        user_known_hosts,
        user_known_hosts_given: user_set,
        global_known_hosts: opts.system_hostfiles,
        global_known_hosts_given: system_set,
        strict_host_key_checking: strict,
        strict_given: opts.strict.is_some(),
        host_key_alias,
        connect_timeout: opts.connect_timeout,
        server_alive_interval: opts.server_alive_interval.unwrap_or(0),
        server_alive_count_max: opts.server_alive_count_max.unwrap_or(3),
        expander,
    })
}

/// The `%` tokens of one resolved connection (ssh's `DEFAULT_CLIENT_PERCENT_EXPAND_ARGS`)
/// plus `~` and `${VAR}`: what `ssh` applies to IdentityFile, CertificateFile,
/// UserKnownHostsFile and IdentityAgent before using them.
#[derive(Clone)]
pub struct Expander {
    keys: Vec<(char, String)>,
    home: String,
    env: super::EnvFn,
}

impl std::fmt::Debug for Expander {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Expander")
            .field("keys", &self.keys)
            .finish()
    }
}

impl Expander {
    /// Only `~` (GlobalKnownHostsFile).
    pub fn tilde(&self, s: &str) -> Result<String, TokenError> {
        tokens::tilde_expand(s, &self.home, &sys::home_of)
    }

    /// `~` first, then `%` tokens and `${VAR}`.
    pub fn expand(&self, s: &str) -> Result<String, TokenError> {
        let t = tokens::tilde_expand(s, &self.home, &sys::home_of)?;
        let keys: Vec<(char, &str)> = self.keys.iter().map(|(c, v)| (*c, v.as_str())).collect();
        let env = &self.env;
        tokens::expand(&t, Some(&keys), Some(&|v: &str| env(v)))
    }

    /// `ProxyCommand` tokens as `expand_proxy_command` has them: `%h %k %n %p %r` and `%%`
    /// (without the `exec ` ssh puts in front).
    pub fn expand_command(&self, s: &str) -> Result<String, TokenError> {
        let keys: Vec<(char, &str)> = self
            .keys
            .iter()
            .filter(|(c, _)| "hknpr".contains(*c))
            .map(|(c, v)| (*c, v.as_str()))
            .collect();
        tokens::percent_expand(s, &keys)
    }
}
