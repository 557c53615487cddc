//! `sshfleet_slurp`: the Ansible binary module (see `sshfleet::module::slurp`).

fn main() {
    std::process::exit(sshfleet::module::slurp::main());
}
