//! Resolve `--key`/`--keep` arguments into key text on the controller, once per run: key
//! text as given, a file read locally, or an http(s) URL fetched once (and validated, with a
//! clear error when the server answers with something that is not a key list).

use std::path::Path;

use crate::authorized_keys::{PublicKey, parse_key_list};
use crate::error::Error;

use super::KeySource;

/// One resolved source: where it came from (for messages) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedKeys {
    pub origin: String,
    pub text: String,
    pub keys: Vec<PublicKey>,
}

/// Parse `text` as a key list, naming `origin` in the error.
pub fn parse_source(origin: &str, text: &str) -> Result<Vec<PublicKey>, Error> {
    let keys = parse_key_list(text).map_err(|e| Error::Usage(format!("{origin}: {e}")))?;
    if keys.is_empty() {
        return Err(Error::Usage(format!("{origin}: contains no public key")));
    }
    Ok(keys)
}

fn read_file(path: &Path) -> Result<String, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path.display(), e))?;
    String::from_utf8(bytes)
        .map_err(|_| Error::Usage(format!("{}: not UTF-8 text", path.display())))
}

/// Resolve one source (URLs through `fetch`, which returns the body or a full error message).
pub fn resolve(
    src: &KeySource,
    fetch: &dyn Fn(&str) -> Result<String, String>,
) -> Result<ResolvedKeys, Error> {
    let (origin, text) = match src {
        KeySource::Literal(s) => ("--key argument".to_string(), s.clone()),
        KeySource::File(p) => (p.display().to_string(), read_file(p)?),
        KeySource::Url(u) => (u.clone(), fetch(u).map_err(Error::Usage)?),
    };
    let keys = parse_source(&origin, &text)?;
    Ok(ResolvedKeys { origin, text, keys })
}

/// Resolve all sources in order.
pub fn resolve_all(
    srcs: &[KeySource],
    fetch: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Vec<ResolvedKeys>, Error> {
    srcs.iter().map(|s| resolve(s, fetch)).collect()
}

/// All keys of the resolved sources as one newline-separated key string (the `key` option of
/// the authorized_key operation).
pub fn joined_text(resolved: &[ResolvedKeys]) -> String {
    resolved
        .iter()
        .flat_map(|r| r.keys.iter().map(|k| k.render()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authorized_keys::testkeys::{ED1, ED2};

    fn no_fetch(u: &str) -> Result<String, String> {
        Err(format!("unexpected fetch of {u}"))
    }

    #[test]
    fn literal_file_and_url() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.pub");
        std::fs::write(&p, format!("# team\n{ED2}\n\n")).unwrap();
        let got = resolve_all(
            &[
                KeySource::Literal(ED1.into()),
                KeySource::File(p.clone()),
                KeySource::Url("https://h/k".into()),
            ],
            &|u| {
                assert_eq!(u, "https://h/k");
                Ok(format!("{ED1}\n"))
            },
        )
        .unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[1].origin, p.display().to_string());
        assert_eq!(joined_text(&got), format!("{ED1}\n{ED2}\n{ED1}"));
    }

    #[test]
    fn errors_name_their_source() {
        let err = resolve(&KeySource::File("/nonexistent/k.pub".into()), &no_fetch).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/k.pub"), "{err}");
        let err = resolve(&KeySource::Literal("ssh-ed25519 !!!".into()), &no_fetch).unwrap_err();
        assert!(err.to_string().contains("--key argument"), "{err}");
        let err = resolve(&KeySource::Url("https://h/x".into()), &|_| {
            Err("https://h/x: HTTP 200, content-type text/html: <html>".into())
        })
        .unwrap_err();
        assert!(err.to_string().contains("text/html"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("empty.pub");
        std::fs::write(&p, "# nothing\n").unwrap();
        let err = resolve(&KeySource::File(p), &no_fetch).unwrap_err();
        assert!(err.to_string().contains("no public key"), "{err}");
    }
}
