//! The pure part of a rotation: from the `authorized_keys` text as read, the new key and the
//! `--keep` keys, compute the exclusive set to apply and what it keeps and removes.
//!
//! A key in the set that is already in the file is carried over **as written there** (its
//! options and comment are kept); a key not in the file is added as given. Keys are matched
//! by blob (their identity).

use crate::authorized_keys::{AuthorizedKeys, PublicKey};

/// One key as shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyInfo {
    pub fingerprint: String,
    pub key_type: String,
    pub comment: String,
}

impl KeyInfo {
    pub fn of(k: &PublicKey) -> KeyInfo {
        KeyInfo {
            fingerprint: k.fingerprint(),
            key_type: k.key_type.clone(),
            comment: k.comment.clone(),
        }
    }
}

impl std::fmt::Display for KeyInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.fingerprint, self.key_type)?;
        if !self.comment.is_empty() {
            write!(f, " ({})", self.comment)?;
        }
        Ok(())
    }
}

/// What the exclusive step of a rotation will do to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExclusivePlan {
    /// The key lines to pass as the exclusive set (new key first, then kept keys).
    pub set: Vec<String>,
    /// Keys in the file that stay.
    pub kept: Vec<KeyInfo>,
    /// Keys in the file that go.
    pub removed: Vec<KeyInfo>,
    /// Keys of the set that are not in the file yet (added by the exclusive step).
    pub added: Vec<KeyInfo>,
}

/// The exclusive set may not be empty (nobody could log in afterwards).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refusing an empty exclusive set: it would remove every key")]
pub struct EmptySet;

/// Plan the exclusive step: the set is `wanted` (deduplicated by blob, first wins), each
/// taken from `current` when the file has it.
pub fn exclusive_plan(
    current: &AuthorizedKeys,
    wanted: &[PublicKey],
) -> Result<ExclusivePlan, EmptySet> {
    let mut unique: Vec<&PublicKey> = Vec::new();
    for k in wanted {
        if !unique.iter().any(|u| u.blob == k.blob) {
            unique.push(k);
        }
    }
    if unique.is_empty() {
        return Err(EmptySet);
    }
    let in_file: Vec<&PublicKey> = current.keys().map(|(_, k)| k).collect();
    let mut set = Vec::new();
    let mut added = Vec::new();
    for k in &unique {
        match in_file.iter().find(|f| f.blob == k.blob) {
            Some(existing) => set.push(existing.render()),
            None => {
                set.push(k.render());
                added.push(KeyInfo::of(k));
            }
        }
    }
    let mut kept = Vec::new();
    let mut removed = Vec::new();
    for f in in_file {
        let info = KeyInfo::of(f);
        if unique.iter().any(|u| u.blob == f.blob) {
            if !kept.contains(&info) {
                kept.push(info);
            }
        } else if !removed.contains(&info) {
            removed.push(info);
        }
    }
    Ok(ExclusivePlan {
        set,
        kept,
        removed,
        added,
    })
}

/// The wanted set of a rotation: the new key, then the `--keep` keys.
pub fn rotation_set(new: &PublicKey, keep: &[PublicKey]) -> Vec<PublicKey> {
    let mut v = Vec::with_capacity(keep.len() + 1);
    v.push(new.clone());
    v.extend(keep.iter().cloned());
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authorized_keys::testkeys::{ED1, ED2, ED3, RSA1};

    fn key(line: &str) -> PublicKey {
        PublicKey::parse_line(line).unwrap()
    }

    #[test]
    fn keeps_file_options_and_comments_and_removes_the_rest() {
        let kept_line = format!(
            r#"from="10.0.0.1",no-pty {} kept comment"#,
            key(ED2).key_text()
        );
        let file = format!("# managed\n{ED1}\n{kept_line}\n{RSA1}\n");
        let current = AuthorizedKeys::parse(&file);
        // --keep is given bare (no options, other comment): the file's line wins.
        let keep = key(&format!("{} other", key(ED2).key_text()));
        let plan = exclusive_plan(&current, &rotation_set(&key(ED3), &[keep])).unwrap();
        assert_eq!(plan.set, vec![ED3.to_string(), kept_line.clone()]);
        assert_eq!(plan.added, vec![KeyInfo::of(&key(ED3))]);
        assert_eq!(plan.kept, vec![KeyInfo::of(&key(&kept_line))]);
        assert_eq!(
            plan.removed,
            vec![KeyInfo::of(&key(ED1)), KeyInfo::of(&key(RSA1))]
        );
    }

    #[test]
    fn new_key_already_present_is_taken_from_the_file() {
        let new_in_file = format!("no-agent-forwarding {}", ED3);
        let current = AuthorizedKeys::parse(&format!("{ED1}\n{new_in_file}\n"));
        let plan = exclusive_plan(&current, &rotation_set(&key(ED3), &[])).unwrap();
        assert_eq!(plan.set, vec![new_in_file]);
        assert!(plan.added.is_empty());
        assert_eq!(plan.removed, vec![KeyInfo::of(&key(ED1))]);
    }

    #[test]
    fn second_run_removes_nothing() {
        let current = AuthorizedKeys::parse(&format!("{ED3}\n{ED2}\n"));
        let plan = exclusive_plan(&current, &rotation_set(&key(ED3), &[key(ED2)])).unwrap();
        assert!(plan.removed.is_empty() && plan.added.is_empty());
        assert_eq!(plan.kept.len(), 2);
    }

    #[test]
    fn duplicates_collapse_and_empty_is_refused() {
        let current = AuthorizedKeys::parse("");
        let plan = exclusive_plan(&current, &rotation_set(&key(ED3), &[key(ED3)])).unwrap();
        assert_eq!(plan.set.len(), 1);
        assert_eq!(exclusive_plan(&current, &[]), Err(EmptySet));
    }

    #[test]
    fn key_info_display() {
        let k = KeyInfo::of(&key(ED1));
        assert_eq!(
            k.to_string(),
            format!("{} ssh-ed25519 (user1@example)", key(ED1).fingerprint())
        );
    }
}
