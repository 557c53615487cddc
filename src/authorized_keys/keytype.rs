//! The key type names that may start a key in an `authorized_keys` line, and the type
//! string each one's base64 blob must carry inside.

/// `(name in the file, type string embedded in the blob)`. The list matches the one in
/// `ansible.posix.authorized_key` (which follows OpenSSH's `sshkey.c`): plain keys,
/// security-key (`sk-*`) keys, certificates, and the RSA signature-algorithm aliases that
/// OpenSSH also accepts as a key type.
const KEY_TYPES: &[(&str, &str)] = &[
    ("ssh-ed25519", "ssh-ed25519"),
    ("ssh-rsa", "ssh-rsa"),
    ("rsa-sha2-256", "ssh-rsa"),
    ("rsa-sha2-512", "ssh-rsa"),
    ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256"),
    ("ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384"),
    ("ecdsa-sha2-nistp521", "ecdsa-sha2-nistp521"),
    ("ssh-dss", "ssh-dss"),
    ("sk-ssh-ed25519@openssh.com", "sk-ssh-ed25519@openssh.com"),
    (
        "sk-ecdsa-sha2-nistp256@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    ),
    (
        "webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    ),
    ("ssh-xmss@openssh.com", "ssh-xmss@openssh.com"),
    (
        "ssh-ed25519-cert-v01@openssh.com",
        "ssh-ed25519-cert-v01@openssh.com",
    ),
    (
        "ssh-rsa-cert-v01@openssh.com",
        "ssh-rsa-cert-v01@openssh.com",
    ),
    (
        "rsa-sha2-256-cert-v01@openssh.com",
        "ssh-rsa-cert-v01@openssh.com",
    ),
    (
        "rsa-sha2-512-cert-v01@openssh.com",
        "ssh-rsa-cert-v01@openssh.com",
    ),
    (
        "ecdsa-sha2-nistp256-cert-v01@openssh.com",
        "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    ),
    (
        "ecdsa-sha2-nistp384-cert-v01@openssh.com",
        "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    ),
    (
        "ecdsa-sha2-nistp521-cert-v01@openssh.com",
        "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    ),
    (
        "ssh-dss-cert-v01@openssh.com",
        "ssh-dss-cert-v01@openssh.com",
    ),
    (
        "sk-ssh-ed25519-cert-v01@openssh.com",
        "sk-ssh-ed25519-cert-v01@openssh.com",
    ),
    (
        "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
        "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
    ),
    (
        "ssh-xmss-cert-v01@openssh.com",
        "ssh-xmss-cert-v01@openssh.com",
    ),
];

/// The type string a blob must carry for key type `name`, or `None` if `name` is not a
/// key type.
pub fn blob_type_for(name: &str) -> Option<&'static str> {
    KEY_TYPES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, blob)| *blob)
}

/// Whether `name` is a key type name.
pub fn is_key_type(name: &str) -> bool {
    blob_type_for(name).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_unknown() {
        for (name, blob) in [
            ("ssh-ed25519", "ssh-ed25519"),
            ("rsa-sha2-512", "ssh-rsa"),
            ("sk-ssh-ed25519@openssh.com", "sk-ssh-ed25519@openssh.com"),
            (
                "webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
                "sk-ecdsa-sha2-nistp256@openssh.com",
            ),
            (
                "rsa-sha2-256-cert-v01@openssh.com",
                "ssh-rsa-cert-v01@openssh.com",
            ),
        ] {
            assert_eq!(blob_type_for(name), Some(blob), "{name}");
        }
        for name in ["", "ssh", "SSH-RSA", "ssh-ed448", "no-pty"] {
            assert!(!is_key_type(name), "{name}");
        }
    }
}
