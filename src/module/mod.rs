//! The Ansible binary-module protocol: args file in, operation, one JSON object out.
