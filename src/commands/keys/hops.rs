//! Rotation order around bastions: a host of the run that other hosts of the run are reached
//! through (a `ProxyJump` hop) rotates only **after** all of them finished, and only if they
//! all rotated; otherwise it keeps its old key and is reported failed.
//!
//! Why this order: the run itself is safe either way (the bastion session is authenticated
//! once, at the start, and stays open), but *after* the run, a host behind the bastion that
//! did not switch (unreachable, new key refused) still needs the old key, and the way to it
//! goes through the bastion. If the bastion had dropped the old key, reaching that host
//! would need the new key on the bastion and the old one behind it: one key mix-up away
//! from a lock-out. Rotating the bastion last, and not at all when something behind it is
//! left on the old key, keeps the old key valid along the whole path to every host that
//! still depends on it.
//!
//! A host is "behind" hop host H when one of its hops is H: the same chain of
//! (address, port) endpoints leads to the hop and to H's own inventory entry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::inventory::conn::ConnSpec;

/// Which hosts of a run are hops for which others, and who finished how.
#[derive(Debug, Default)]
pub struct HopOrder {
    /// Hop host → the hosts of the run reached through it.
    behind: HashMap<String, Vec<String>>,
    /// Finished hosts: rotated (true) or not (false).
    done: Mutex<HashMap<String, bool>>,
    changed: tokio::sync::Notify,
}

/// The endpoints leading to a host: its hops' and its own (address, port), outermost first.
type Chain = Vec<(String, u16)>;

fn chain(hops: &[ConnSpec], last: &ConnSpec) -> Chain {
    hops.iter()
        .chain(std::iter::once(last))
        .map(|s| (s.address.clone(), s.port))
        .collect()
}

impl HopOrder {
    /// Plan the order for `specs`; `hops_of` gives a spec's hop specs, outermost first.
    pub fn plan(specs: &[ConnSpec], hops_of: impl Fn(&ConnSpec) -> Vec<ConnSpec>) -> Self {
        let hops: Vec<Vec<ConnSpec>> = specs.iter().map(&hops_of).collect();
        let own: HashMap<Chain, &str> = specs
            .iter()
            .zip(&hops)
            .map(|(s, h)| (chain(h, s), s.name.as_str()))
            .collect();
        let mut behind: HashMap<String, Vec<String>> = HashMap::new();
        for (s, h) in specs.iter().zip(&hops) {
            for k in 0..h.len() {
                if let Some(&hop_host) = own.get(&chain(&h[..k], &h[k]))
                    && hop_host != s.name
                {
                    let v = behind.entry(hop_host.to_string()).or_default();
                    if !v.contains(&s.name) {
                        v.push(s.name.clone());
                    }
                }
            }
        }
        HopOrder {
            behind,
            ..Default::default()
        }
    }

    /// How many hosts of the run are hops for others (each may wait for them, holding a
    /// fork slot: a run needs more forks than this to never stall).
    pub fn hop_hosts(&self) -> usize {
        self.behind.len()
    }

    /// The hosts reached through `host` (empty when it is no hop).
    pub fn behind(&self, host: &str) -> &[String] {
        self.behind.get(host).map(Vec::as_slice).unwrap_or_default()
    }

    /// Wait until every host behind `host` finished; the ones that did not rotate.
    pub async fn wait_behind(&self, host: &str) -> Vec<String> {
        let behind = self.behind(host);
        loop {
            let notified = self.changed.notified();
            {
                let done = self.done.lock().unwrap_or_else(|p| p.into_inner());
                if behind.iter().all(|h| done.contains_key(h)) {
                    return behind
                        .iter()
                        .filter(|h| done.get(*h) != Some(&true))
                        .cloned()
                        .collect();
                }
            }
            notified.await;
        }
    }

    /// Record that `host` finished (rotated or not).
    pub fn finish(&self, host: &str, rotated: bool) {
        self.done
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(host.to_string(), rotated);
        self.changed.notify_waiters();
    }

    /// A guard that records `host` as not rotated unless [`Finish::rotated`] is called
    /// (a job that fails, times out or is cancelled still releases its hops).
    pub fn guard(self: &Arc<Self>, host: &str) -> Finish {
        Finish {
            order: self.clone(),
            host: host.to_string(),
            rotated: false,
        }
    }
}

/// See [`HopOrder::guard`].
pub struct Finish {
    order: Arc<HopOrder>,
    host: String,
    rotated: bool,
}

impl Finish {
    pub fn rotated(&mut self, yes: bool) {
        self.rotated = yes;
    }
}

impl Drop for Finish {
    fn drop(&mut self) {
        self.order.finish(&self.host, self.rotated);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh::proxy::{HopResolver, hop_specs, inherit_from_target};

    fn spec(name: &str, port: u16, jump: Option<&str>) -> ConnSpec {
        let mut s = ConnSpec::new(name);
        s.address = "10.0.0.1".into();
        s.port = port;
        s.proxy_jump = jump.map(str::to_string);
        s
    }

    fn plan(specs: &[ConnSpec]) -> HopOrder {
        let r: HopResolver = Arc::new(inherit_from_target);
        HopOrder::plan(specs, |s| hop_specs(&r, s).unwrap())
    }

    #[test]
    fn hosts_behind_each_hop_are_found_through_chains() {
        let specs = [
            spec("bastion", 22, None),
            spec("app", 2201, Some("u@10.0.0.1")),
            spec("hop2", 2202, Some("10.0.0.1:22")),
            spec("deep", 2203, Some("10.0.0.1,u@10.0.0.1:2202")),
            spec("other", 2204, Some("10.9.9.9")),
            // Same address and port as hop2, but reached directly: another machine.
            spec("lookalike", 2202, None),
        ];
        let o = plan(&specs);
        assert_eq!(o.behind("bastion"), ["app", "hop2", "deep"]);
        assert_eq!(o.behind("hop2"), ["deep"]);
        assert!(o.behind("app").is_empty());
        assert!(o.behind("lookalike").is_empty());
        assert_eq!(o.hop_hosts(), 2);
    }

    #[tokio::test]
    async fn a_hop_waits_for_the_hosts_behind_it_and_learns_who_failed() {
        let specs = [
            spec("bastion", 22, None),
            spec("a", 2201, Some("10.0.0.1")),
            spec("b", 2202, Some("10.0.0.1")),
        ];
        let o = Arc::new(plan(&specs));
        let waiter = {
            let o = o.clone();
            tokio::spawn(async move { o.wait_behind("bastion").await })
        };
        tokio::task::yield_now().await;
        o.finish("a", true);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        {
            // A job that ends without saying "rotated" (failed, cancelled) counts as failed.
            let _g = o.guard("b");
        }
        assert_eq!(waiter.await.unwrap(), ["b"]);
        // Nothing behind it: no wait.
        assert!(o.wait_behind("a").await.is_empty());
    }
}
