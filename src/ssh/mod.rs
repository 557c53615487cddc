//! SSH connections: connect, authenticate (key files, agent), verify host keys against
//! known_hosts, timeouts and retries.
