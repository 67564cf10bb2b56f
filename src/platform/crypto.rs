//! Encryption of integration credentials: AES-256-GCM under a per-client key derived with
//! HKDF-SHA256 from the deployment key, a fresh 96-bit nonce per value, and associated data
//! that binds format version, key id, client, provider and field. A ciphertext moved to any
//! other row, or read under any other key, fails to open.
//!
//! Stored form: `v1.{key_id}.{base64url(nonce ‖ ciphertext ‖ tag)}`.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm, Nonce};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hkdf::Hkdf;
use sha2::Sha256;

use crate::platform::config::{Config, EncryptionKey};

pub const FORMAT: &str = "v1";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HKDF_SALT: &[u8] = b"gatehouse/settings/v1";
/// Longest stored blob we will even try to parse (values are capped at 4 KiB).
const MAX_BLOB_LEN: usize = 8 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("the stored value is malformed")]
    Malformed,
    #[error("the stored value was encrypted under an unknown key")]
    UnknownKey,
    #[error("the stored value failed authentication")]
    Authentication,
    #[error("unsupported key length")]
    KeyLength,
    #[error("no randomness available")]
    Random,
}

/// Where a secret lives. Every part goes into the associated data.
#[derive(Debug, Clone, Copy)]
pub struct SecretContext<'a> {
    pub client_id: &'a str,
    pub provider: &'a str,
    pub field: &'a str,
}

/// A decrypted secret. It has no `Display`, and `Debug` hides it, so it cannot slip into a
/// log line or a formatted error.
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(••••)")
    }
}

/// AES-GCM with a 96-bit nonce over a 128-, 192- or 256-bit key. The product only uses
/// 256-bit keys; the other sizes exist so the Wycheproof vectors run through this same code.
enum Gcm {
    Aes128(Aes128Gcm),
    Aes192(AesGcm<aes::Aes192, aes_gcm::aead::consts::U12>),
    Aes256(Aes256Gcm),
}

impl Gcm {
    fn new(key: &[u8]) -> Result<Self, CryptoError> {
        let bad = |_| CryptoError::KeyLength;
        Ok(match key.len() {
            16 => Gcm::Aes128(Aes128Gcm::new_from_slice(key).map_err(bad)?),
            24 => Gcm::Aes192(AesGcm::new_from_slice(key).map_err(bad)?),
            32 => Gcm::Aes256(Aes256Gcm::new_from_slice(key).map_err(bad)?),
            _ => return Err(CryptoError::KeyLength),
        })
    }

    fn run(&self, seal: bool, nonce: &[u8; NONCE_LEN], aad: &[u8], msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let nonce = Nonce::from_slice(nonce);
        let payload = Payload { msg, aad };
        let out = match (self, seal) {
            (Gcm::Aes128(c), true) => c.encrypt(nonce, payload),
            (Gcm::Aes128(c), false) => c.decrypt(nonce, payload),
            (Gcm::Aes192(c), true) => c.encrypt(nonce, payload),
            (Gcm::Aes192(c), false) => c.decrypt(nonce, payload),
            (Gcm::Aes256(c), true) => c.encrypt(nonce, payload),
            (Gcm::Aes256(c), false) => c.decrypt(nonce, payload),
        };
        out.map_err(|_| CryptoError::Authentication)
    }
}

pub fn gcm_seal(key: &[u8], nonce: &[u8; NONCE_LEN], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    Gcm::new(key)?.run(true, nonce, aad, plaintext)
}

pub fn gcm_open(key: &[u8], nonce: &[u8; NONCE_LEN], aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    Gcm::new(key)?.run(false, nonce, aad, ciphertext)
}

/// HKDF-SHA256, exposed so the Wycheproof HKDF vectors can check it.
pub fn hkdf_sha256(ikm: &[u8], salt: &[u8], info: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut out = vec![0u8; len];
    Hkdf::<Sha256>::new(Some(salt), ikm).expand(info, &mut out).ok()?;
    Some(out)
}

/// The per-client data key: one client's key opens nothing of another's.
fn data_key(master: &EncryptionKey, client_id: &str) -> Result<[u8; 32], CryptoError> {
    let okm = hkdf_sha256(&master.bytes, HKDF_SALT, client_id.as_bytes(), 32).ok_or(CryptoError::KeyLength)?;
    okm.try_into().map_err(|_| CryptoError::KeyLength)
}

