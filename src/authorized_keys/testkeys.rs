//! Real public keys made with `ssh-keygen` for the unit tests (public halves only), with the
//! fingerprints `ssh-keygen -lf` printed for them.

pub const ED1: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILBMAcXt2SwG7tKvfMsGR3mySouX65yZmmfxLDgQxbl8 user1@example";
pub const ED1_FP: &str = "SHA256:HyScNq+iHKTOJGBY6vwXefGE/9iHIrhbdTEQUBBM9UQ";
pub const ED2: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfTLuzNL4FLdZc1vtMh+7bltZ54tm0xYBSik9Dh2Mpk user2@example";
pub const ED3: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILt4U46t8jZCPZWyLT1WeN+m+eKXbl5quipXox8sIngT user3@example";
pub const RSA1: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQCkJZoO6l8f1mBzQeh31QqNnzc9CVYegdxNlKBTAZvPWykVii2BqzBXTuTLvS4hd07Bsgv3zL00pfQJCStNpRoUhfbwL8gIUac/JEoE5Vd68VGTvxYh6V5PbAUWr+mRreD8Gr4mQsPFw4CGyeLZupzGYPc17WM/9hfKWb7f4MNouw== rsa@example";
pub const RSA1_FP: &str = "SHA256:BrgMjxfJlsKXq1ACsuxfKBUxHtP6B0H+8v7ifUvSHkQ";
pub const EC1: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBJY2zM/MbGJz0LJjObUva2No9MtbAESyQwo8dOTHWYU8T9EBP8PsVUSwxSBGxUP57HGi+f4NM1IeXC6lgUC8Z6s= ec@example";
pub const EC1_FP: &str = "SHA256:hC80f+VuPNMY/fR8o83T9/PJDjQYnYGDqLi6ZVf3BWg";
/// ED2's public key signed by ED1 as a user certificate.
pub const ED2_CERT: &str = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIC/ZNqfjymvOMIAYPfXA9nfgcKIrvYwmHZBc6buTDzZcAAAAIBfTLuzNL4FLdZc1vtMh+7bltZ54tm0xYBSik9Dh2MpkAAAAAAAAAAAAAAABAAAACHRlc3RjZXJ0AAAACQAAAAVhbGljZQAAAAAAAAAA//////////8AAAAAAAAAggAAABVwZXJtaXQtWDExLWZvcndhcmRpbmcAAAAAAAAAF3Blcm1pdC1hZ2VudC1mb3J3YXJkaW5nAAAAAAAAABZwZXJtaXQtcG9ydC1mb3J3YXJkaW5nAAAAAAAAAApwZXJtaXQtcHR5AAAAAAAAAA5wZXJtaXQtdXNlci1yYwAAAAAAAAAAAAAAMwAAAAtzc2gtZWQyNTUxOQAAACCwTAHF7dksBu7Sr3zLBkd5skqLl+ucmZpn8Sw4EMW5fAAAAFMAAAALc3NoLWVkMjU1MTkAAABAd5pDD0+QFrEvABww2HM9PgJWky6oVNqCQOhvJpTnpeWzmBmshWHhUcJJkyKvYzxiWayOREjhMrcrSmhQTVHkAA== user2@example";
/// Security-key keys (blobs built to the OpenSSH PROTOCOL.u2f layout).
pub const SK_ED: &str = "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fAAAABHNzaDo= sk@example";
pub const SK_EC: &str = "sk-ecdsa-sha2-nistp256@openssh.com AAAAInNrLWVjZHNhLXNoYTItbmlzdHAyNTZAb3BlbnNzaC5jb20AAAAIbmlzdHAyNTYAAABBBAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAEc3NoOg== skec@example";

/// `type blob` of a full key line (no comment).
pub fn bare(line: &str) -> String {
    line.split(' ').take(2).collect::<Vec<_>>().join(" ")
}
