//! OpenSSH 9.2's client keyword table (`readconf.c` `keywords[]`, as Debian 12 builds it:
//! GSSAPI with Debian's key-exchange patch, PKCS#11, zlib) and the value checks `ssh`
//! applies to each keyword, also inside blocks that do not apply. Algorithm names are
//! what `ssh -Q cipher|mac|kex|key-sig|kex-gss` lists for that build.

use super::tokens;

/// What a keyword is, as far as the resolver cares: the settings sshfleet uses get their
/// own variant, every other keyword only the check of its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kw {
    Host,
    Match,
    Include,
    IdentityFile,
    CertificateFile,
    HostName,
    User,
    Port,
    IdentitiesOnly,
    IdentityAgent,
    ProxyCommand,
    ProxyJump,
    UserKnownHostsFile,
    GlobalKnownHostsFile,
    StrictHostKeyChecking,
    HostKeyAlias,
    ConnectTimeout,
    ServerAliveInterval,
    ServerAliveCountMax,
    IgnoreUnknown,
    CanonicalizeHostname,
    /// Checked only: how.
    Other(Check),
}

/// The value check of a keyword sshfleet does not use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// `Protocol`: silently ignored.
    Ignore,
    /// Deprecated: arguments ignored.
    Deprecated,
    /// Unsupported: an error message, but not a refusal.
    Unsupported,
    Flag,
    Multi(&'static [&'static str]),
    Time,
    Int,
    Str,
    /// Raw rest of the line (LocalCommand, RemoteCommand, KnownHostsCommand).
    Command,
    Ciphers,
    Macs,
    Kex,
    GssKex,
    KeyAlgos,
    LogLevel,
    LogFacility,
    LogVerbose,
    LocalForward,
    RemoteForward,
    DynamicForward,
    PermitRemoteOpen,
    SendEnv,
    SetEnv,
    EscapeChar,
    ControlPersist,
    TunnelDevice,
    IpQos,
    RekeyLimit,
    CanonicalDomains,
    PermittedCnames,
    StreamLocalBindMask,
    FingerprintHash,
    AddKeysToAgent,
    ForwardAgent,
}

pub const FLAG: &[&str] = &["true", "false", "yes", "no"];
pub const YESNOASK: &[&str] = &["true", "false", "yes", "no", "ask"];
pub const STRICT: &[&str] = &["true", "false", "yes", "no", "ask", "off", "accept-new"];
const CONTROLMASTER: &[&str] = &["true", "yes", "false", "no", "auto", "ask", "autoask"];
const TUNNEL: &[&str] = &["ethernet", "point-to-point", "true", "yes", "false", "no"];
const REQUESTTTY: &[&str] = &["true", "yes", "false", "no", "force", "auto"];
const SESSIONTYPE: &[&str] = &["none", "subsystem", "default"];
const ADDRESSFAMILY: &[&str] = &["inet", "inet6", "any"];
pub const CANONICALIZE: &[&str] = &["true", "false", "yes", "no", "always"];
const PUBKEYAUTH: &[&str] = &["true", "false", "yes", "no", "unbound", "host-bound"];
const COMPRESSION: &[&str] = &["yes", "no"];
const YESNOASKCONFIRM: &[&str] = &["true", "false", "yes", "no", "ask", "confirm"];