/// Canonical, unambiguous associated data: each part length-prefixed (u32 big-endian), so
/// ("ab","c") and ("a","bc") can never collide.
pub fn associated_data(key_id: &str, ctx: &SecretContext<'_>) -> Vec<u8> {
    let parts: [&[u8]; 6] = [
        b"gatehouse-setting",
        FORMAT.as_bytes(),
        key_id.as_bytes(),
        ctx.client_id.as_bytes(),
        ctx.provider.as_bytes(),
        ctx.field.as_bytes(),
    ];
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 4).sum());
    for p in parts {
        out.extend_from_slice(&(p.len() as u32).to_be_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// Encrypts with an explicit nonce. Only tests call this directly; `seal` draws a fresh one.
pub fn seal_with_nonce(
    key: &EncryptionKey,
    ctx: &SecretContext<'_>,
    plaintext: &str,
    nonce: [u8; NONCE_LEN],
) -> Result<String, CryptoError> {
    let dk = data_key(key, ctx.client_id)?;
    let ct = gcm_seal(&dk, &nonce, &associated_data(&key.id, ctx), plaintext.as_bytes())?;
    let mut blob = Vec::with_capacity(NONCE_LEN + ct.len());
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(&ct);
    Ok(format!("{FORMAT}.{}.{}", key.id, URL_SAFE_NO_PAD.encode(blob)))
}

/// Encrypts under the current key with a fresh random nonce.
pub fn seal(cfg: &Config, ctx: &SecretContext<'_>, plaintext: &str) -> Result<String, CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::getrandom(&mut nonce).map_err(|_| CryptoError::Random)?;
    seal_with_nonce(&cfg.current_key, ctx, plaintext, nonce)
}

/// The key id a stored value names, without decrypting it.
pub fn key_id_of(stored: &str) -> Option<&str> {
    let mut parts = stored.splitn(3, '.');
    (parts.next()? == FORMAT).then_some(())?;
    parts.next()
}

/// Decrypts a stored value for the row it sits in. Any mismatch — tampering, truncation,
/// another row's value, an unknown or retired-and-removed key — is an error, never a panic.
pub fn open(cfg: &Config, ctx: &SecretContext<'_>, stored: &str) -> Result<Secret, CryptoError> {
    if stored.len() > MAX_BLOB_LEN {
        return Err(CryptoError::Malformed);
    }
    let mut parts = stored.splitn(3, '.');
    let (Some(FORMAT), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(CryptoError::Malformed);
    };
    let key = cfg.decryption_key(key_id).ok_or(CryptoError::UnknownKey)?;
    let blob = URL_SAFE_NO_PAD.decode(body).map_err(|_| CryptoError::Malformed)?;
    if blob.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Malformed);
    }
    let (nonce, ct) = blob.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Malformed)?;
    let dk = data_key(key, ctx.client_id)?;
    let pt = gcm_open(&dk, &nonce, &associated_data(key_id, ctx), ct)?;
    String::from_utf8(pt).map(Secret).map_err(|_| CryptoError::Malformed)
}

