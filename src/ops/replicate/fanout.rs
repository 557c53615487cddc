//! One source stream to many destination streams, with bounded memory.
//!
//! The source's [`Target::read_stream`] fills a channel of [`SOURCE_DEPTH`] chunks; each chunk
//! is hashed once and handed to every destination's channel of [`DEST_DEPTH`] chunks (plus
//! the [`RELAY_DEPTH`] of the destination's length check in [`crate::ops::copy`]). Chunks are
//! reference-counted [`Bytes`], so all destinations share one copy of each chunk: a slow
//! destination fills its own channel and then holds back the fan-out (backpressure), which
//! stops the source read. The number of distinct chunks alive is therefore at most
//! `SOURCE_DEPTH + DEST_DEPTH + RELAY_DEPTH + 2` whatever the file size and the number of
//! destinations: with the SSH reader's 64 KiB chunks ≈ 1.1 MiB, with the local reader's
//! 256 KiB ≈ 4.5 MiB. (Had every destination its own copy, the bound would be chunk × depth ×
//! hosts; sharing removes the × hosts.) What the transport keeps per connection comes on
//! top and is the SSH layer's bound: over SSH a stream goes to `cat` through
//! `ChannelWriteHalf::data_bytes`, which queues slices of these same shared chunks, at most
//! the destination's channel window (2 MiB with OpenSSH) each, never a copy.
//!
//! A destination that goes away (its write failed, its connection died) is dropped from the
//! fan-out; the others proceed. One that accepts nothing for [`STALL_TIMEOUT`] (a hung host)
//! is dropped too, so it cannot hold the others hostage; its stream then ends short, which
//! its length check turns into an abort. A source that fails mid-way, or whose bytes do not
//! hash to the digest taken before streaming, ends every destination's stream with an error,
//! so every destination aborts its write and removes its temp file.

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::files::checksum::{Sha256Digest, StreamHasher, to_hex};
use crate::target::Target;

/// Chunks buffered between the source reader and the fan-out.
pub const SOURCE_DEPTH: usize = 8;
/// Chunks buffered per destination.
pub const DEST_DEPTH: usize = 8;
/// Chunks buffered in a destination's length check.
pub const RELAY_DEPTH: usize = 2;
/// A destination that takes no chunk for this long is dropped from the fan-out.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(120);

/// A chunk channel as [`crate::target::Body::Stream`] takes it.
pub type ChunkSender = mpsc::Sender<Result<Bytes, String>>;
pub type ChunkReceiver = mpsc::Receiver<Result<Bytes, String>>;

/// A channel for one destination.
pub fn dest_channel() -> (ChunkSender, ChunkReceiver) {
    mpsc::channel(DEST_DEPTH)
}

/// How one fan-out ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanOutResult {
    /// Bytes that flowed from the source.
    pub size: u64,
    /// Destinations (by the caller's key) that received the whole file.
    pub delivered: Vec<usize>,
    /// Destinations that went away or stalled mid-stream.
    pub dropped: Vec<usize>,
    /// The source failed or changed; every destination was told to abort.
    pub error: Option<String>,
}

/// Stream `path` from `source` to every sink, checking the bytes against `expect` (the
/// source's sha256 and size taken before). Sinks are `(key, sender)`.
pub async fn fan_out<S: Target>(
    source: &S,
    path: &str,
    expect: (Sha256Digest, u64),
    sinks: Vec<(usize, ChunkSender)>,
) -> FanOutResult {
    fan_out_with(source, path, expect, sinks, STALL_TIMEOUT).await
}