/// `parse_token`: the keyword (already lower-cased), or `None` for an unknown one.
pub fn lookup(k: &str) -> Option<Kw> {
    use Check::*;
    use Kw::*;
    Some(match k {
        "host" => Host,
        "match" => Match,
        "include" => Include,
        "identityfile" | "identityfile2" => IdentityFile,
        "certificatefile" => CertificateFile,
        "hostname" => HostName,
        "user" => User,
        "port" => Port,
        "identitiesonly" => IdentitiesOnly,
        "identityagent" => IdentityAgent,
        "proxycommand" => ProxyCommand,
        "proxyjump" => ProxyJump,
        "userknownhostsfile" => UserKnownHostsFile,
        "globalknownhostsfile" => GlobalKnownHostsFile,
        "stricthostkeychecking" => StrictHostKeyChecking,
        "hostkeyalias" => HostKeyAlias,
        "connecttimeout" => ConnectTimeout,
        // Debian's keepalive patch: both are aliases of ServerAliveInterval.
        "serveraliveinterval" | "protocolkeepalives" | "setuptimeout" => ServerAliveInterval,
        "serveralivecountmax" => ServerAliveCountMax,
        "ignoreunknown" => IgnoreUnknown,
        "canonicalizehostname" => CanonicalizeHostname,

        "protocol" => Other(Ignore),
        "cipher"
        | "fallbacktorsh"
        | "globalknownhostsfile2"
        | "rhostsauthentication"
        | "userknownhostsfile2"
        | "useroaming"
        | "usersh"
        | "useprivilegedport"
        | "useblacklistedkeys" => Other(Deprecated),
        "afstokenpassing"
        | "kerberosauthentication"
        | "kerberostgtpassing"
        | "rsaauthentication"
        | "rhostsrsaauthentication"
        | "compressionlevel" => Other(Unsupported),
        "gssapiauthentication"
        | "gssapidelegatecredentials"
        | "gssapikeyexchange"
        | "gssapitrustdns"
        | "gssapirenewalforcesrekey" => Other(Flag),
        "gssapiclientidentity" | "gssapiserveridentity" => Other(Str),
        "gssapikexalgorithms" => Other(GssKex),
        "pkcs11provider" | "smartcarddevice" => Other(Str),
        "forwardagent" => Other(ForwardAgent),
        "forwardx11"
        | "forwardx11trusted"
        | "exitonforwardfailure"
        | "gatewayports"
        | "passwordauthentication"
        | "kbdinteractiveauthentication"
        | "challengeresponseauthentication"
        | "skeyauthentication"
        | "tisauthentication"
        | "hostbasedauthentication"
        | "batchmode"
        | "checkhostip"
        | "tcpkeepalive"
        | "keepalive"
        | "enablesshkeysign"
        | "nohostauthenticationforlocalhost"
        | "clearallforwardings"
        | "hashknownhosts"
        | "permitlocalcommand"
        | "visualhostkey"
        | "stdinnull"
        | "forkafterauthentication"
        | "proxyusefdpass"
        | "canonicalizefallbacklocal"
        | "streamlocalbindunlink"
        | "enableescapecommandline" => Other(Flag),
        "forwardx11timeout" => Other(Time),
        "xauthlocation"
        | "kbdinteractivedevices"
        | "preferredauthentications"
        | "bindaddress"
        | "bindinterface"
        | "securitykeyprovider"
        | "controlpath"
        | "revokedhostkeys" => Other(Str),
        "knownhostscommand" | "localcommand" | "remotecommand" => Other(Command),
        "pubkeyauthentication" | "dsaauthentication" => Other(Multi(PUBKEYAUTH)),
        "verifyhostkeydns" | "updatehostkeys" => Other(Multi(YESNOASK)),
        "compression" => Other(Multi(COMPRESSION)),
        "controlmaster" => Other(Multi(CONTROLMASTER)),
        "tunnel" => Other(Multi(TUNNEL)),
        "requesttty" => Other(Multi(REQUESTTTY)),
        "sessiontype" => Other(Multi(SESSIONTYPE)),
        "addressfamily" => Other(Multi(ADDRESSFAMILY)),
        "numberofpasswordprompts"
        | "connectionattempts"
        | "canonicalizemaxdots"
        | "requiredrsasize" => Other(Int),
        "ciphers" => Other(Ciphers),
        "macs" => Other(Macs),
        "kexalgorithms" => Other(Kex),
        "hostkeyalgorithms"
        | "casignaturealgorithms"
        | "hostbasedacceptedalgorithms"
        | "hostbasedkeytypes"
        | "pubkeyacceptedalgorithms"
        | "pubkeyacceptedkeytypes" => Other(KeyAlgos),
        "loglevel" => Other(LogLevel),
        "syslogfacility" => Other(LogFacility),
        "logverbose" => Other(LogVerbose),
        "localforward" => Other(LocalForward),
        "remoteforward" => Other(RemoteForward),
        "dynamicforward" => Other(DynamicForward),
        "permitremoteopen" => Other(PermitRemoteOpen),
        "sendenv" => Other(SendEnv),
        "setenv" => Other(SetEnv),
        "escapechar" => Other(EscapeChar),
        "controlpersist" => Other(ControlPersist),
        "tunneldevice" => Other(TunnelDevice),
        "ipqos" => Other(IpQos),
        "rekeylimit" => Other(RekeyLimit),
        "canonicaldomains" => Other(CanonicalDomains),
        "canonicalizepermittedcnames" => Other(PermittedCnames),
        "streamlocalbindmask" => Other(StreamLocalBindMask),
        "fingerprinthash" => Other(FingerprintHash),
        "addkeystoagent" => Other(AddKeysToAgent),
        _ => return None,
    })
}

