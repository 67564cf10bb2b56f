//! A signed visitor identity. A client's own backend, which knows who its visitor is, signs the
//! visitor's id, email and an expiry with the client's widget secret (`widget.identity_secret` in
//! the encrypted settings, rotatable like any setting):
//!
//! `signature = hex(HMAC-SHA256(secret, user_id + "\n" + email + "\n" + expires))`, `expires` in
//! Unix seconds.
//!
//! With a valid, unexpired signature the widget's lead or booking is attached to that visitor (the
//! contact carries `external_user_id`, and the signed email wins over the typed one). Anything
//! else, an expired, forged or unsignable identity, is ignored, never trusted: the submission
//! goes ahead as an anonymous one and the answer says `"identity": "ignored"` so the widget can
//! warn in the console.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::access::ClientScope;
use crate::platform::error::ApiResult;
use crate::platform::ports::Platform;
use crate::platform::Ctx;

crate::platform::body::body! {
    /// What the widget sends, copied from the script tag's `data-user-*` attributes.
    #[derive(Debug, Clone)]
    pub struct SignedIdentity {
        pub user_id: String,
        pub email: String,
        pub expires: i64,
        pub signature: String,
    }
}

/// A visitor the client vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visitor {
    pub user_id: String,
    pub email: String,
}

/// The signed message.
pub fn message(user_id: &str, email: &str, expires: i64) -> String {
    format!("{user_id}\n{email}\n{expires}")
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

/// The visitor, if `id` is signed with `secret` and not yet expired.
pub fn verify(secret: &[u8], id: &SignedIdentity, now_secs: i64) -> Option<Visitor> {
    let sane = !id.user_id.is_empty()
        && id.user_id.len() <= 128
        && !id.user_id.chars().any(char::is_control)
        && id.email.len() <= 254
        && id.email.contains('@')
        && !id.email.chars().any(|c| c.is_control() || c.is_whitespace());
    if !sane || id.expires <= now_secs {
        return None;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(message(&id.user_id, &id.email, id.expires).as_bytes());
    mac.verify_slice(&unhex(&id.signature)?).ok()?;
    Some(Visitor { user_id: id.user_id.clone(), email: id.email.to_lowercase() })
}

/// Checks a submission's identity against the client's widget secret: the visitor, and what to
/// tell the widget (`None` when no identity was sent).
pub async fn check<P: Platform>(
    ctx: &Ctx<'_, P>,
    client: &ClientScope,
    identity: Option<&SignedIdentity>,
) -> ApiResult<(Option<Visitor>, Option<&'static str>)> {
    let Some(identity) = identity else { return Ok((None, None)) };
    let secret = crate::settings::reveal(ctx, client, "widget", "identity_secret").await?;
    let visitor = secret.and_then(|s| verify(s.expose().as_bytes(), identity, ctx.p.now_secs()));
    let said = if visitor.is_some() { "verified" } else { "ignored" };
    Ok((visitor, Some(said)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(secret: &[u8], user: &str, email: &str, expires: i64) -> SignedIdentity {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(message(user, email, expires).as_bytes());
        let signature = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        SignedIdentity { user_id: user.into(), email: email.into(), expires, signature }
    }

    #[test]
    fn only_an_unexpired_signature_with_the_secret_is_trusted() {
        let secret = b"whsec_test_0123456789abcdef";
        let ok = signed(secret, "user-42", "Vis@Example.com", 2_000);
        assert_eq!(
            verify(secret, &ok, 1_000),
            Some(Visitor { user_id: "user-42".into(), email: "vis@example.com".into() })
        );
        assert_eq!(verify(secret, &ok, 2_000), None, "expired at its expiry");
        assert_eq!(verify(b"another secret", &ok, 1_000), None, "another client's secret");
        for tamper in [
            SignedIdentity { user_id: "user-43".into(), ..ok.clone() },
            SignedIdentity { email: "admin@example.com".into(), ..ok.clone() },
            SignedIdentity { expires: 3_000, ..ok.clone() },
            SignedIdentity { signature: ok.signature.to_uppercase().replace('A', "B"), ..ok.clone() },
            SignedIdentity { signature: "zz".repeat(32), ..ok.clone() },
            SignedIdentity { signature: String::new(), ..ok.clone() },
        ] {
            assert_eq!(verify(secret, &tamper, 1_000), None, "{tamper:?}");
        }
        // A line break in the id would let one signed message read as another.
        let sneaky = signed(secret, "a\nb", "x@example.com", 2_000);
        assert_eq!(verify(secret, &sneaky, 1_000), None);
    }
}
