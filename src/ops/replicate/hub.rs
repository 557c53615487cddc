//! The meeting point of destination jobs and the source pump for streamed files.
//!
//! Each destination job holds a [`Ticket`]. After deciding what it needs it registers (one
//! flag per streamed file) and gets a chunk receiver for each needed file. A job that fails,
//! runs in check mode, needs nothing, or is dropped (timeout, Ctrl-C, panic) checks in with
//! "nothing" when its ticket drops, and goes on without waiting.
//!
//! Destinations that need bytes are grouped into *waves* in the order they register. A wave
//! closes when it has `wave_size` members or when every ticket has checked in; the pump
//! then reads each needed file once for the whole wave. With `wave_size` = the fleet
//! runner's `--forks`, a wave never waits for a host that cannot start: at most `forks` jobs
//! run, and jobs that need nothing finish and free their slot. With forks ≥ the number of
//! hosts there is one wave, and every file is read from the source exactly once. A host
//! that hangs before checking in (a stalled handshake) must not hold the others: an open wave
//! also closes when nobody checked in for [`LINGER`] (at worst the source is then read once
//! more for the late hosts).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::fanout::{ChunkReceiver, ChunkSender, dest_channel};

/// How long an open wave waits for one more check-in before it starts anyway.
pub const LINGER: Duration = Duration::from_secs(10);

/// One wave: per streamed file, the destinations (key, sender) that need it.
pub type Wave = Vec<Vec<(usize, ChunkSender)>>;

struct State {
    files: usize,
    wave_size: usize,
    outstanding: usize,
    open: Wave,
    open_members: usize,
    closed: VecDeque<Wave>,
    last_checkin: Instant,
    linger: Duration,
}

impl State {
    fn close_open(&mut self) {
        if self.open_members > 0 {
            let wave = std::mem::replace(
                &mut self.open,
                (0..self.files).map(|_| Vec::new()).collect(),
            );
            self.open_members = 0;
            self.closed.push_back(wave);
        }
    }
}

/// See the module docs.
pub struct Hub {
    state: Mutex<State>,
    changed: Notify,
}

impl Hub {
    /// A hub for `files` streamed files and `destinations` tickets, in waves of at most
    /// `wave_size` destinations.
    pub fn new(files: usize, destinations: usize, wave_size: usize) -> (Arc<Hub>, Vec<Ticket>) {
        Self::with_linger(files, destinations, wave_size, LINGER)
    }

    /// [`Hub::new`] with an explicit linger time.
    pub fn with_linger(
        files: usize,
        destinations: usize,
        wave_size: usize,
        linger: Duration,
    ) -> (Arc<Hub>, Vec<Ticket>) {
        let hub = Arc::new(Hub {
            state: Mutex::new(State {
                files,
                wave_size: wave_size.max(1),
                outstanding: destinations,
                open: (0..files).map(|_| Vec::new()).collect(),
                open_members: 0,
                closed: VecDeque::new(),
                last_checkin: Instant::now(),
                linger,
            }),
            changed: Notify::new(),
        });
        let tickets = (0..destinations)
            .map(|key| Ticket {
                hub: Arc::clone(&hub),
                key,
                used: false,
            })
            .collect();
        (hub, tickets)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next closed wave, or `None` once every ticket checked in and every wave was taken.
    pub async fn next_wave(&self) -> Option<Wave> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wait = {
                let mut st = self.lock();
                if st.open_members > 0 && st.last_checkin.elapsed() >= st.linger {
                    st.close_open();
                }
                if let Some(w) = st.closed.pop_front() {
                    return Some(w);
                }
                if st.outstanding == 0 {
                    return None;
                }
                // With members waiting, wake up when the linger time is over.
                (st.open_members > 0).then(|| st.linger.saturating_sub(st.last_checkin.elapsed()))
            };
            match wait {
                Some(d) => {
                    let _ = tokio::time::timeout(d, notified).await;
                }
                None => notified.await,
            }
        }
    }

    fn checkin(&self, key: usize, needs: &[bool]) -> Vec<Option<ChunkReceiver>> {
        let mut st = self.lock();
        let mut out = Vec::with_capacity(st.files);
        let member = needs.iter().take(st.files).any(|n| *n);
        for k in 0..st.files {
            if member && needs.get(k).copied().unwrap_or(false) {
                let (tx, rx) = dest_channel();
                st.open[k].push((key, tx));
                out.push(Some(rx));
            } else {
                out.push(None);
            }
        }
        if member {
            st.open_members += 1;
        }
        st.last_checkin = Instant::now();
        st.outstanding -= 1;
        if st.open_members >= st.wave_size || st.outstanding == 0 {
            st.close_open();
        }
        drop(st);
        self.changed.notify_waiters();
        out
    }
}