const CIPHERS: &[&str] = &[
    "3des-cbc",
    "aes128-cbc",
    "aes192-cbc",
    "aes256-cbc",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
];
const MACS: &[&str] = &[
    "hmac-sha1",
    "hmac-sha1-96",
    "hmac-sha2-256",
    "hmac-sha2-512",
    "hmac-md5",
    "hmac-md5-96",
    "umac-64@openssh.com",
    "umac-128@openssh.com",
    "hmac-sha1-etm@openssh.com",
    "hmac-sha1-96-etm@openssh.com",
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "hmac-md5-etm@openssh.com",
    "hmac-md5-96-etm@openssh.com",
    "umac-64-etm@openssh.com",
    "umac-128-etm@openssh.com",
];
const KEX: &[&str] = &[
    "diffie-hellman-group1-sha1",
    "diffie-hellman-group14-sha1",
    "diffie-hellman-group14-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group-exchange-sha1",
    "diffie-hellman-group-exchange-sha256",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
];
const GSS_KEX: &[&str] = &[
    "gss-gex-sha1-",
    "gss-group1-sha1-",
    "gss-group14-sha1-",
    "gss-group14-sha256-",
    "gss-group16-sha512-",
    "gss-nistp256-sha256-",
    "gss-curve25519-sha256-",
];
const KEY_ALGOS: &[&str] = &[
    "ssh-ed25519",
    "ssh-ed25519-cert-v01@openssh.com",
    "sk-ssh-ed25519@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-dss",
    "ssh-dss-cert-v01@openssh.com",
    "ssh-rsa",
    "ssh-rsa-cert-v01@openssh.com",
    "rsa-sha2-256",
    "rsa-sha2-256-cert-v01@openssh.com",
    "rsa-sha2-512",
    "rsa-sha2-512-cert-v01@openssh.com",
];

/// `ciphers_valid`/`mac_valid`/`kex_names_valid`: comma-separated known names; the
/// check stops at the first empty element, as `strsep` loops in OpenSSH do.
fn names_valid(list: &str, known: &[&str], wildcard: bool) -> bool {
    if list.is_empty() {
        return false;
    }
    for p in list.split(',') {
        if p.is_empty() {
            break;
        }
        if known.contains(&p) {
            continue;
        }
        // sshkey_names_valid2(.., allow_wildcard): a pattern matching some key type.
        if wildcard
            && known
                .iter()
                .any(|k| super::pattern::match_pattern_list(k, p, false) != 0)
        {
            continue;
        }
        return false;
    }
    true
}

/// An algorithm list as the keywords take it: `-list` is not checked, `+list`/`^list` are.
pub fn algos_valid(arg: &str, check: Check) -> bool {
    if arg.starts_with('-') {
        return true;
    }
    let l = arg.strip_prefix(['+', '^']).unwrap_or(arg);
    match check {
        Check::Ciphers => names_valid(l, CIPHERS, false),
        Check::Macs => names_valid(l, MACS, false),
        Check::Kex => names_valid(l, KEX, false),
        Check::GssKex => names_valid(l, GSS_KEX, false),
        _ => names_valid(l, KEY_ALGOS, true),
    }
}

/// `convtime`: seconds from `90`, `1h30m`, `2d`...; `None` if invalid.
pub fn convtime(s: &str) -> Option<i64> {
    if s.is_empty() {
        return None;
    }
    let b = s.as_bytes();
    let mut total: i64 = 0;
    let mut i = 0;
    while i < b.len() {
        let (secs, next) = strtol(s, i)?;
        if secs < 0 {
            return None;
        }
        i = next;
        let mult: i64 = match b.get(i) {
            None => 1,
            Some(c) => {
                i += 1;
                match c {
                    b's' | b'S' => 1,
                    b'm' | b'M' => 60,
                    b'h' | b'H' => 3600,
                    b'd' | b'D' => 86400,
                    b'w' | b'W' => 604800,
                    _ => return None,
                }
            }
        };
        if secs > i32::MAX as i64 / mult {
            return None;
        }
        total += secs * mult;
        if total > i32::MAX as i64 {
            return None;
        }
    }
    Some(total)
}

