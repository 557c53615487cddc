//! Run a per-host job over many hosts with a concurrency limit, emitting events.
