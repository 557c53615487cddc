//! sha256 digests: of bytes, incrementally over a stream, and as hex (parse and render).

use sha2::{Digest, Sha256};

/// A sha256 digest.
pub type Sha256Digest = [u8; 32];

/// sha256 of a byte slice.
pub fn sha256(data: &[u8]) -> Sha256Digest {
    Sha256::digest(data).into()
}

/// Lower-case hex of a digest.
pub fn to_hex(d: &Sha256Digest) -> String {
    crate::target::hex(d)
}

/// Parse a 64-digit hex sha256 (either case, surrounding whitespace ignored).
pub fn parse_hex(s: &str) -> Option<Sha256Digest> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let hi = (chunk[0] as char).to_digit(16)?;
        let lo = (chunk[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// Incremental sha256 plus a byte count, for content that flows past in chunks.
#[derive(Clone, Default)]
pub struct StreamHasher {
    hasher: Sha256,
    len: u64,
}

impl StreamHasher {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, chunk: &[u8]) {
        self.hasher.update(chunk);
        self.len += chunk.len() as u64;
    }

    /// Bytes seen so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(self) -> (Sha256Digest, u64) {
        (self.hasher.finalize().into(), self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn known_digests() {
        assert_eq!(to_hex(&sha256(b"")), EMPTY);
        assert_eq!(
            to_hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hex_round_trip_and_rejects() {
        let d = sha256(b"x");
        assert_eq!(parse_hex(&to_hex(&d)), Some(d));
        assert_eq!(parse_hex(&to_hex(&d).to_uppercase()), Some(d));
        assert_eq!(parse_hex(&format!(" {EMPTY}\n")), Some(sha256(b"")));
        assert_eq!(parse_hex("abc"), None);
        assert_eq!(parse_hex(&"g".repeat(64)), None);
    }

    #[test]
    fn stream_equals_whole() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut h = StreamHasher::new();
        for c in data.chunks(333) {
            h.update(c);
        }
        assert_eq!(h.len(), 10_000);
        assert_eq!(h.finish(), (sha256(&data), 10_000));
    }
}