/// `strtol(s + at, &end, 10)`: `None` if no digits were read.
fn strtol(s: &str, at: usize) -> Option<(i64, usize)> {
    let b = s.as_bytes();
    let mut i = at;
    while i < b.len() && (b[i] == b' ' || (b'\t'..=b'\r').contains(&b[i])) {
        i += 1;
    }
    let mut neg = false;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        neg = b[i] == b'-';
        i += 1;
    }
    let ds = i;
    let mut v: i64 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        v = v.saturating_mul(10).saturating_add((b[i] - b'0') as i64);
        i += 1;
    }
    if i == ds {
        return None;
    }
    Some((if neg { -v } else { v }, i))
}

/// `strtonum(s, min, max)`: the whole string a number in range.
pub fn strtonum(s: &str, min: i64, max: i64) -> Option<i64> {
    let (v, end) = strtol(s, 0)?;
    (end == s.len() && (min..=max).contains(&v)).then_some(v)
}

/// `a2port`: 0..65535, else a service name; `None` if neither.
pub fn a2port(s: &str) -> Option<i64> {
    strtonum(s, 0, 65535).or_else(|| super::sys::service_port(s).map(i64::from))
}

/// `parse_multistate_value`: case-insensitive member of the table.
pub fn multistate(arg: Option<&str>, table: &[&str]) -> Option<String> {
    let a = arg?;
    table
        .iter()
        .find(|k| k.eq_ignore_ascii_case(a))
        .map(|k| k.to_string())
}

/// `valid_env_name`.
pub fn valid_env_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// The checks ForwardAgent (path form) and IdentityAgent apply to a socket path.
pub fn agent_path_error(arg: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    if tokens::dollar_expand(arg, env).is_err() {
        return Some(format!("Invalid environment expansion {arg}."));
    }
    if let Some(rest) = arg.strip_prefix('$')
        && !rest.starts_with('{')
        && !valid_env_name(rest)
    {
        return Some(format!("Invalid environment name {arg}."));
    }
    None
}

/// `valid_domain`: starts alphanumeric, then alphanumerics, `.`, `-`, `_`, no `..`.
pub fn valid_domain(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() {
        return false;
    }
    let mut prev = 0u8;
    for &c in b {
        if !c.is_ascii_alphanumeric() && c != b'.' && c != b'-' && c != b'_' {
            return false;
        }
        if c == b'.' && prev == b'.' {
            return false;
        }
        prev = c;
    }
    true
}

/// `parse_forward`'s field split: `[` ... `]` literal, `\` escapes, `:` separates.
fn fwd_fields(spec: &str) -> Option<Vec<(String, bool)>> {
    let b = spec.trim_start().as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() && out.len() < 4 {
        if b[i] == b'[' {
            let end = b[i + 1..].iter().position(|c| *c == b']')? + i + 1;
            if !(end + 1 == b.len() || b[end + 1] == b':') {
                return None;
            }
            let f = &b[i + 1..end];
            out.push((String::from_utf8_lossy(f).into_owned(), f.contains(&b'/')));
            i = end + 2;
            continue;
        }
        let mut f = Vec::new();
        let mut ispath = false;
        while i < b.len() {
            match b[i] {
                b'\\' => {
                    i += 1;
                    if i >= b.len() {
                        return None;
                    }
                    f.push(b[i]);
                }
                b'/' => {
                    ispath = true;
                    f.push(b'/');
                }
                b':' => break,
                c => f.push(c),
            }
            i += 1;
        }
        let sep = i < b.len();
        out.push((String::from_utf8_lossy(&f).into_owned(), ispath));
        i += 1;
        if !sep {
            break;
        }
    }
    if i < b.len() {
        return None; // trailing garbage after four fields
    }
    Some(out)
}