/// `••••1234`: the last four characters of long secrets, nothing of short ones.
pub fn mask(secret: &str) -> String {
    let n = secret.chars().count();
    if n < 12 {
        return "••••".to_string();
    }
    let tail: String = secret.chars().skip(n - 4).collect();
    format!("••••{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::config::tests::test_vars;
    use std::collections::HashSet;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn cfg() -> Config {
        Config::from_map(&test_vars()).unwrap()
    }

    const CTX: SecretContext<'static> = SecretContext { client_id: "cli_a", provider: "openai", field: "api_key" };

    #[test]
    fn wycheproof_aes_gcm_96_bit_iv_vectors() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/wycheproof/aes_gcm_test.json");
        let data: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let (mut valid, mut invalid) = (0, 0);
        for group in data["testGroups"].as_array().unwrap() {
            if group["ivSize"] != 96 {
                continue;
            }
            for case in group["tests"].as_array().unwrap() {
                let key = hex(case["key"].as_str().unwrap());
                let nonce: [u8; 12] = hex(case["iv"].as_str().unwrap()).try_into().unwrap();
                let aad = hex(case["aad"].as_str().unwrap());
                let msg = hex(case["msg"].as_str().unwrap());
                let mut ct = hex(case["ct"].as_str().unwrap());
                ct.extend(hex(case["tag"].as_str().unwrap()));
                let id = &case["tcId"];
                if case["result"] == "invalid" {
                    invalid += 1;
                    assert!(gcm_open(&key, &nonce, &aad, &ct).is_err(), "tcId {id} opened");
                } else {
                    valid += 1;
                    assert_eq!(gcm_seal(&key, &nonce, &aad, &msg).unwrap(), ct, "tcId {id} seal");
                    assert_eq!(gcm_open(&key, &nonce, &aad, &ct).unwrap(), msg, "tcId {id} open");
                }
            }
        }
        assert_eq!(valid + invalid, 197, "the vendored file's 96-bit-IV groups hold 197 cases");
        assert!(invalid > 0);
    }

    #[test]
    fn wycheproof_hkdf_sha256_vectors() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/wycheproof/hkdf_sha256_test.json");
        let data: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut n = 0;
        for group in data["testGroups"].as_array().unwrap() {
            for case in group["tests"].as_array().unwrap() {
                n += 1;
                let got = hkdf_sha256(
                    &hex(case["ikm"].as_str().unwrap()),
                    &hex(case["salt"].as_str().unwrap()),
                    &hex(case["info"].as_str().unwrap()),
                    case["size"].as_u64().unwrap() as usize,
                );
                if case["result"] == "invalid" {
                    assert!(got.is_none(), "tcId {} accepted", case["tcId"]);
                } else {
                    assert_eq!(got.unwrap(), hex(case["okm"].as_str().unwrap()), "tcId {}", case["tcId"]);
                }
            }
        }
        assert_eq!(n, 86);
    }

    #[test]
    fn a_value_round_trips_and_carries_its_key_id() {
        let c = cfg();
        let stored = seal(&c, &CTX, "sk-live-1234567890abcd").unwrap();
        assert!(stored.starts_with("v1.k1."), "{stored}");
        assert_eq!(key_id_of(&stored), Some("k1"));
        assert!(!stored.contains("sk-live"));
        assert_eq!(open(&c, &CTX, &stored).unwrap().expose(), "sk-live-1234567890abcd");
    }

    #[test]
    fn every_encryption_draws_a_fresh_nonce() {
        let c = cfg();
        let mut nonces = HashSet::new();
        for _ in 0..2000 {
            let stored = seal(&c, &CTX, "same value").unwrap();
            let blob = URL_SAFE_NO_PAD.decode(stored.rsplit('.').next().unwrap()).unwrap();
            assert!(nonces.insert(blob[..12].to_vec()), "nonce repeated");
        }
    }

    #[test]
    fn any_bit_flip_or_truncation_fails_cleanly() {
        let c = cfg();
        let stored = seal(&c, &CTX, "tamper-me-please").unwrap();
        let bytes = stored.as_bytes();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut t = bytes.to_vec();
                t[i] ^= 1 << bit;
                let Ok(s) = String::from_utf8(t) else { continue };
                // Base64 ignores no bits here (no padding), so any flip must fail to open.
                if let Ok(secret) = open(&c, &CTX, &s) {
                    panic!("flip at byte {i} bit {bit} opened to {:?}", secret.expose());
                }
            }
        }
        for len in 0..stored.len() {
            assert!(open(&c, &CTX, &stored[..len]).is_err(), "truncated to {len} opened");
        }
    }

    #[test]
    fn an_unknown_key_id_fails_cleanly() {
        let c = cfg();
        let stored = seal(&c, &CTX, "value-under-k1").unwrap();
        let renamed = stored.replacen("v1.k1.", "v1.k9.", 1);
        assert_eq!(open(&c, &CTX, &renamed).unwrap_err(), CryptoError::UnknownKey);
    }

    #[test]
    fn a_value_moved_to_another_client_provider_or_field_fails() {
        let c = cfg();
        let stored = seal(&c, &CTX, "client-a-secret").unwrap();
        for other in [
            SecretContext { client_id: "cli_b", ..CTX },
            SecretContext { provider: "twilio", ..CTX },
            SecretContext { field: "organization", ..CTX },
        ] {
            assert_eq!(open(&c, &other, &stored).unwrap_err(), CryptoError::Authentication);
        }
    }

    #[test]
    fn associated_data_is_unambiguous() {
        let a = associated_data("k1", &SecretContext { client_id: "ab", provider: "c", field: "d" });
        let b = associated_data("k1", &SecretContext { client_id: "a", provider: "bc", field: "d" });
        assert_ne!(a, b);
    }

    #[test]
    fn masks_show_at_most_the_last_four_characters() {
        assert_eq!(mask("sk-live-abcdef1234"), "••••1234");
        assert_eq!(mask("short"), "••••");
        assert_eq!(format!("{:?}", Secret("hunter2hunter2".into())), "Secret(••••)");
    }

    /// Computed independently (Python's hmac and `cryptography`), so a key derivation that stops
    /// depending on ENCRYPTION_KEY, the salt or the client fails here.
    #[test]
    fn the_key_derivation_and_sealing_match_known_answers() {
        let key = cfg().current_key;
        assert_eq!(
            data_key(&key, "cli_a").unwrap().to_vec(),
            hex("5bbd6a5cc4487ad00de022f4406ca64c0e47a57d0511d894a3007f6642e68c88")
        );
        assert_eq!(
            data_key(&key, "cli_b").unwrap().to_vec(),
            hex("8a92d0ffcde0b2a7125a8cd6ea474774a769e490d4be1eeeda6af12804c8c10c")
        );
        let nonce: [u8; 12] = core::array::from_fn(|i| i as u8);
        let sealed = seal_with_nonce(&key, &CTX, "sk-known-answer", nonce).unwrap();
        assert_eq!(sealed, "v1.k1.AAECAwQFBgcICQoLTvYekFODDPcITvkrFBpY_VoonxU_SOkHJ67xXqGRYQ");
        assert_eq!(open(&cfg(), &CTX, &sealed).unwrap().expose(), "sk-known-answer");
    }

    #[test]
    fn a_value_does_not_open_under_the_same_key_id_with_other_bytes() {
        let sealed = seal(&cfg(), &CTX, "sk-live-abcdef").unwrap();
        let mut vars = test_vars();
        vars.insert(
            "ENCRYPTION_KEY",
            base64::engine::general_purpose::STANDARD
                .encode([3u8; 31].iter().chain([4u8].iter()).copied().collect::<Vec<u8>>()),
        );
        let other = Config::from_map(&vars).unwrap();
        assert_eq!(other.current_key.id, cfg().current_key.id);
        assert_eq!(open(&other, &CTX, &sealed).unwrap_err(), CryptoError::Authentication);
    }

    #[test]
    fn blob_and_length_boundaries_are_exact() {
        let c = cfg();
        let nonce = [5u8; NONCE_LEN];
        // Nonce plus tag with an empty plaintext is the shortest valid blob.
        let empty = seal_with_nonce(&c.current_key, &CTX, "", nonce).unwrap();
        assert_eq!(open(&c, &CTX, &empty).unwrap().expose(), "");
        let body = URL_SAFE_NO_PAD.decode(empty.rsplit('.').next().unwrap()).unwrap();
        assert_eq!(body.len(), NONCE_LEN + TAG_LEN);
        let short = format!("v1.k1.{}", URL_SAFE_NO_PAD.encode(&body[..NONCE_LEN + TAG_LEN - 1]));
        assert_eq!(open(&c, &CTX, &short).unwrap_err(), CryptoError::Malformed);
        // A stored value exactly at the cap opens; one byte longer is refused unread.
        let at_cap = seal_with_nonce(&c.current_key, &CTX, &"x".repeat(6111), nonce).unwrap();
        assert_eq!(at_cap.len(), MAX_BLOB_LEN);
        assert_eq!(open(&c, &CTX, &at_cap).unwrap().expose().len(), 6111);
        let over = seal_with_nonce(&c.current_key, &CTX, &"x".repeat(6112), nonce).unwrap();
        assert_eq!(over.len(), MAX_BLOB_LEN + 1);
        assert_eq!(open(&c, &CTX, &over).unwrap_err(), CryptoError::Malformed);
    }

    #[test]
    fn masking_shows_a_tail_from_twelve_characters() {
        assert_eq!(mask("12345678901"), "••••");
        assert_eq!(mask("123456789012"), "••••9012");
        assert_eq!(mask(""), "••••");
    }
}
