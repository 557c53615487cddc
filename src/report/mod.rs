//! Events in, output out: progress bar (TTY only), Ansible-like per-host lines and recap, JSON.
