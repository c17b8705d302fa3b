//! Targets and difficulties. A job target is 4 bytes (8 hex chars, little-endian u32, the
//! common case) or 8 bytes (16 hex chars, little-endian u64). A share's difficulty is read
//! from the last 8 bytes of its result hash as a little-endian u64, as pools do.

/// Parses `n` hex chars into bytes; `None` on any non-hex char or odd length.
pub fn hex_bytes<const N: usize>(hex: &str) -> Option<[u8; N]> {
    let h = hex.as_bytes();
    if h.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in h.chunks_exact(2).enumerate() {
        out[i] = (hex_val(pair[0])? << 4) | hex_val(pair[1])?;
    }
    Some(out)
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// True if every byte is a lowercase hex digit.
pub fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// Difficulty of a pool target; `None` for a malformed target, 0 for a zero target.
pub fn difficulty_from_target(target: &str) -> Option<u64> {
    match target.len() {
        8 => {
            let t = u32::from_le_bytes(hex_bytes::<4>(target)?);
            Some(u64::from(u32::MAX).checked_div(u64::from(t)).unwrap_or(0))
        }
        16 => {
            let t = u64::from_le_bytes(hex_bytes::<8>(target)?);
            Some(u64::MAX.checked_div(t).unwrap_or(0))
        }
        _ => None,
    }
}

/// The target hex a miner is given for `diff`: 8 hex chars while the difficulty fits the
/// 32-bit form, 16 beyond it (as xmrig-proxy does).
pub fn target_for_difficulty(diff: u64) -> String {
    let diff = diff.max(1);
    if diff <= u64::from(u32::MAX) {
        let t = (u64::from(u32::MAX) / diff) as u32;
        to_hex(&t.to_le_bytes())
    } else {
        to_hex(&(u64::MAX / diff).to_le_bytes())
    }
}

/// The difficulty a result hash (64 hex chars) achieves; `None` if malformed.
pub fn share_difficulty(result: &str) -> Option<u64> {
    if result.len() != 64 {
        return None;
    }
    let hash = hex_bytes::<32>(result)?;
    let mut tail = [0u8; 8];
    tail.copy_from_slice(&hash[24..]);
    let v = u64::from_le_bytes(tail);
    Some(u64::MAX.checked_div(v).unwrap_or(u64::MAX))
}

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// The two lowercase hex digits of `b`.
pub fn hex_pair(b: u8) -> [u8; 2] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn difficulty_from_known_targets() {
        // 0x00068db8 = 429496 -> 2^32-1 / 429496 = 10000 (the RFC's "100000" is a typo:
        // the arithmetic it states gives 10000).
        assert_eq!(difficulty_from_target("b88d0600"), Some(10000));
        // The target in the real xmrig capture.
        assert_eq!(difficulty_from_target("711b0d00"), Some(5000));
    }

    #[test]
    fn zero_target_is_zero_difficulty_not_a_panic() {
        assert_eq!(difficulty_from_target("00000000"), Some(0));
        assert_eq!(difficulty_from_target("0000000000000000"), Some(0));
    }

    #[test]
    fn max_target_is_difficulty_one() {
        assert_eq!(difficulty_from_target("ffffffff"), Some(1));
        assert_eq!(difficulty_from_target("ffffffffffffffff"), Some(1));
    }

    #[test]
    fn malformed_targets_are_rejected() {
        assert_eq!(difficulty_from_target("zzzzzzzz"), None);
        assert_eq!(difficulty_from_target("b88d06"), None);
        assert_eq!(difficulty_from_target(""), None);
    }

    #[test]
    fn target_round_trips_through_difficulty() {
        for diff in [1u64, 1000, 5000, 10000, 123_456, 4_000_000_000, 10_000_000_000] {
            let t = target_for_difficulty(diff);
            let back = difficulty_from_target(&t).unwrap();
            // Never easier than asked; close while the 32-bit target keeps precision.
            assert!(back >= diff, "{diff} -> {t} -> {back}");
            if diff <= 1_000_000 {
                assert!(back <= diff + diff / 1000 + 1, "{diff} -> {t} -> {back}");
            }
        }
        assert_eq!(target_for_difficulty(10_000_000_000).len(), 16);
        assert_eq!(target_for_difficulty(0), "ffffffff");
    }

    #[test]
    fn share_difficulty_reads_last_eight_bytes_little_endian() {
        // Real share from the capture: tail af4347e7741c0000 -> 0x00001c74e74743af.
        let r = "b0421812d7e2b9c261294d2cffdd7e1f56608c8ebdc0b00baf4347e7741c0000";
        assert_eq!(share_difficulty(r), Some(u64::MAX / 0x0000_1c74_e747_43af));
        assert!(share_difficulty(r).unwrap() >= 5000);
        let zero = "0".repeat(64);
        assert_eq!(share_difficulty(&zero), Some(u64::MAX));
        let ff = "f".repeat(64);
        assert_eq!(share_difficulty(&ff), Some(1));
        assert_eq!(share_difficulty("abc"), None);
        assert_eq!(share_difficulty(&"g".repeat(64)), None);
    }

    #[test]
    fn hex_helpers() {
        assert_eq!(to_hex(&[0x2a, 0xff]), "2aff");
        assert_eq!(hex_pair(0xff), *b"ff");
        assert!(is_lower_hex("deadbeef"));
        assert!(!is_lower_hex("DEADBEEF"));
    }
}