/// `parse_forward(spec, dynamic, remote) != 0`.
pub fn forward_valid(
    spec: &str,
    dynamic: bool,
    remote: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> bool {
    let Ok(spec) = tokens::dollar_expand(spec, env) else {
        return false;
    };
    let Some(f) = fwd_fields(&spec) else {
        return false;
    };
    let port = |s: &str| a2port(s).unwrap_or(-1);
    const STREAMLOCAL: i64 = -2;
    // (listen_port, listen_path?, connect_port, connect_path?)
    let (lport, lpath, cport, cpath, chost_len, lhost_len) = match f.len() {
        1 => {
            if f[0].1 {
                (STREAMLOCAL, true, 0, false, 5, 0)
            } else {
                (port(&f[0].0), false, 0, false, 5, 0)
            }
        }
        2 => {
            if f[0].1 && f[1].1 {
                (STREAMLOCAL, true, STREAMLOCAL, true, 0, 0)
            } else if f[1].1 {
                (port(&f[0].0), false, STREAMLOCAL, true, 0, 0)
            } else {
                (port(&f[1].0), false, 0, false, 5, f[0].0.len())
            }
        }
        3 => {
            if f[0].1 {
                (STREAMLOCAL, true, port(&f[2].0), false, f[1].0.len(), 0)
            } else if f[2].1 {
                (port(&f[1].0), false, STREAMLOCAL, true, 0, f[0].0.len())
            } else {
                (port(&f[0].0), false, port(&f[2].0), false, f[1].0.len(), 0)
            }
        }
        4 => (
            port(&f[1].0),
            false,
            port(&f[3].0),
            false,
            f[2].0.len(),
            f[0].0.len(),
        ),
        _ => return false,
    };
    let n = f.len();
    if dynamic {
        if !(n == 1 || n == 2) {
            return false;
        }
    } else {
        if !(n == 3 || n == 4 || cpath || lpath) {
            return false;
        }
        if cport <= 0 && !cpath {
            return false;
        }
    }
    if (lport < 0 && !lpath) || (!remote && lport == 0) {
        return false;
    }
    chost_len < 1025 && lhost_len < 1025
}

/// Check the value of a keyword sshfleet does not use. `args` is the `argv_split` of the
/// rest of the line; returns how many words were consumed (the rest is "extra
/// arguments") or the error message.
pub fn check_other(
    check: Check,
    keyword: &str,
    args: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<usize, String> {
    use Check::*;
    let first = args.first().map(String::as_str);
    let missing = || "Missing argument.".to_string();
    let need = || -> Result<&str, String> {
        match first {
            Some(a) if !a.is_empty() => Ok(a),
            _ => Err(missing()),
        }
    };
    match check {
        Ignore | Deprecated | Command => Ok(args.len()),
        Unsupported => Ok(args.len()),
        Flag => multistate(first, FLAG)
            .map(|_| 1)
            .ok_or_else(|| format!("unsupported option \"{}\".", first.unwrap_or("(null)"))),
        Multi(t) => multistate(first, t)
            .map(|_| 1)
            .ok_or_else(|| format!("unsupported option \"{}\".", first.unwrap_or("(null)"))),
        Time => {
            let a = first
                .filter(|a| !a.is_empty())
                .ok_or("missing time value.")?;
            if a != "none" && convtime(a).is_none() {
                return Err("invalid time value.".into());
            }
            Ok(1)
        }
        Int => {
            let a = first
                .filter(|a| !a.is_empty())
                .ok_or("integer value missing.")?;
            strtonum(a, 0, i32::MAX as i64).ok_or("integer value invalid.")?;
            Ok(1)
        }
        Str => need().map(|_| 1),
        Ciphers | Macs | Kex | GssKex | KeyAlgos => {
            let a = need()?;
            if !algos_valid(a, check) {
                return Err(format!("Bad {keyword} '{a}'."));
            }
            Ok(1)
        }
        LogLevel => {
            const L: &[&str] = &[
                "QUIET", "FATAL", "ERROR", "INFO", "VERBOSE", "DEBUG", "DEBUG1", "DEBUG2", "DEBUG3",
            ];
            match first {
                Some(a) if L.iter().any(|l| l.eq_ignore_ascii_case(a)) => Ok(1),
                _ => Err(format!(
                    "unsupported log level '{}'",
                    first.unwrap_or("<NONE>")
                )),
            }
        }
        LogFacility => {
            const F: &[&str] = &[
                "DAEMON", "USER", "AUTH", "AUTHPRIV", "LOCAL0", "LOCAL1", "LOCAL2", "LOCAL3",
                "LOCAL4", "LOCAL5", "LOCAL6", "LOCAL7",
            ];
            match first {
                Some(a) if F.iter().any(|l| l.eq_ignore_ascii_case(a)) => Ok(1),
                _ => Err(format!(
                    "unsupported log facility '{}'",
                    first.unwrap_or("<NONE>")
                )),
            }
        }
        LogVerbose | CanonicalDomains => {
            for (i, a) in args.iter().enumerate() {
                if a.is_empty() {
                    return Err(format!("keyword {keyword} empty argument"));
                }
                if a.eq_ignore_ascii_case("none") && (i > 0 || args.len() > 1) {
                    return Err(format!(
                        "keyword {keyword} \"none\" argument must appear alone."
                    ));
                }
                if check == CanonicalDomains && !valid_domain(a) {
                    return Err(format!("invalid domain name {a}"));
                }
            }
            Ok(args.len())
        }
        PermittedCnames => {
            for (i, a) in args.iter().enumerate() {
                if a.eq_ignore_ascii_case("none") {
                    if i > 0 || args.len() > 1 {
                        return Err(format!(
                            "keyword {keyword} \"none\" argument must appear alone."
                        ));
                    }
                } else if a != "*" {
                    match a.find(':') {
                        Some(p) if p + 1 < a.len() => {}
                        _ => return Err(format!("Invalid permitted CNAME \"{a}\"")),
                    }
                }
            }
            Ok(args.len())
        }
        LocalForward | RemoteForward => {
            let a = need()?;
            let remote = check == RemoteForward;
            let (spec, dynamic, used) = match args.get(1).filter(|s| !s.is_empty()) {
                Some(b) => (format!("{a}:{b}"), false, 2),
                None if remote => (a.to_string(), true, 1),
                None => return Err("Missing target argument.".into()),
            };
            if !forward_valid(&spec, dynamic, remote, env) {
                return Err("Bad forwarding specification.".into());
            }
            Ok(used)
        }
        DynamicForward => {
            let a = need()?;
            if !forward_valid(a, true, false, env) {
                return Err("Bad forwarding specification.".into());
            }
            Ok(1)
        }
        PermitRemoteOpen => {
            if args.is_empty() {
                return Err(format!("missing {keyword} specification"));
            }
            for (i, a) in args.iter().enumerate() {
                if a.eq_ignore_ascii_case("none") || a.eq_ignore_ascii_case("any") {
                    if i > 0 || args.len() > 1 {
                        return Err(format!(
                            "keyword {keyword} \"{a}\" argument must appear alone."
                        ));
                    }
                    continue;
                }
                let Some((_, port)) = super::jump::hpdelim(a) else {
                    return Err(format!("missing host in {keyword}"));
                };
                match port {
                    Some(p) if p == "*" || a2port(&p).is_some_and(|v| v > 0) => {}
                    _ => return Err(format!("bad port number in {keyword}")),
                }
            }
            Ok(args.len())
        }
        SendEnv => {
            for a in args {
                if a.is_empty() || a.contains('=') {
                    return Err("Invalid environment name.".into());
                }
            }
            Ok(args.len())
        }
        SetEnv => {
            for a in args {
                if !a.contains('=') {
                    return Err("Invalid SetEnv.".into());
                }
            }
            Ok(args.len())
        }
        EscapeChar => {
            let a = need()?.as_bytes();
            let ok = a == b"none"
                || a.len() == 1
                || (a.len() == 2 && a[0] == b'^' && (64..128).contains(&a[1]));
            if !ok {
                return Err("Bad escape character.".into());
            }
            Ok(1)
        }
        ControlPersist => {
            let a = first
                .filter(|a| !a.is_empty())
                .ok_or("Missing ControlPersist argument.")?;
            if !matches!(a, "no" | "false" | "yes" | "true") && convtime(a).is_none() {
                return Err("Bad ControlPersist argument.".into());
            }
            Ok(1)
        }
        TunnelDevice => {
            let a = need()?;
            let one = |s: &str| s == "any" || strtonum(s, 0, i32::MAX as i64 - 2).is_some();
            let ok = match a.split_once(':') {
                Some((l, r)) => one(l) && one(r),
                None => one(a),
            };
            if !ok {
                return Err("Bad tun device.".into());
            }
            Ok(1)
        }
        IpQos => {
            const Q: &[&str] = &[
                "none",
                "af11",
                "af12",
                "af13",
                "af21",
                "af22",
                "af23",
                "af31",
                "af32",
                "af33",
                "af41",
                "af42",
                "af43",
                "cs0",
                "cs1",
                "cs2",
                "cs3",
                "cs4",
                "cs5",
                "cs6",
                "cs7",
                "ef",
                "le",
                "lowdelay",
                "throughput",
                "reliability",
            ];
            let ok = |s: &str| {
                Q.iter().any(|q| q.eq_ignore_ascii_case(s))
                    || parse_c_long(s).is_some_and(|v| (0..=255).contains(&v))
            };
            for a in args.iter().take(2) {
                if !ok(a) {
                    return Err(format!("Bad IPQoS value: {a}"));
                }
            }
            if args.is_empty() {
                return Err("Bad IPQoS value: (null)".into());
            }
            Ok(args.len().min(2))
        }
        RekeyLimit => {
            let a = need()?;
            if a != "default" {
                let v = scan_scaled(a).ok_or_else(|| format!("Bad number '{a}'"))?;
                if v != 0 && v < 16 {
                    return Err("RekeyLimit too small".into());
                }
            }
            match args.get(1) {
                None => Ok(1),
                Some(t) if t == "none" => Ok(2),
                Some(t) => {
                    if t.is_empty() {
                        return Err("missing time value.".into());
                    }
                    if t != "none" && convtime(t).is_none() {
                        return Err("invalid time value.".into());
                    }
                    Ok(2)
                }
            }
        }
        StreamLocalBindMask => {
            let a = first
                .filter(|a| !a.is_empty())
                .ok_or("Missing StreamLocalBindMask argument.")?;
            let digits: String = a
                .trim_start()
                .chars()
                .take_while(|c| ('0'..='7').contains(c))
                .collect();
            match i64::from_str_radix(&digits, 8) {
                Ok(v) if v <= 0o777 => Ok(1),
                _ => Err("Bad mask.".into()),
            }
        }
        FingerprintHash => {
            let a = need()?;
            if !["md5", "sha1", "sha256", "sha384", "sha512"]
                .iter()
                .any(|h| h.eq_ignore_ascii_case(a))
            {
                return Err(format!("Invalid hash algorithm \"{a}\"."));
            }
            Ok(1)
        }
        AddKeysToAgent => {
            let a = first;
            let b = args.get(1).map(String::as_str);
            let v = multistate(a, YESNOASKCONFIRM);
            match (v.as_deref(), b) {
                (Some("confirm"), Some(t)) => {
                    if convtime(t).is_none() {
                        return Err("invalid time value.".into());
                    }
                }
                (None, None) => {
                    if a.and_then(convtime).is_none() {
                        return Err("unsupported option".into());
                    }
                }
                (None, Some(_)) | (Some(_), Some(_)) => return Err("unsupported option".into()),
                (Some(_), None) => {}
            }
            Ok(args.len().min(2))
        }
        ForwardAgent => {
            let a = need()?;
            if multistate(Some(a), FLAG).is_none()
                && let Some(e) = agent_path_error(a, env)
            {
                return Err(e);
            }
            Ok(1)
        }
    }
}

/// `strtol(s, &ep, 0)` with the whole string used: decimal, `0x` hex or `0` octal.
fn parse_c_long(s: &str) -> Option<i64> {
    if s.is_empty() {
        return None;
    }
    let (neg, t) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()?
    } else if t.len() > 1 && t.starts_with('0') {
        i64::from_str_radix(&t[1..], 8).ok()?
    } else {
        t.parse::<i64>().ok()?
    };
    Some(if neg { -v } else { v })
}

/// `scan_scaled`: a number with an optional fraction and a B/K/M/G/T/P/E scale.
fn scan_scaled(s: &str) -> Option<i64> {
    let (num, scale) = match s.chars().last()? {
        c if c.is_ascii_alphabetic() => (&s[..s.len() - 1], c.to_ascii_uppercase()),
        _ => (s, 'B'),
    };
    let shift = "BKMGTPE".find(scale)? as u32;
    let v: f64 = num
        .parse()
        .ok()
        .filter(|_| !num.is_empty() && !num.starts_with(['+', '-']))?;
    let r = v * 1024f64.powi(shift as i32);
    (r.is_finite() && r < i64::MAX as f64).then_some(r as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn table() {
        assert_eq!(lookup("hostname"), Some(Kw::HostName));
        assert_eq!(lookup("identityfile2"), Some(Kw::IdentityFile));
        assert_eq!(lookup("setuptimeout"), Some(Kw::ServerAliveInterval));
        assert_eq!(lookup("usekeychain"), None); // macOS only: unknown to OpenSSH 9.2
        assert_eq!(lookup("HostName"), None); // callers lower-case first
    }

    #[test]
    fn times_and_numbers() {
        assert_eq!(convtime("90"), Some(90));
        assert_eq!(convtime("1h30m"), Some(5400));
        assert_eq!(convtime("1w"), Some(604800));
        assert_eq!(convtime("5x"), None);
        assert_eq!(convtime("-1"), None);
        assert_eq!(convtime(""), None);
        assert_eq!(strtonum("+22", 0, 65535), Some(22));
        assert_eq!(strtonum("22a", 0, 65535), None);
        assert_eq!(a2port("70000"), None);
        assert_eq!(a2port("ssh"), Some(22));
    }

    #[test]
    fn algorithm_lists() {
        assert!(algos_valid("aes128-ctr,aes256-ctr", Check::Ciphers));
        assert!(algos_valid("+aes128-cbc", Check::Ciphers));
        assert!(algos_valid("-anything", Check::Ciphers));
        assert!(!algos_valid("arcfour", Check::Ciphers));
        assert!(algos_valid("aes128-ctr,,bogus", Check::Ciphers));
        assert!(algos_valid("+ssh-rsa*", Check::KeyAlgos));
        assert!(!algos_valid("ssh-foo", Check::KeyAlgos));
        assert!(algos_valid("umac-128-etm@openssh.com", Check::Macs));
    }

    #[test]
    fn forwards() {
        assert!(forward_valid("8080:localhost:80", false, false, &env));
        assert!(forward_valid("1080", true, false, &env));
        assert!(forward_valid("8080", true, true, &env));
        assert!(!forward_valid("0:localhost:80", false, false, &env));
        assert!(forward_valid("[::1]:8080:[::1]:80", false, false, &env));
        assert!(!forward_valid("8080:localhost", false, false, &env));
        assert!(forward_valid("/tmp/a.sock:/tmp/b.sock", false, false, &env));
    }

    #[test]
    fn other_checks() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(check_other(Check::Flag, "x", &a(&["yes"]), &env), Ok(1));
        assert!(check_other(Check::Flag, "x", &a(&["maybe"]), &env).is_err());
        assert!(check_other(Check::Int, "x", &a(&["abc"]), &env).is_err());
        assert_eq!(
            check_other(Check::IpQos, "x", &a(&["af21", "cs1"]), &env),
            Ok(2)
        );
        assert!(check_other(Check::SetEnv, "x", &a(&["FOO"]), &env).is_err());
        assert!(check_other(Check::EscapeChar, "x", &a(&["^A"]), &env).is_ok());
        assert!(check_other(Check::ForwardAgent, "x", &a(&["${NOPE}"]), &env).is_err());
        assert_eq!(
            check_other(Check::RekeyLimit, "x", &a(&["1G", "1h"]), &env),
            Ok(2)
        );
        assert!(check_other(Check::RekeyLimit, "x", &a(&["8"]), &env).is_err());
        assert_eq!(
            check_other(Check::AddKeysToAgent, "x", &a(&["confirm", "5m"]), &env),
            Ok(2)
        );
        assert!(check_other(Check::AddKeysToAgent, "x", &a(&["yes", "5m"]), &env).is_err());
    }
}
