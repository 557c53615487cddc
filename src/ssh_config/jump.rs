//! `ProxyJump` values and hop addresses: `[user@]host[:port]` and `ssh://` URIs, parsed as
//! OpenSSH's `parse_jump`/`parse_user_host_port`/`parse_ssh_uri` do, and the `proxyjump`
//! line `ssh -G` prints.

use super::keywords::{a2port, valid_domain};

/// A hop or jump list OpenSSH would not accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid jump host")]
pub struct BadJump;

/// One hop: `[user@]host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

/// The ProxyJump setting as OpenSSH keeps it: the last hop parsed, the hops before it as
/// text (`jump_extra`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jump {
    pub user: Option<String>,
    pub host: String,
    /// -1 when not given, 0 for `none`.
    pub port: i32,
    pub extra: Option<String>,
    /// The value as written (comment and trailing blanks removed).
    pub raw: String,
}

impl Jump {
    /// `ProxyJump none` (clears to "no jump" when defaults are filled in).
    pub fn is_none(&self) -> bool {
        self.host == "none" && self.port == 0 && self.user.is_none()
    }

    /// The `proxyjump` value as `ssh -G` prints it.
    pub fn display(&self) -> String {
        let numeric =
            self.host.contains(':') || self.host.bytes().all(|c| c.is_ascii_digit() || c == b'.');
        let mut s = String::new();
        if let Some(e) = &self.extra {
            s.push_str(e);
            s.push(',');
        }
        if let Some(u) = &self.user {
            s.push_str(u);
            s.push('@');
        }
        if numeric {
            s.push('[');
        }
        s.push_str(&self.host);
        if numeric {
            s.push(']');
        }
        if self.port > 0 {
            s.push(':');
            s.push_str(&self.port.to_string());
        }
        s
    }

    /// All hops in connection order (the first is the one the controller reaches
    /// directly). Empty for `none`.
    pub fn hops(&self) -> Vec<Hop> {
        if self.is_none() {
            return Vec::new();
        }
        let mut v: Vec<Hop> = self
            .extra
            .as_deref()
            .map(|e| e.split(',').filter_map(parse_hop).collect())
            .unwrap_or_default();
        v.push(Hop {
            user: self.user.clone(),
            host: self.host.clone(),
            port: u16::try_from(self.port).ok().filter(|p| *p > 0),
        });
        v
    }
}

/// `hpdelim`: `host[:port]` or `[host]:port`; `None` if malformed or `/`-separated.
pub fn hpdelim(s: &str) -> Option<(String, Option<String>)> {
    let (host, rest, delim) = hpdelim2(s)?;
    if delim == Some('/') {
        return None;
    }
    Some((host, rest))
}

fn hpdelim2(s: &str) -> Option<(String, Option<String>, Option<char>)> {
    let end = if s.starts_with('[') {
        s.find(']')? + 1
    } else {
        s.find([':', '/']).unwrap_or(s.len())
    };
    let host = s[..end].to_string();
    match s[end..].chars().next() {
        None => Some((host, None, None)),
        Some(c @ (':' | '/')) => Some((host, Some(s[end + 1..].to_string()), Some(c))),
        Some(_) => None,
    }
}

fn cleanhostname(h: &str) -> &str {
    if h.len() >= 2 && h.starts_with('[') && h.ends_with(']') {
        &h[1..h.len() - 1]
    } else {
        h
    }
}

/// `parse_user_host_port`.
pub fn parse_user_host_port(s: &str) -> Option<Hop> {
    let (user, rest) = match s.rfind('@') {
        Some(p) => {
            if p == 0 {
                return None;
            }
            (Some(s[..p].to_string()), &s[p + 1..])
        }
        None => (None, s),
    };
    let (host, port) = hpdelim(rest)?;
    if host.is_empty() {
        return None;
    }
    let host = cleanhostname(&host).to_string();
    let port = match port.filter(|p| !p.is_empty()) {
        Some(p) => Some(u16::try_from(a2port(&p).filter(|v| *v > 0)?).ok()?),
        None => None,
    };
    Some(Hop { user, host, port })
}

