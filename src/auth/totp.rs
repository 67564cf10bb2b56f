//! TOTP (RFC 6238) over HOTP (RFC 4226): six digits, 30-second steps, HMAC-SHA1 as authenticator
//! apps expect. A code is accepted for the current step and one step either side, and never for a
//! step at or before the last one accepted (no replay).

use hmac::{Hmac, Mac};

pub const STEP_SECS: i64 = 30;
pub const DIGITS: u32 = 6;
/// Steps either side of now that still count (clock drift).
pub const WINDOW: i64 = 1;

/// The hash a HOTP code is computed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

fn mac(alg: Algorithm, key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length, so these cannot fail.
    match alg {
        Algorithm::Sha1 => {
            Hmac::<sha1::Sha1>::new_from_slice(key).map(|m| m.chain_update(msg).finalize().into_bytes().to_vec())
        }
        Algorithm::Sha256 => {
            Hmac::<sha2::Sha256>::new_from_slice(key).map(|m| m.chain_update(msg).finalize().into_bytes().to_vec())
        }
        Algorithm::Sha512 => {
            Hmac::<sha2::Sha512>::new_from_slice(key).map(|m| m.chain_update(msg).finalize().into_bytes().to_vec())
        }
    }
    .unwrap_or_default()
}

/// HOTP: the dynamically truncated HMAC of the counter, as `digits` decimal digits.
pub fn hotp(alg: Algorithm, key: &[u8], counter: u64, digits: u32) -> u32 {
    let h = mac(alg, key, &counter.to_be_bytes());
    let Some(&last) = h.last() else { return 0 };
    let at = (last & 0x0f) as usize;
    let Some(b) = h.get(at..at + 4) else { return 0 };
    let bin = u32::from_be_bytes([b[0] & 0x7f, b[1], b[2], b[3]]);
    bin % 10u32.pow(digits)
}

/// The TOTP step of a Unix time.
pub fn step_of(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(STEP_SECS)
}

/// The step a six-digit `code` matches within the window around `now`, later than `last_step`.
pub fn verify(key: &[u8], code: &str, now_secs: i64, last_step: i64) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let want: u32 = code.parse().ok()?;
    let now = step_of(now_secs);
    (now - WINDOW..=now + WINDOW)
        .filter(|s| *s > last_step && *s >= 0)
        .find(|s| hotp(Algorithm::Sha1, key, *s as u64, DIGITS) == want)
}

const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding: how authenticator apps take a secret.
pub fn base32(bytes: &[u8]) -> String {
    crate::platform::ids::base32_with(B32, bytes)
}

pub fn from_base32(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.trim_end_matches('=').bytes() {
        let v = B32.iter().position(|&x| x == c.to_ascii_uppercase())? as u32;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B: the seeds are the ASCII digits "1234567890" repeated to the hash's
    /// length, eight digits.
    #[test]
    fn rfc_6238_appendix_b_vectors() {
        let sha1 = b"12345678901234567890".to_vec();
        let sha256 = b"12345678901234567890123456789012".to_vec();
        let sha512 = b"1234567890123456789012345678901234567890123456789012345678901234".to_vec();
        let cases: &[(i64, u32, u32, u32)] = &[
            (59, 94287082, 46119246, 90693936),
            (1111111109, 7081804, 68084774, 25091201),
            (1111111111, 14050471, 67062674, 99943326),
            (1234567890, 89005924, 91819424, 93441116),
            (2000000000, 69279037, 90698825, 38618901),
            (20000000000, 65353130, 77737706, 47863826),
        ];
        for &(t, s1, s256, s512) in cases {
            let c = step_of(t) as u64;
            assert_eq!(hotp(Algorithm::Sha1, &sha1, c, 8), s1, "SHA1 at {t}");
            assert_eq!(hotp(Algorithm::Sha256, &sha256, c, 8), s256, "SHA256 at {t}");
            assert_eq!(hotp(Algorithm::Sha512, &sha512, c, 8), s512, "SHA512 at {t}");
        }
    }

    /// RFC 4226 Appendix D: HOTP over "12345678901234567890", six digits, counters 0-9.
    #[test]
    fn rfc_4226_appendix_d_vectors() {
        let key = b"12345678901234567890";
        let want = [755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489];
        for (c, w) in want.iter().enumerate() {
            assert_eq!(hotp(Algorithm::Sha1, key, c as u64, 6), *w, "counter {c}");
        }
    }

    #[test]
    fn one_step_of_drift_either_way_and_never_a_replay() {
        let key = b"12345678901234567890";
        let now = 1_800_000_000;
        let code = |t: i64| format!("{:06}", hotp(Algorithm::Sha1, key, step_of(t) as u64, 6));
        assert_eq!(verify(key, &code(now), now, 0), Some(step_of(now)));
        assert_eq!(verify(key, &code(now - 30), now, 0), Some(step_of(now) - 1));
        assert_eq!(verify(key, &code(now + 30), now, 0), Some(step_of(now) + 1));
        assert_eq!(verify(key, &code(now - 60), now, 0), None, "two steps late");
        assert_eq!(verify(key, &code(now + 60), now, 0), None, "two steps early");
        assert_eq!(verify(key, &code(now), now, step_of(now)), None, "the same step twice");
        assert_eq!(verify(key, &code(now - 30), now, step_of(now) - 1), None, "an older step after a newer one");
        for junk in ["", "12345", "1234567", "abcdef", "12 456"] {
            assert_eq!(verify(key, junk, now, 0), None, "{junk:?}");
        }
    }

    #[test]
    fn base32_round_trips_and_matches_rfc_4648() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"12345678901234567890"), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        let bytes: Vec<u8> = (0u8..20).collect();
        assert_eq!(from_base32(&base32(&bytes)), Some(bytes));
        assert_eq!(from_base32("not base32!"), None);
    }
}
