//! Opaque, prefixed random identifiers (`cli_…`, `usr_…`) and random tokens.

use crate::platform::error::ApiError;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// `n` random bytes from the platform's CSPRNG (crypto.getRandomValues on wasm32).
pub fn random_bytes<const N: usize>() -> Result<[u8; N], ApiError> {
    let mut buf = [0u8; N];
    getrandom::getrandom(&mut buf).map_err(|e| ApiError::Internal(format!("getrandom: {e}")))?;
    Ok(buf)
}

/// Characters after `prefix_`: 15 random bytes (120 bits) in base32.
pub const ID_CHARS: usize = 24;

/// A prefixed id with 120 bits of randomness, Crockford base32.
pub fn new_id(prefix: &str) -> Result<String, ApiError> {
    let bytes = random_bytes::<15>()?;
    Ok(format!("{prefix}_{}", base32(&bytes)))
}

/// Characters after a token's prefix: 32 random bytes (256 bits) in base32.
pub const TOKEN_CHARS: usize = 52;

/// A random secret token of 256 bits, base32.
/// Lowercase hex, for digests stored or compared as text.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn new_token(prefix: &str) -> Result<String, ApiError> {
    let bytes = random_bytes::<32>()?;
    Ok(format!("{prefix}{}", base32(&bytes)))
}

fn base32(bytes: &[u8]) -> String {
    base32_with(ALPHABET, bytes)
}

/// Base32 without padding over any 32-symbol alphabet: Crockford's lowercase for ids, RFC 4648's
/// for TOTP secrets.
pub fn base32_with(alphabet: &[u8; 32], bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | b as u32;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(alphabet[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(alphabet[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Whether a path segment could be one of our ids. Anything else is a 404 without a query.
pub fn looks_like_id(s: &str, prefix: &str) -> bool {
    s.len() == prefix.len() + 1 + ID_CHARS
        && s.starts_with(prefix)
        && s.as_bytes().get(prefix.len()) == Some(&b'_')
        && s[prefix.len() + 1..].bytes().all(|c| ALPHABET.contains(&c))
}

/// Whether a string could be a token `new_token(prefix)` made (a publishable key, say).
pub fn looks_like_token(s: &str, prefix: &str) -> bool {
    s.len() == prefix.len() + TOKEN_CHARS
        && s.starts_with(prefix)
        && s[prefix.len()..].bytes().all(|c| ALPHABET.contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_unique_and_recognised() {
        let a = new_id("cli").unwrap();
        let b = new_id("cli").unwrap();
        assert_ne!(a, b);
        assert!(looks_like_id(&a, "cli"), "{a}");
        assert!(!looks_like_id(&a, "usr"));
        assert!(!looks_like_id("cli_../../etc", "cli"));
    }

    #[test]
    fn tokens_are_recognised_by_prefix_length_and_alphabet() {
        let k = new_token("pk_").unwrap();
        assert!(looks_like_token(&k, "pk_"), "{k}");
        assert!(!looks_like_token(&k, "sk_"));
        assert!(!looks_like_token(&k[..k.len() - 1], "pk_"));
        assert!(!looks_like_token(&k.to_uppercase(), "pk_"));
        assert!(!looks_like_token(&format!("pk_{}", "u".repeat(TOKEN_CHARS)), "pk_"), "u is not in the alphabet");
    }
}