fn urldecode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let h = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// `parse_ssh_uri`: `Ok(None)` if `s` is not an `ssh://` URI, `Err` if it is a bad one.
pub fn parse_ssh_uri(s: &str) -> Result<Option<Hop>, BadJump> {
    let Some(rest) = s.strip_prefix("ssh://") else {
        return Ok(None);
    };
    let (user, rest) = match rest.find('@') {
        Some(p) => {
            let mut u = &rest[..p];
            if let Some(d) = u.find(';') {
                u = &u[..d];
            }
            if u.is_empty() {
                return Err(BadJump);
            }
            (Some(urldecode(u).ok_or(BadJump)?), &rest[p + 1..])
        }
        None => (None, rest),
    };
    let (host, tail, delim) = hpdelim2(rest).ok_or(BadJump)?;
    if host.is_empty() {
        return Err(BadJump);
    }
    let host = cleanhostname(&host).to_string();
    if !valid_domain(&host) {
        return Err(BadJump);
    }
    let mut port = None;
    let mut path = None;
    if let Some(t) = tail.filter(|t| !t.is_empty()) {
        let mut t = Some(t);
        if delim == Some(':') {
            let tt = t.take().unwrap_or_default();
            let (p, after) = match tt.find('/') {
                Some(i) => (tt[..i].to_string(), Some(tt[i + 1..].to_string())),
                None => (tt.clone(), None),
            };
            let v = a2port(&p).filter(|v| *v > 0).ok_or(BadJump)?;
            port = Some(u16::try_from(v).map_err(|_| BadJump)?);
            t = after;
        }
        if let Some(t) = t.filter(|t| !t.is_empty()) {
            path = Some(urldecode(&t).ok_or(BadJump)?);
        }
    }
    if path.is_some() {
        return Err(BadJump);
    }
    Ok(Some(Hop { user, host, port }))
}

/// One hop of a jump list, as `parse_jump` accepts it (URI or `[user@]host[:port]`).
pub fn parse_hop(s: &str) -> Option<Hop> {
    match parse_ssh_uri(s) {
        Err(BadJump) => None,
        Ok(Some(h)) => Some(h),
        Ok(None) => parse_user_host_port(s),
    }
}

/// `parse_jump`: check the whole list and build the setting. `Err` on a bad hop.
pub fn parse_jump(s: &str) -> Result<Jump, BadJump> {
    let mut sdup = match s.find('#') {
        Some(p) => s[..p].to_string(),
        None => s.to_string(),
    };
    while sdup.ends_with([' ', '\t', '\r', '\n']) {
        sdup.pop();
    }
    if s.eq_ignore_ascii_case("none") {
        return Ok(Jump {
            user: None,
            host: "none".into(),
            port: 0,
            extra: None,
            raw: "none".into(),
        });
    }
    let raw = sdup.clone();
    let mut last: Option<Hop> = None;
    loop {
        let (rest, cp) = match sdup.rfind(',') {
            Some(p) => (Some(sdup[..p].to_string()), sdup[p + 1..].to_string()),
            None => (None, sdup.clone()),
        };
        let hop = parse_hop(&cp).ok_or(BadJump)?;
        if last.is_none() {
            last = Some(hop);
        }
        match rest {
            Some(r) => sdup = r,
            None => break,
        }
    }
    let last = last.ok_or(BadJump)?;
    let extra = match s.rfind(',') {
        Some(p) if p > 0 => Some(s[..p].to_string()),
        _ => None,
    };
    Ok(Jump {
        user: last.user,
        host: last.host,
        port: last.port.map(i32::from).unwrap_or(-1),
        extra,
        raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hops() {
        assert_eq!(
            parse_user_host_port("deploy@bastion:2222"),
            Some(Hop {
                user: Some("deploy".into()),
                host: "bastion".into(),
                port: Some(2222)
            })
        );
        assert_eq!(parse_user_host_port("[::1]:22").unwrap().host, "::1");
        assert_eq!(
            parse_user_host_port("a@b@c").unwrap().user.as_deref(),
            Some("a@b")
        );
        assert!(parse_user_host_port("@host").is_none());
        assert!(parse_user_host_port("host:0").is_none());
        assert!(parse_user_host_port("host:x").is_none());
        assert_eq!(parse_hop("ssh://u@h:2200").unwrap().port, Some(2200));
        assert!(parse_hop("ssh://h/path").is_none());
    }

    #[test]
    fn jump_lists() {
        let j = parse_jump("a,u@b:2200,c").unwrap();
        assert_eq!(j.host, "c");
        assert_eq!(j.extra.as_deref(), Some("a,u@b:2200"));
        assert_eq!(j.display(), "a,u@b:2200,c");
        let hops = j.hops();
        assert_eq!(hops.len(), 3);
        assert_eq!(hops[1].port, Some(2200));
        assert_eq!(
            parse_jump("ops@10.0.0.1:2222").unwrap().display(),
            "ops@[10.0.0.1]:2222"
        );
        assert!(parse_jump("none").unwrap().is_none());
        assert_eq!(
            parse_jump("ops@10.0.0.1:2222 # c").unwrap().raw,
            "ops@10.0.0.1:2222"
        );
        assert!(parse_jump("a,,b").is_err());
        assert!(parse_jump("bastion # comment").is_ok());
    }
}