/// A destination's right (and duty) to check in once.
pub struct Ticket {
    hub: Arc<Hub>,
    key: usize,
    used: bool,
}

impl Ticket {
    /// The destination's key (its index in the destination list).
    pub fn key(&self) -> usize {
        self.key
    }

    /// Register which streamed files this destination needs; returns their receivers.
    pub fn register(mut self, needs: &[bool]) -> Vec<Option<ChunkReceiver>> {
        self.used = true;
        self.hub.checkin(self.key, needs)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.used {
            self.hub.checkin(self.key, &[]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(w: &Wave, k: usize) -> Vec<usize> {
        w[k].iter().map(|(key, _)| *key).collect()
    }

    #[tokio::test]
    async fn one_wave_waits_for_every_ticket_including_dropped_ones() {
        let (hub, mut tickets) = Hub::new(2, 3, 10);
        let t2 = tickets.pop().unwrap();
        let t1 = tickets.pop().unwrap();
        let t0 = tickets.pop().unwrap();
        let rx0 = t0.register(&[true, false]);
        assert!(rx0[0].is_some() && rx0[1].is_none());
        let waiter = {
            let hub = Arc::clone(&hub);
            tokio::spawn(async move { hub.next_wave().await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(t1);
        let _rx2 = t2.register(&[true, true]);
        let w = waiter.await.unwrap().unwrap();
        assert_eq!(keys(&w, 0), vec![0, 2]);
        assert_eq!(keys(&w, 1), vec![2]);
        assert!(hub.next_wave().await.is_none());
    }

    #[tokio::test]
    async fn waves_close_when_full_and_hosts_needing_nothing_do_not_count() {
        let (hub, tickets) = Hub::new(1, 5, 2);
        let mut it = tickets.into_iter();
        let _a = it.next().unwrap().register(&[true]);
        let none = it.next().unwrap().register(&[false]);
        assert!(none[0].is_none());
        let _c = it.next().unwrap().register(&[true]);
        let w1 = hub.next_wave().await.unwrap();
        assert_eq!(keys(&w1, 0), vec![0, 2]);
        let _d = it.next().unwrap().register(&[true]);
        drop(it); // the fifth ticket is dropped unused
        let w2 = hub.next_wave().await.unwrap();
        assert_eq!(keys(&w2, 0), vec![3]);
        assert!(hub.next_wave().await.is_none());
    }

    #[tokio::test]
    async fn a_host_that_never_checks_in_does_not_hold_the_wave_forever() {
        let (hub, tickets) = Hub::with_linger(1, 3, 10, Duration::from_millis(100));
        let mut it = tickets.into_iter();
        let _a = it.next().unwrap().register(&[true]);
        let hung = it.next().unwrap(); // stays outstanding
        let started = Instant::now();
        let w = hub.next_wave().await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(90));
        assert_eq!(keys(&w, 0), vec![0]);
        let _c = it.next().unwrap().register(&[true]);
        drop(hung);
        let w2 = hub.next_wave().await.unwrap();
        assert_eq!(keys(&w2, 0), vec![2]);
        assert!(hub.next_wave().await.is_none());
    }

    #[tokio::test]
    async fn nobody_needing_anything_ends_without_a_wave() {
        let (hub, tickets) = Hub::new(3, 2, 5);
        drop(tickets);
        assert!(hub.next_wave().await.is_none());
    }
}
