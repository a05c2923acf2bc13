//! The chunked transfer coding's framing (RFC 9112 §7.1), followed byte by byte outside the
//! data: the guard follows a request's chunks with it to refuse malformed ones before the app
//! sees them, and the app link decodes an answer's chunks with it.

/// Chunk extensions longer than this are refused (hyper's own cap is of the same order).
const MAX_EXTENSION: usize = 4096;

/// A chunked body's framing (RFC 9112 §7.1), followed byte by byte outside the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    Size {
        value: u64,
        digits: u8,
    },
    /// Whitespace after the size digits (tolerated, as hyper does).
    SizeSpace {
        value: u64,
    },
    Extension {
        value: u64,
        len: usize,
    },
    SizeLf {
        value: u64,
    },
    Data(u64),
    DataCr,
    DataLf,
    TrailerStart,
    Trailer,
    TrailerLf,
    EndLf,
}

impl Chunk {
    /// Where a chunked body starts.
    pub const START: Chunk = Chunk::Size {
        value: 0,
        digits: 0,
    };
}

/// The framing after `byte`; `None` once the message is complete. An error names what is
/// wrong (a metric label).
pub fn next(state: Chunk, byte: u8) -> Result<Option<Chunk>, &'static str> {
    const BAD: &str = "invalid_chunk_framing";
    let next = match (state, byte) {
        (Chunk::Size { value, digits }, b) if b.is_ascii_hexdigit() => {
            if digits >= 15 {
                return Err("chunk_size_too_large");
            }
            let digit = u64::from(char::from(b).to_digit(16).unwrap_or(0));
            Chunk::Size {
                value: value * 16 + digit,
                digits: digits + 1,
            }
        }
        (Chunk::Size { digits: 0, .. }, _) => return Err(BAD),
        (Chunk::Size { value, .. } | Chunk::SizeSpace { value }, b' ' | b'\t') => {
            Chunk::SizeSpace { value }
        }
        (Chunk::Size { value, .. } | Chunk::SizeSpace { value }, b';') => {
            Chunk::Extension { value, len: 0 }
        }
        (Chunk::Size { value, .. } | Chunk::SizeSpace { value }, b'\r') => Chunk::SizeLf { value },
        (Chunk::Extension { value, .. }, b'\r') => Chunk::SizeLf { value },
        (Chunk::Extension { len, .. }, _) if len >= MAX_EXTENSION => {
            return Err("chunk_extension_too_long");
        }
        // Tokens and quoted strings: no control characters but HTAB.
        (Chunk::Extension { value, len }, b) if b == b'\t' || (b >= 0x20 && b != 0x7f) => {
            Chunk::Extension {
                value,
                len: len + 1,
            }
        }
        (Chunk::SizeLf { value: 0 }, b'\n') => Chunk::TrailerStart,
        (Chunk::SizeLf { value }, b'\n') => Chunk::Data(value),
        (Chunk::DataCr, b'\r') => Chunk::DataLf,
        (Chunk::DataLf, b'\n') => Chunk::Size {
            value: 0,
            digits: 0,
        },
        (Chunk::TrailerStart, b'\r') => Chunk::EndLf,
        (Chunk::TrailerStart | Chunk::Trailer, b) if b != b'\r' && b != b'\n' => Chunk::Trailer,
        (Chunk::Trailer, b'\r') => Chunk::TrailerLf,
        (Chunk::TrailerLf, b'\n') => Chunk::TrailerStart,
        (Chunk::EndLf, b'\n') => return Ok(None),
        _ => return Err(BAD),
    };
    Ok(Some(next))
}
