//! Standard Webhooks signatures (<https://www.standardwebhooks.com>), so receivers verify with
//! existing libraries:
//! - `webhook-id`: the event id, the same on every retry and replay (for de-duplication);
//! - `webhook-timestamp`: the attempt's time in Unix seconds;
//! - `webhook-signature`: `v1,` + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)),
//!   space-separated when two secrets sign during a rotation.
//!
//! A secret is `whsec_` + base64 of 32 random bytes; the key is those bytes.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::platform::error::{ApiError, ApiResult};

pub const SECRET_PREFIX: &str = "whsec_";

/// A new signing secret.
pub fn new_secret() -> ApiResult<String> {
    let bytes = crate::platform::ids::random_bytes::<32>()?;
    Ok(format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes)))
}

/// The HMAC key a secret stands for.
fn key_of(secret: &str) -> ApiResult<Vec<u8>> {
    let b64 = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    STANDARD.decode(b64).map_err(|_| ApiError::Internal("a stored webhook secret is malformed".into()))
}

/// One `v1,<base64>` signature.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> ApiResult<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key_of(secret)?)
        .map_err(|_| ApiError::Internal("HMAC refused the key".into()))?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    Ok(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

/// The `webhook-signature` header: one signature per secret still signing.
pub fn signature_header(secrets: &[&str], id: &str, timestamp: i64, body: &str) -> ApiResult<String> {
    let sigs: Vec<String> = secrets.iter().map(|s| sign(s, id, timestamp, body)).collect::<ApiResult<_>>()?;
    Ok(sigs.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from the Standard Webhooks specification's reference libraries.
    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let ts = 1614265330;
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(sign(secret, id, ts, body).expect("sign"), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_are_fresh_and_sign_differently() {
        let a = new_secret().expect("secret");
        let b = new_secret().expect("secret");
        assert_ne!(a, b);
        assert!(a.starts_with(SECRET_PREFIX));
        assert_eq!(key_of(&a).expect("key").len(), 32);
        let header = signature_header(&[&a, &b], "evt_1", 1, "{}").expect("header");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_ne!(parts[0], parts[1]);
        assert_ne!(sign(&a, "evt_1", 1, "{}").expect("sign"), sign(&a, "evt_1", 2, "{}").expect("sign"));
    }
}
