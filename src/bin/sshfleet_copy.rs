//! `sshfleet_copy`: the Ansible binary module (see `sshfleet::module::copy`).

fn main() {
    std::process::exit(sshfleet::module::copy::main());
}
