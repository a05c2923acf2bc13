//! The byte format of stored values and keys.
//!
//! Values: one format-version byte, then postcard (a stable, documented serde format). A value
//! written by a newer release is refused with a clear error instead of misread. Keys: big-endian
//! integers and length-prefixed strings, so that byte order is the order scans need.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Error;

/// The version of the value format this release writes and reads.
pub const FORMAT_VERSION: u8 = 1;

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    let mut out = vec![FORMAT_VERSION];
    postcard::to_io(value, &mut out).map_err(|e| Error::Corrupt(format!("cannot encode: {e}")))?;
    Ok(out)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    match bytes.split_first() {
        Some((&FORMAT_VERSION, rest)) => postcard::from_bytes(rest)
            .map_err(|e| Error::Corrupt(format!("cannot decode a stored value: {e}"))),
        Some((&v, _)) if v > FORMAT_VERSION => Err(Error::NewerFormat {
            found: v,
            supported: FORMAT_VERSION,
        }),
        Some((&v, _)) => Err(Error::Corrupt(format!("unknown value format version {v}"))),
        None => Err(Error::Corrupt("empty stored value".to_owned())),
    }
}

/// Builds an order-preserving key.
#[derive(Default)]
pub struct Key(Vec<u8>);

impl Key {
    pub fn new() -> Key {
        Key(Vec::with_capacity(24))
    }

    pub fn u64(mut self, v: u64) -> Key {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn u32(mut self, v: u32) -> Key {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A timestamp in milliseconds; times before 1970 sort as 1970.
    pub fn time(self, millis: i64) -> Key {
        self.u64(millis.max(0) as u64)
    }

    /// A length-prefixed string: a prefix scan on it matches the exact string only.
    pub fn str(mut self, s: &str) -> Key {
        self.0.extend_from_slice(&(s.len() as u32).to_be_bytes());
        self.0.extend_from_slice(s.as_bytes());
        self
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

/// Reads a big-endian u64 at `at` in a key.
pub fn read_u64(key: &[u8], at: usize) -> Result<u64, Error> {
    key.get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| Error::Corrupt(format!("key of {} bytes has no u64 at {at}", key.len())))
}

/// Reads a big-endian u32 at `at` in a key.
pub fn read_u32(key: &[u8], at: usize) -> Result<u32, Error> {
    key.get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| Error::Corrupt(format!("key of {} bytes has no u32 at {at}", key.len())))
}

/// Reads a length-prefixed string at `at`; returns it and the offset after it.
pub fn read_str(key: &[u8], at: usize) -> Result<(&str, usize), Error> {
    let len = read_u32(key, at)? as usize;
    let start = at + 4;
    let bytes = key
        .get(start..start + len)
        .ok_or_else(|| Error::Corrupt("key string runs past the key".to_owned()))?;
    let s = std::str::from_utf8(bytes)
        .map_err(|_| Error::Corrupt("key string is not UTF-8".to_owned()))?;
    Ok((s, start + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_newer_formats_are_refused() {
        let bytes = encode(&("order", 42u64)).unwrap();
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(
            decode::<(String, u64)>(&bytes).unwrap(),
            ("order".to_owned(), 42)
        );
        let mut newer = bytes.clone();
        newer[0] = FORMAT_VERSION + 1;
        assert!(matches!(
            decode::<(String, u64)>(&newer),
            Err(Error::NewerFormat { .. })
        ));
        assert!(decode::<(String, u64)>(&[]).is_err());
    }

    #[test]
    fn keys_sort_by_their_parts() {
        let a = Key::new().str("b").u64(2).into_bytes();
        let b = Key::new().str("b").u64(10).into_bytes();
        let c = Key::new().str("ab").u64(1).into_bytes();
        assert!(a < b);
        // Length prefixes: "b" and "ab" never share a prefix scan.
        assert!(!c.starts_with(Key::new().str("b").bytes()));
        let (s, next) = read_str(&a, 0).unwrap();
        assert_eq!((s, read_u64(&a, next).unwrap()), ("b", 2));
    }
}
