//! `sshfleet_authorized_key`: the Ansible binary module (see `sshfleet::module::authorized_key`).

fn main() {
    std::process::exit(sshfleet::module::authorized_key::main());
}