/// [`fan_out`] with an explicit stall timeout.
pub async fn fan_out_with<S: Target>(
    source: &S,
    path: &str,
    expect: (Sha256Digest, u64),
    sinks: Vec<(usize, ChunkSender)>,
    stall: Duration,
) -> FanOutResult {
    let (tx, mut rx) = mpsc::channel(SOURCE_DEPTH);
    let read = source.read_stream(path, tx);
    let forward = async {
        let mut sinks = sinks;
        let mut dropped = Vec::new();
        let mut hasher = StreamHasher::new();
        let mut error = None;
        while let Some(item) = rx.recv().await {
            match item {
                Ok(chunk) => {
                    hasher.update(&chunk);
                    let mut alive = Vec::with_capacity(sinks.len());
                    for (key, s) in sinks {
                        match tokio::time::timeout(stall, s.send(Ok(chunk.clone()))).await {
                            Ok(Ok(())) => alive.push((key, s)),
                            // Gone, or stalled: dropping the sender ends its stream short.
                            Ok(Err(_)) | Err(_) => dropped.push(key),
                        }
                    }
                    sinks = alive;
                    if sinks.is_empty() {
                        // Nobody listens any more: stop reading.
                        break;
                    }
                }
                Err(msg) => {
                    error = Some(msg);
                    break;
                }
            }
        }
        // Dropping `rx` here (on break) makes the reader stop.
        drop(rx);
        (sinks, dropped, hasher, error)
    };
    let (read_result, (sinks, dropped, hasher, mut error)) = tokio::join!(read, forward);
    let (sha, size) = hasher.finish();
    if error.is_none() {
        if let Err(e) = read_result {
            if !sinks.is_empty() {
                error = Some(format!("{}: reading source {path}: {e}", source.host()));
            }
        } else if !sinks.is_empty() && (sha, size) != expect {
            error = Some(format!(
                "{}: source {path} changed while it was read (now {size} bytes, sha256 {}; \
                 expected {} bytes, sha256 {})",
                source.host(),
                to_hex(&sha),
                expect.1,
                to_hex(&expect.0)
            ));
        }
    } else if let Some(e) = &mut error {
        *e = format!("{}: reading source {path}: {e}", source.host());
    }
    if let Some(msg) = &error {
        // Every remaining destination must see the error before its stream closes (a
        // `Body::Vouched` writer relies on it): a full channel gets it from a task that
        // waits until the destination takes it or goes away.
        for (_, s) in sinks.iter() {
            match s.try_send(Err(msg.clone())) {
                Err(mpsc::error::TrySendError::Full(item)) => {
                    let s = s.clone();
                    tokio::spawn(async move {
                        let _ = s.send(item).await;
                    });
                }
                Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
    }
    FanOutResult {
        size,
        delivered: if error.is_none() {
            sinks.iter().map(|(k, _)| *k).collect()
        } else {
            Vec::new()
        },
        dropped,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::checksum::sha256;
    use crate::ops::replicate::testutil::Rooted;

    async fn drain(mut rx: ChunkReceiver) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        while let Some(item) = rx.recv().await {
            out.extend_from_slice(&item?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn every_sink_gets_every_byte_and_a_stalled_one_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let src = Rooted::new("src", dir.path());
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        src.put("/f", &data);
        let (tx0, rx0) = dest_channel();
        let (tx1, rx1) = dest_channel();
        let (tx2, _stalled) = dest_channel(); // never read
        let reader0 = tokio::spawn(drain(rx0));
        let reader1 = tokio::spawn(drain(rx1));
        let r = fan_out_with(
            &src,
            "/f",
            (sha256(&data), data.len() as u64),
            vec![(0, tx0), (1, tx1), (2, tx2)],
            Duration::from_millis(200),
        )
        .await;
        assert_eq!(r.error, None);
        assert_eq!(r.delivered, vec![0, 1]);
        assert_eq!(r.dropped, vec![2]);
        assert_eq!(reader0.await.unwrap().unwrap(), data);
        assert_eq!(reader1.await.unwrap().unwrap(), data);
    }

    #[tokio::test]
    async fn wrong_expectation_ends_every_stream_with_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let src = Rooted::new("src", dir.path());
        src.put("/f", b"actual bytes");
        let (tx, rx) = dest_channel();
        let reader = tokio::spawn(drain(rx));
        let r = fan_out(&src, "/f", (sha256(b"other"), 5), vec![(0, tx)]).await;
        assert!(r.error.unwrap().contains("changed while it was read"));
        assert!(reader.await.unwrap().is_err());
    }

    #[tokio::test]
    async fn a_mismatch_reaches_a_destination_whose_channel_is_full_at_the_end() {
        // A `Body::Vouched` writer commits whatever arrives unless an `Err` comes before the
        // end: a destination that is behind (full channel) when the mismatch is found must
        // still get the error, not a clean end of stream.
        let dir = tempfile::tempdir().unwrap();
        let src = Rooted::new("src", dir.path());
        // Exactly DEST_DEPTH local chunks (256 KiB): the channel is full when the source ends.
        let data: Vec<u8> = (0..(DEST_DEPTH * 256 * 1024) as u32)
            .map(|i| (i % 241) as u8)
            .collect();
        src.put("/f", &data);
        let (tx, mut rx) = dest_channel();
        let slow = tokio::spawn(async move {
            // Let the fan-out fill the channel and finish before reading anything.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let mut n = 0;
            let mut last = Ok(());
            while let Some(item) = rx.recv().await {
                match item {
                    Ok(c) => n += c.len(),
                    Err(e) => last = Err(e),
                }
            }
            (n, last)
        });
        let wrong = (sha256(b"not these bytes"), data.len() as u64);
        let r = fan_out_with(&src, "/f", wrong, vec![(0, tx)], Duration::from_secs(30)).await;
        assert!(r.error.is_some());
        let (n, last) = slow.await.unwrap();
        assert_eq!(n, data.len(), "every byte was relayed before the verdict");
        assert!(last.unwrap_err().contains("changed while it was read"));
    }
}
