//! Kafka's varints: zig-zag ones in the record format (v2 batches: lengths, deltas, counts)
//! and unsigned ones in flexible message versions (compact lengths, tagged fields).

/// Reads a zig-zag varint at `*at`, moving `*at` past it; `None` when the bytes end first or
/// the varint is longer than an i64 can be.
pub(crate) fn read(buf: &[u8], at: &mut usize) -> Option<i64> {
    let raw = read_unsigned(buf, at)?;
    Some(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

/// Reads an unsigned varint (the compact lengths and tagged fields of flexible versions).
pub(crate) fn read_unsigned(buf: &[u8], at: &mut usize) -> Option<u64> {
    let mut raw: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*at)?;
        *at += 1;
        raw |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(raw);
        }
    }
    None
}

/// Appends `value` as a zig-zag varint.
pub(crate) fn write(out: &mut Vec<u8>, value: i64) {
    write_unsigned(out, ((value << 1) ^ (value >> 63)) as u64);
}

/// Appends an unsigned varint.
pub(crate) fn write_unsigned(out: &mut Vec<u8>, value: u64) {
    let mut raw = value;
    while raw >= 0x80 {
        out.push((raw as u8 & 0x7f) | 0x80);
        raw >>= 7;
    }
    out.push(raw as u8);
}

/// How many bytes `value` takes as a zig-zag varint.
pub(crate) fn len(value: i64) -> usize {
    let mut raw = ((value << 1) ^ (value >> 63)) as u64;
    let mut n = 1;
    while raw >= 0x80 {
        raw >>= 7;
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_knows_its_length() {
        for v in [
            0,
            1,
            -1,
            63,
            -64,
            64,
            300,
            -300,
            i32::MAX as i64,
            i64::MIN,
            i64::MAX,
        ] {
            let mut out = Vec::new();
            write(&mut out, v);
            assert_eq!(out.len(), len(v), "{v}");
            let mut at = 0;
            assert_eq!(read(&out, &mut at), Some(v));
            assert_eq!(at, out.len());
        }
        // Kafka's examples: -1 is 0x01, 1 is 0x02.
        let mut out = Vec::new();
        write(&mut out, -1);
        write(&mut out, 1);
        assert_eq!(out, [0x01, 0x02]);
    }

    #[test]
    fn truncated_or_endless_varints_are_refused() {
        assert_eq!(read(&[0x80], &mut 0), None);
        assert_eq!(read(&[0xff; 11], &mut 0), None);
    }
}
