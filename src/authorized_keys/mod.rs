//! The `authorized_keys` file model: parse every line, edit (present / absent / exclusive,
//! `key_options`, `comment`), render; public key parsing and fingerprints. Pure: strings in,
//! strings out; no I/O (the operation that reads and writes the file on a host is
//! `ops::authorized_key`, one layer up).
//!
//! - [`file`](mod@file): a file as lines (keys, comments, blank lines, invalid lines kept verbatim);
//!   unedited input renders byte-identical.
//! - [`pubkey`]: one key `[options] type blob [comment]`, blob validation (it must decode and
//!   carry the type it claims), fingerprints as `ssh-keygen -lf` prints them, private-key
//!   detection.
//! - [`options`]: key options with OpenSSH's quoting rules.
//! - [`edit`]: the edit itself and its rules.
//!
//! # Semantics: those of `ansible.posix.authorized_key` (2.2.2)
//! Identity of an entry is its key blob. With `state: present` the supplied keys are applied
//! one after the other: a missing key is appended after the existing lines; an existing key's
//! line is rewritten, and moved to the end, when its key type, options or comment differ from
//! the wanted ones (so a key supplied twice with different comments is rewritten twice). The
//! wanted options are `key_options` when given, else the options written in the supplied key
//! (so re-adding a key without options removes the options on its line); the wanted comment
//! is `comment` when given, else the supplied key's comment (possibly none). Options are
//! compared as upstream compares them: per option name, values in order; the order of
//! different names does not matter. Any word after a known key type is the key data, as
//! upstream reads it ([`KeyCheck::Lenient`]). `state: absent` removes the key whatever its
//! options. `exclusive` (only with `present`) removes every line that is not a supplied key,
//! including comment and blank lines. The file is written 0600 owned by the user; `~/.ssh` is
//! created 0700 owned by the user with `manage_dir`; a symlinked file is replaced by a
//! regular file (its target untouched) unless `follow`.
//!
//! Upstream's own integration target (`scripts/upstream-tests.sh`, test
//! `tests/integration/upstream.rs`) passes 87 of 87 checks with the module standing in.
//!
//! # Opt-in: stricter than upstream where upstream's tests assert upstream's behaviour
//! The module's defaults are upstream's; the `sshfleet keys` CLI always uses these:
//! - **`validate_keys`**: the blob must be base64 and carry the type the key names, option
//!   names must be ones sshd knows (with a value exactly when they need one); private key
//!   material is refused without being echoed (always, not only with `validate_keys`).
//!   Upstream's tests add `ssh-rsa DATA_BASIC root@testing` and `idle-timeout=5m`.
//! - **`keep_position`**: a rewritten key stays in place, and a key supplied several times
//!   counts once (its last occurrence). Upstream's tests assert `changed` for a list that
//!   names one key twice, which only the move makes a byte change.
//! - **`refuse_symlinks`**: without `follow`, a symlinked file is refused instead of replaced.
//!   Upstream's tests (CVE-2026-11837) assert that the task succeeds.
//!
//! # Deviations from ansible.posix.authorized_key (fixes no upstream test contradicts)
//! Each is deliberate (most fix a defect of the upstream module) and named by the
//! differential test against the real module (`tests/integration/modules_authorized_key.rs`):
//! 1. **No trailing space**: a key without comment is written `type blob`; upstream writes
//!    `type blob ` (trailing space). Existing lines with such a space are left alone.
//! 2. **Untouched lines stay byte-identical**: upstream re-renders every key line whenever it
//!    writes (collapsing whitespace, adding that trailing space, adding a final newline) and
//!    collapses duplicate lines (identical comment/blank lines included) into one. Here only
//!    the lines the task addresses change.
//! 3. (Opt-in `keep_position`, above.)
//! 4. **Duplicates of a supplied key are removed** (`present`): so no second line for the key
//!    keeps weaker options; this is a change even if the first line already matched.
//! 5. **`changed` only when bytes change**, and options/comments compare whitespace-
//!    normalized, so a `key_options` or `comment` with stray whitespace is idempotent
//!    (upstream reports a change on every run: ansible.posix#327).
//! 6. **`key_options` are normalized**: whitespace around options is dropped and whitespace
//!    inside an option must be quoted (upstream writes `a, b` verbatim, which sshd cannot
//!    parse, silently disabling the key); a line break in `key_options` or `comment` is
//!    refused (upstream would write a second line). `comment` is trimmed.
//! 7. **Lines are parsed as OpenSSH parses them**: the options field ends at the first
//!    unquoted blank, so `command="echo ssh-rsa x" ssh-ed25519 ...` is read correctly
//!    (upstream splits at every blank and takes the first word that looks like a key type).
//! 8. (Opt-in `validate_keys`, above.) An existing line that is not a key is kept verbatim
//!    (removed by `exclusive`) and reported as a warning.
//! 9. **A list of keys** (`keys`) can be given in one task, so an exclusive set is built in one
//!    call instead of a loop where each iteration keeps only its own key.
//! 10. **`keep_comments`** (opt-in): `exclusive` keeps `#` lines and blank lines.
//! 11. **An empty exclusive set is refused** instead of emptying the file.
//! 12. **A missing final newline** is added before appending, so a last comment line is not
//!     merged with the new key (upstream writes `# commentssh-ed25519 ...`).
//! 13. **`manage_dir` only manages `~user/.ssh`**: with a custom `path` upstream chmods 0700
//!     and chowns the path's parent directory to the user (e.g. `/etc/ssh/authorized_keys`);
//!     here a custom path's directory is left as it is (missing parents are created 0755).
//! 14. **A symlinked `~/.ssh` is refused** unless `follow` (root would otherwise write, and
//!     chown to the user, a file wherever the link points). A symlinked file: opt-in
//!     `refuse_symlinks`, above.
//! 15. **A URL that does not give keys says what it gave**: URL, HTTP status, content type and
//!     the first bytes of the body (upstream: "Error getting key from: URL" or "invalid key").
//! 16. **Concurrent edits are not lost**: the write only replaces the file if it still has the
//!     content that was read (retried once), and is atomic (temp file, fsync, rename).
//! 17. **Non-UTF-8 files are refused** naming the line, instead of a Python traceback.
//!
//! Fingerprints are SHA256 of the blob; for a certificate line that is the certificate's
//! blob (`ssh-keygen -lf` shows the certified key's).

pub mod edit;
pub mod file;
mod keytype;
pub mod options;
pub mod pubkey;
#[cfg(test)]
pub(crate) mod testkeys;

pub use edit::{EditOutcome, EditSpec, State, apply_edit, desired_keys};
pub use file::{AuthorizedKeys, Line, LineKind};
pub use keytype::is_key_type;
pub use options::KeyOptions;
pub use pubkey::{
    KeyCheck, PublicKey, fingerprint, looks_like_private_key, parse_key_list, parse_key_list_with,
};

/// A key, key list or edit that could not be used. Messages never contain private key
/// material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Invalid(String),
    #[error("invalid key specified (key line {line}): {reason}: {text}")]
    InvalidKey {
        line: usize,
        text: String,
        reason: String,
    },
    #[error(
        "the key looks like a private key (it has a private key header); supply the public key \
         (the .pub file) instead; its content is not shown"
    )]
    PrivateKey,
    #[error("invalid key_options: {0}")]
    KeyOptions(String),
    #[error("invalid comment: {0}")]
    Comment(String),
    #[error("refusing an empty exclusive key set: it would remove every key (nobody could log in)")]
    EmptyExclusive,
    #[error("line {line} is not valid UTF-8; refusing to edit the file")]
    NotUtf8 { line: usize },
}
