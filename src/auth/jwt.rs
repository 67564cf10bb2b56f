//! Access tokens: compact HS256 JWS (RFC 7515) carrying JWT claims (RFC 7519), checked strictly.
//! The token is parsed here, with no JWT library: three base64url parts, a header that names
//! exactly `HS256`, type `JWT`, a configured `kid` and no critical extension or key of its own,
//! an HMAC compared in constant time, and claims with no duplicate name. `exp`, `iat` and `nbf`
//! are checked against the clock on every use.

use std::cell::RefCell;
use std::collections::HashMap;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{json, Map, Value};

/// Tolerated clock skew for `iat` and `nbf`. `exp` gets none: a token is dead at `exp`.
pub const LEEWAY_SECS: i64 = 30;
const ALGORITHM: &str = "HS256";
const TOKEN_TYPE: &str = "JWT";
const MAX_TOKEN_LEN: usize = 4096;
/// How many verified tokens a `TokenKeys` remembers; when full, it forgets them all.
const MAX_VERIFIED: usize = 1024;

type HmacSha256 = Hmac<sha2::Sha256>;

/// The typed custom claims of an access token. Claims beyond these are ignored (RFC 7519 §4).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct AccessClaims {
    pub sub: String,
    pub iss: String,
    pub aud: String,
    /// `platform`, an agency id or a client id: the active tenant.
    pub tenant: String,
    pub role: String,
    pub permissions: Vec<String>,
    pub jti: String,
    /// Set on tokens issued on a client portal: the portal's host (`host[:port]`). Such a token
    /// is valid only on that host, and never on the API host or another portal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// The user's session version when the token was issued (tokens from before versions: 0).
    pub ver: i64,
}

impl AccessClaims {
    /// Reads the claims from a payload object; a missing or mistyped claim refuses the token.
    fn read(payload: Map<String, Value>) -> Result<Self, TokenError> {
        let mut claims = crate::platform::body::Fields::new(payload);
        let value = Self {
            sub: claims.take("sub"),
            iss: claims.take("iss"),
            aud: claims.take("aud"),
            tenant: claims.take("tenant"),
            role: claims.take("role"),
            permissions: claims.take("permissions"),
            jti: claims.take("jti"),
            site: claims.take("site"),
            ver: claims.take_or("ver", 0),
        };
        claims.finish_open(value).map_err(|_| TokenError::Claims)
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("unsupported algorithm")]
    Algorithm,
    #[error("unsupported token type")]
    Type,
    #[error("critical header extensions are not supported")]
    Crit,
    #[error("invalid signature")]
    Signature,
    #[error("invalid claims")]
    Claims,
    #[error("token expired")]
    Expired,
    #[error("token issued in the future")]
    IssuedInFuture,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("wrong issuer")]
    Issuer,
    #[error("wrong audience")]
    Audience,
    #[error("signing failed")]
    Signing,
    #[error("unknown or missing key id")]
    KeyId,
    #[error("keys named by URL or embedded in the token are not accepted")]
    KeySource,
}

/// The signing keys: the current one, which signs and verifies, and retired ones, which only
/// verify until the tokens they signed have expired. Each is found by its `kid`, from this
/// allowlist only.
pub struct TokenKeys {
    current_kid: String,
    keys: Vec<(String, Vec<u8>)>,
    pub issuer: String,
    pub audience: String,
    /// Tokens these keys have already verified, with the times to check again on each use. What
    /// else makes a token valid (its signature, header and claims) cannot change, so a token seen
    /// again skips the HMAC and both JSON decodes. Whether its session still has access is
    /// checked against D1 on every request, by the caller.
    verified: RefCell<HashMap<String, Verified>>,
}

/// A token that passed every check but the clock's, as of when it was first seen.
struct Verified {
    claims: AccessClaims,
    exp: i64,
    iat: i64,
    nbf: Option<i64>,
}

impl Verified {
    fn at(&self, now: i64) -> Result<AccessClaims, TokenError> {
        if now >= self.exp {
            return Err(TokenError::Expired);
        }
        if self.iat > now + LEEWAY_SECS {
            return Err(TokenError::IssuedInFuture);
        }
        if self.nbf.is_some_and(|nbf| nbf > now + LEEWAY_SECS) {
            return Err(TokenError::NotYetValid);
        }
        Ok(self.claims.clone())
    }
}

/// A compact JWS split and decoded; its signature not yet checked.
struct Jws<'t> {
    /// `header.payload`, the bytes the signature covers.
    signed: &'t str,
    header: Map<String, Value>,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

impl<'t> Jws<'t> {
    /// Three base64url parts (no padding, no stray bits) and a header that is one JSON object
    /// with no duplicate member; anything else is malformed.
    fn parse(token: &'t str) -> Result<Self, TokenError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| TokenError::Malformed);
        let header_map = unique_object(&decode(header)?).ok_or(TokenError::Malformed)?;
        Ok(Self {
            signed: &token[..header.len() + 1 + payload.len()],
            header: header_map,
            payload: decode(payload)?,
            signature: decode(signature)?,
        })
    }

    /// A header member that must be a string when present.
    fn header_str(&self, name: &str) -> Result<Option<&str>, TokenError> {
        match self.header.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(TokenError::Malformed),
        }
    }

    /// Whether the header names `name` at all: even `null` there is refused (RFC 7515 gives none
    /// of these members a null form).
    fn header_has(&self, name: &str) -> bool {
        self.header.contains_key(name)
    }

    /// HMAC-SHA256 over `header.payload` under `key`, compared in constant time.
    fn signed_by(&self, key: &[u8]) -> bool {
        HmacSha256::new_from_slice(key)
            .map(|mac| mac.chain_update(self.signed.as_bytes()).verify_slice(&self.signature).is_ok())
            .unwrap_or(false)
    }
}

fn hs256(key: &[u8], signed: &str) -> Result<String, TokenError> {
    let mac = HmacSha256::new_from_slice(key).map_err(|_| TokenError::Signing)?;
    Ok(URL_SAFE_NO_PAD.encode(mac.chain_update(signed.as_bytes()).finalize().into_bytes()))
}

impl TokenKeys {
    /// `retired` pairs each old key id with its secret.
    pub fn new(kid: &str, secret: &[u8], retired: &[(String, Vec<u8>)], issuer: &str, audience: &str) -> Self {
        let mut keys = vec![(kid.to_string(), secret.to_vec())];
        keys.extend(retired.iter().cloned());
        Self {
            current_kid: kid.into(),
            keys,
            issuer: issuer.into(),
            audience: audience.into(),
            verified: RefCell::new(HashMap::new()),
        }
    }

    pub fn issue(&self, claims: AccessClaims, now: i64, ttl_secs: i64) -> Result<String, TokenError> {
        let header = json!({"alg": ALGORITHM, "kid": self.current_kid, "typ": TOKEN_TYPE});
        let mut payload = serde_json::to_value(claims).map_err(|_| TokenError::Signing)?;
        payload["exp"] = (now + ttl_secs).into();
        payload["iat"] = now.into();
        let signed =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(payload.to_string()));
        let (_, key) = self.keys.first().ok_or(TokenError::Signing)?;
        let signature = hs256(key, &signed)?;
        Ok(format!("{signed}.{signature}"))
    }

    /// Verifies a bearer token at time `now` (seconds). Each failure maps to one reason, all
    /// answered 401 by the caller.
    pub fn verify(&self, token: &str, now: i64) -> Result<AccessClaims, TokenError> {
        if let Some(seen) = self.verified.borrow().get(token) {
            return seen.at(now);
        }
        let seen = self.check(token)?;
        let claims = seen.at(now)?;
        let mut verified = self.verified.borrow_mut();
        if verified.len() >= MAX_VERIFIED {
            verified.clear();
        }
        verified.insert(token.to_string(), seen);
        Ok(claims)
    }

    /// Every check but the clock's.
    fn check(&self, token: &str) -> Result<Verified, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let jws = Jws::parse(token)?;
        // Exact, case-sensitive: "none", "None", "hs256" and every other name are refused here.
        match jws.header_str("alg")? {
            Some(ALGORITHM) => {}
            Some(_) => return Err(TokenError::Algorithm),
            None => return Err(TokenError::Malformed),
        }
        if jws.header_str("typ")? != Some(TOKEN_TYPE) {
            return Err(TokenError::Type);
        }
        if jws.header_has("crit") {
            return Err(TokenError::Crit);
        }
        // A key named by URL or embedded in the token: keys come only from configuration.
        if ["jku", "x5u", "jwk", "x5c"].iter().any(|name| jws.header_has(name)) {
            return Err(TokenError::KeySource);
        }
        let kid = jws.header_str("kid")?.ok_or(TokenError::KeyId)?;
        let (_, key) = self.keys.iter().find(|(k, _)| k == kid).ok_or(TokenError::KeyId)?;
        if !jws.signed_by(key) {
            return Err(TokenError::Signature);
        }
        // Duplicate claim names would otherwise be resolved silently, the last one winning.
        let mut payload = unique_object(&jws.payload).ok_or(TokenError::Claims)?;
        let mut time = |name: &str, required: bool| match payload.remove(name) {
            None | Some(Value::Null) if !required => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or(TokenError::Claims),
            _ => Err(TokenError::Claims),
        };
        let exp = time("exp", true)?.ok_or(TokenError::Claims)?;
        let iat = time("iat", true)?.ok_or(TokenError::Claims)?;
        let nbf = time("nbf", false)?;
        let claims = AccessClaims::read(payload)?;
        if claims.iss != self.issuer {
            return Err(TokenError::Issuer);
        }
        if claims.aud != self.audience {
            return Err(TokenError::Audience);
        }
        Ok(Verified { claims, exp, iat, nbf })
    }
}

/// JSON text that is one object naming no member twice, as a map, in one parse; `None` for
/// anything else (not JSON, not an object, a duplicate member, or bytes after the object).
fn unique_object(json: &[u8]) -> Option<Map<String, Value>> {
    struct Unique;
    impl<'de> serde::de::Visitor<'de> for Unique {
        type Value = Map<String, Value>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object naming each member once")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut object = Map::new();
            while let Some((k, v)) = map.next_entry::<String, Value>()? {
                if object.insert(k, v).is_some() {
                    return Err(serde::de::Error::custom("a member is named twice"));
                }
            }
            Ok(object)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(json);
    let object = serde::Deserializer::deserialize_map(&mut de, Unique).ok()?;
    de.end().ok()?;
    Some(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    use hmac::{Hmac, Mac};

    const SECRET: &[u8] = b"unit-test-secret-unit-test-secret-0123";
    const NOW: i64 = 1_800_000_000;

    fn keys() -> TokenKeys {
        TokenKeys::new("k1", SECRET, &[], "gatehouse", "gatehouse-api")
    }

    fn claims() -> AccessClaims {
        AccessClaims {
            sub: "usr_1".into(),
            iss: "gatehouse".into(),
            aud: "gatehouse-api".into(),
            tenant: "cli_1".into(),
            role: "client_user".into(),
            permissions: vec!["contacts:read".into()],
            jti: "j1".into(),
            site: None,
            ver: 0,
        }
    }

    /// Signs an arbitrary header and payload, so tests can build tokens the issuer never would.
    fn forge(secret: &[u8], header: serde_json::Value, payload: serde_json::Value) -> String {
        let h = URL_SAFE_NO_PAD.encode(header.to_string());
        let p = URL_SAFE_NO_PAD.encode(payload.to_string());
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
        mac.update(format!("{h}.{p}").as_bytes());
        format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    fn payload(exp: i64, iat: i64) -> serde_json::Value {
        let mut v = serde_json::to_value(claims()).unwrap();
        v["exp"] = exp.into();
        v["iat"] = iat.into();
        v
    }

    fn hdr() -> serde_json::Value {
        serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": "k1"})
    }

    #[test]
    fn an_issued_token_verifies() {
        let t = keys().issue(claims(), NOW, 900).unwrap();
        assert_eq!(keys().verify(&t, NOW + 10).unwrap(), claims());
    }

    #[test]
    fn hostile_tokens_are_refused_each_for_its_reason() {
        let k = keys();
        let cases: Vec<(&str, String, TokenError)> = vec![
            ("expired", forge(SECRET, hdr(), payload(NOW - 1, NOW - 100)), TokenError::Expired),
            ("exp == now", forge(SECRET, hdr(), payload(NOW, NOW - 100)), TokenError::Expired),
            ("future iat", forge(SECRET, hdr(), payload(NOW + 900, NOW + 600)), TokenError::IssuedInFuture),
            (
                "missing exp",
                forge(SECRET, hdr(), {
                    let mut p = payload(0, NOW);
                    p.as_object_mut().unwrap().remove("exp");
                    p
                }),
                TokenError::Claims,
            ),
            (
                "missing iat",
                forge(SECRET, hdr(), {
                    let mut p = payload(NOW + 60, 0);
                    p.as_object_mut().unwrap().remove("iat");
                    p
                }),
                TokenError::Claims,
            ),
            (
                "nbf in future",
                forge(SECRET, hdr(), {
                    let mut p = payload(NOW + 900, NOW);
                    p["nbf"] = (NOW + 300).into();
                    p
                }),
                TokenError::NotYetValid,
            ),
            (
                "wrong iss",
                forge(SECRET, hdr(), {
                    let mut p = payload(NOW + 60, NOW);
                    p["iss"] = "evil".into();
                    p
                }),
                TokenError::Issuer,
            ),
            (
                "wrong aud",
                forge(SECRET, hdr(), {
                    let mut p = payload(NOW + 60, NOW);
                    p["aud"] = "other-api".into();
                    p
                }),
                TokenError::Audience,
            ),
            (
                "crit",
                forge(SECRET, serde_json::json!({"alg":"HS256","typ":"JWT","crit":["exp"]}), payload(NOW + 60, NOW)),
                TokenError::Crit,
            ),
            ("no typ", forge(SECRET, serde_json::json!({"alg":"HS256"}), payload(NOW + 60, NOW)), TokenError::Type),
            (
                "wrong typ",
                forge(SECRET, serde_json::json!({"alg":"HS256","typ":"JWE"}), payload(NOW + 60, NOW)),
                TokenError::Type,
            ),
            (
                "HS512",
                forge(SECRET, serde_json::json!({"alg":"HS512","typ":"JWT"}), payload(NOW + 60, NOW)),
                TokenError::Algorithm,
            ),
            (
                "RS256",
                forge(SECRET, serde_json::json!({"alg":"RS256","typ":"JWT"}), payload(NOW + 60, NOW)),
                TokenError::Algorithm,
            ),
            ("empty secret", forge(b"", hdr(), payload(NOW + 60, NOW)), TokenError::Signature),
            ("weak secret", forge(b"secret", hdr(), payload(NOW + 60, NOW)), TokenError::Signature),
            (
                "wrong claim type",
                forge(SECRET, hdr(), {
                    let mut p = payload(NOW + 60, NOW);
                    p["permissions"] = "contacts:read".into();
                    p
                }),
                TokenError::Claims,
            ),
            (
                "string exp",
                forge(SECRET, hdr(), {
                    let mut p = payload(NOW + 60, NOW);
                    p["exp"] = "9999999999".into();
                    p
                }),
                TokenError::Claims,
            ),
        ];
        for (name, token, want) in cases {
            assert_eq!(k.verify(&token, NOW), Err(want), "{name}");
        }
    }

    /// The hand-written parser's edges: what a compact JWS may not be, each refused for its reason.
    #[test]
    fn the_parser_refuses_what_a_jws_may_not_be() {
        let k = keys();
        let good = forge(SECRET, hdr(), payload(NOW + 60, NOW));
        assert!(k.verify(&good, NOW).is_ok());
        let raw = |header: &str, body: &str| {
            let h = URL_SAFE_NO_PAD.encode(header);
            let p = URL_SAFE_NO_PAD.encode(body);
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET).unwrap();
            mac.update(format!("{h}.{p}").as_bytes());
            format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
        };
        let body = payload(NOW + 60, NOW).to_string();
        let with = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut p = payload(NOW + 60, NOW);
            f(&mut p);
            forge(SECRET, hdr(), p)
        };
        let (h, p, sig) = {
            let mut parts = good.split('.');
            (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap())
        };
        let cases: Vec<(&str, String, TokenError)> = vec![
            ("four parts", format!("{good}.x"), TokenError::Malformed),
            ("padded header", format!("{h}=.{p}.{sig}"), TokenError::Malformed),
            (
                "standard alphabet",
                format!("{h}.{p}.{}", sig.replace('-', "+").replace('_', "/")),
                TokenError::Malformed,
            ),
            ("header not an object", raw("[\"HS256\"]", &body), TokenError::Malformed),
            ("header not JSON", raw("{\"alg\":\"HS256\",", &body), TokenError::Malformed),
            (
                "duplicate alg",
                raw(r#"{"alg":"none","alg":"HS256","typ":"JWT","kid":"k1"}"#, &body),
                TokenError::Malformed,
            ),
            ("alg not a string", raw(r#"{"alg":["HS256"],"typ":"JWT","kid":"k1"}"#, &body), TokenError::Malformed),
            ("no alg", raw(r#"{"typ":"JWT","kid":"k1"}"#, &body), TokenError::Malformed),
            ("kid not a string", raw(r#"{"alg":"HS256","typ":"JWT","kid":1}"#, &body), TokenError::Malformed),
            ("null crit", raw(r#"{"alg":"HS256","typ":"JWT","kid":"k1","crit":null}"#, &body), TokenError::Crit),
            ("null jku", raw(r#"{"alg":"HS256","typ":"JWT","kid":"k1","jku":null}"#, &body), TokenError::KeySource),
            ("null jwk", raw(r#"{"alg":"HS256","typ":"JWT","kid":"k1","jwk":null}"#, &body), TokenError::KeySource),
            ("null kid", raw(r#"{"alg":"HS256","typ":"JWT","kid":null}"#, &body), TokenError::KeyId),
            ("null typ", raw(r#"{"alg":"HS256","typ":null,"kid":"k1"}"#, &body), TokenError::Type),
            ("lowercase typ", raw(r#"{"alg":"HS256","typ":"jwt","kid":"k1"}"#, &body), TokenError::Type),
            ("hs256", raw(r#"{"alg":"hs256","typ":"JWT","kid":"k1"}"#, &body), TokenError::Algorithm),
            ("short signature", format!("{h}.{p}.{}", &sig[..40]), TokenError::Signature),
            ("no signature", format!("{h}.{p}."), TokenError::Signature),
            ("payload not an object", raw(&hdr().to_string(), "[1]"), TokenError::Claims),
            ("float exp", with(&|p| p["exp"] = (NOW as f64 + 60.5).into()), TokenError::Claims),
            ("null exp", with(&|p| p["exp"] = serde_json::Value::Null), TokenError::Claims),
            ("string nbf", with(&|p| p["nbf"] = "0".into()), TokenError::Claims),
            ("missing sub", with(&|p| drop(p.as_object_mut().unwrap().remove("sub"))), TokenError::Claims),
            ("null ver", with(&|p| p["ver"] = serde_json::Value::Null), TokenError::Claims),
        ];
        for (name, token, want) in cases {
            assert_eq!(k.verify(&token, NOW), Err(want), "{name}");
        }
        // Optional claims may be null, and claims beyond ours are ignored.
        assert!(k.verify(&with(&|p| p["nbf"] = serde_json::Value::Null), NOW).is_ok());
        assert!(k.verify(&with(&|p| p["site"] = serde_json::Value::Null), NOW).is_ok());
        assert!(k.verify(&with(&|p| p["scope"] = "x".into()), NOW).is_ok());
    }

    #[test]
    fn alg_none_in_every_casing_is_refused() {
        for alg in ["none", "None", "NONE", "nOnE"] {
            let h = URL_SAFE_NO_PAD.encode(serde_json::json!({"alg": alg, "typ": "JWT"}).to_string());
            let p = URL_SAFE_NO_PAD.encode(payload(NOW + 60, NOW).to_string());
            for token in [format!("{h}.{p}."), format!("{h}.{p}")] {
                assert!(keys().verify(&token, NOW).is_err(), "{alg}");
            }
        }
    }

    #[test]
    fn duplicate_claims_are_refused() {
        let h = URL_SAFE_NO_PAD.encode(hdr().to_string());
        let body = payload(NOW + 60, NOW).to_string();
        let dup = format!("{{\"sub\":\"usr_admin\",{}", &body[1..]);
        let p = URL_SAFE_NO_PAD.encode(dup);
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET).unwrap();
        mac.update(format!("{h}.{p}").as_bytes());
        let t = format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
        assert!(keys().verify(&t, NOW).is_err());
        // serde refuses duplicates of the claims it knows; a duplicated unknown claim is caught
        // only by our own scan.
        let dup_unknown = format!("{{\"x\":1,\"x\":2,{}", &body[1..]);
        let p = URL_SAFE_NO_PAD.encode(dup_unknown);
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET).unwrap();
        mac.update(format!("{h}.{p}").as_bytes());
        let t = format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
        assert_eq!(keys().verify(&t, NOW), Err(TokenError::Claims));
        let single_unknown = format!("{{\"x\":1,{}", &body[1..]);
        let p = URL_SAFE_NO_PAD.encode(single_unknown);
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET).unwrap();
        mac.update(format!("{h}.{p}").as_bytes());
        let t = format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
        assert!(keys().verify(&t, NOW).is_ok(), "one unknown claim alone is harmless");
    }

    #[test]
    fn clock_skew_is_tolerated_up_to_the_leeway_exactly() {
        let at = |iat: i64, nbf: Option<i64>| {
            let mut p = payload(NOW + 600, iat);
            if let Some(n) = nbf {
                p["nbf"] = n.into();
            }
            keys().verify(&forge(SECRET, hdr(), p), NOW)
        };
        assert!(at(NOW + LEEWAY_SECS, None).is_ok());
        assert_eq!(at(NOW + LEEWAY_SECS + 1, None), Err(TokenError::IssuedInFuture));
        assert!(at(NOW, Some(NOW + 10)).is_ok());
        assert!(at(NOW, Some(NOW + LEEWAY_SECS)).is_ok());
        assert_eq!(at(NOW, Some(NOW + LEEWAY_SECS + 1)), Err(TokenError::NotYetValid));
    }

    #[test]
    fn a_tampered_signature_or_payload_is_refused() {
        let t = keys().issue(claims(), NOW, 900).unwrap();
        let mut parts: Vec<String> = t.split('.').map(String::from).collect();
        let mut sig = URL_SAFE_NO_PAD.decode(&parts[2]).unwrap();
        sig[0] ^= 1;
        parts[2] = URL_SAFE_NO_PAD.encode(sig);
        assert_eq!(keys().verify(&parts.join("."), NOW), Err(TokenError::Signature));
        assert_eq!(keys().verify("a.b.c", NOW), Err(TokenError::Malformed));
        assert_eq!(keys().verify("", NOW), Err(TokenError::Malformed));
    }

    /// RFC 7519 §3.1: its HS256 token verifies under the RFC 7515 A.1 key, but it expired in
    /// 2011 and has neither our typ nor our claims, so it must be refused.
    #[test]
    fn the_rfc7519_example_token_is_refused() {
        let key = URL_SAFE_NO_PAD
            .decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
            .unwrap();
        let token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let k = TokenKeys::new("k1", &key, &[], "joe", "gatehouse-api");
        // The signature is genuine: prove it, so the refusal below is about the claims.
        assert!(Jws::parse(token).unwrap().signed_by(&key));
        assert!(k.verify(token, NOW).is_err());
        assert!(keys().verify(token, NOW).is_err());
    }

    fn decoded_payload(token: &str) -> serde_json::Value {
        let p = URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap();
        serde_json::from_slice(&p).unwrap()
    }

    #[test]
    fn an_issued_token_lives_exactly_its_ttl() {
        let t = keys().issue(claims(), NOW, 900).unwrap();
        let p = decoded_payload(&t);
        assert_eq!(p["iat"], NOW);
        assert_eq!(p["exp"], NOW + 900);
        assert!(keys().verify(&t, NOW + 899).is_ok());
        assert_eq!(keys().verify(&t, NOW + 900), Err(TokenError::Expired));
    }

    /// A remembered token skips the signature check, never the clock's: the same keys refuse it
    /// once it expires (and a token not yet valid is not remembered as valid).
    #[test]
    fn a_remembered_token_still_dies_at_exp() {
        let k = keys();
        let t = k.issue(claims(), NOW, 900).unwrap();
        assert_eq!(k.verify(&t, NOW + 1).unwrap(), claims());
        assert_eq!(k.verified.borrow().len(), 1, "verified once, remembered");
        assert_eq!(k.verify(&t, NOW + 899).unwrap(), claims());
        assert_eq!(k.verify(&t, NOW + 900), Err(TokenError::Expired));
        assert_eq!(k.verify(&t, NOW - LEEWAY_SECS - 1), Err(TokenError::IssuedInFuture));
        let mut p = payload(NOW + 600, NOW);
        p["nbf"] = (NOW + 100).into();
        let later = forge(SECRET, hdr(), p);
        assert_eq!(k.verify(&later, NOW), Err(TokenError::NotYetValid));
        assert_eq!(k.verify(&later, NOW + 71).unwrap(), claims());
        assert_eq!(k.verify(&later, NOW), Err(TokenError::NotYetValid), "remembered, and still checked");
        // Only tokens that passed are remembered: a refused one is checked in full each time.
        let mut sig = t.clone();
        sig.pop();
        sig.push(if t.ends_with('A') { 'B' } else { 'A' });
        assert!(k.verify(&sig, NOW + 1).is_err());
        assert!(k.verify(&sig, NOW + 1).is_err());
        assert_eq!(k.verified.borrow().len(), 2);
    }

    /// The memory is bounded: when full it starts over, and every token still verifies.
    #[test]
    fn the_remembered_tokens_are_bounded() {
        let k = keys();
        let tokens: Vec<String> =
            (0..MAX_VERIFIED + 5).map(|i| k.issue(claims(), NOW + i as i64, 10_000).unwrap()).collect();
        for t in &tokens {
            assert!(k.verify(t, NOW + 2000).is_ok());
            assert!(k.verified.borrow().len() <= MAX_VERIFIED);
        }
        assert_eq!(k.verified.borrow().len(), 5);
    }

    #[test]
    fn keys_rotate_by_kid_from_the_configured_list_only() {
        const OLD: &[u8] = b"the-old-secret-the-old-secret-0123456789";
        let old = TokenKeys::new("k0", OLD, &[], "gatehouse", "gatehouse-api");
        let rotated = TokenKeys::new("k1", SECRET, &[("k0".to_string(), OLD.to_vec())], "gatehouse", "gatehouse-api");
        let before = old.issue(claims(), NOW, 900).unwrap();
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(before.split('.').next().unwrap()).unwrap()).unwrap();
        assert_eq!(header["kid"], "k0");
        assert_eq!(rotated.verify(&before, NOW + 1).unwrap(), claims(), "a retired key still verifies");
        assert_eq!(keys().verify(&before, NOW + 1), Err(TokenError::KeyId), "once dropped, its tokens die");
        let after = rotated.issue(claims(), NOW, 900).unwrap();
        assert!(keys().verify(&after, NOW + 1).is_ok(), "new tokens are signed with the current key");
        assert_eq!(old.verify(&after, NOW + 1), Err(TokenError::KeyId));
        // A kid naming one key with a signature by another fails on the signature.
        let mut h = hdr();
        h["kid"] = "k0".into();
        assert_eq!(rotated.verify(&forge(SECRET, h, payload(NOW + 60, NOW)), NOW), Err(TokenError::Signature));
    }

    #[test]
    fn keys_are_never_taken_from_the_token() {
        let body = payload(NOW + 60, NOW);
        let cases: Vec<(&str, serde_json::Value, TokenError)> = vec![
            ("no kid", serde_json::json!({"alg": "HS256", "typ": "JWT"}), TokenError::KeyId),
            ("unknown kid", serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": "k9"}), TokenError::KeyId),
            ("kid path", serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": "../../k1"}), TokenError::KeyId),
            (
                "jku",
                serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": "k1", "jku": "https://evil.example/jwks"}),
                TokenError::KeySource,
            ),
            (
                "x5u",
                serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": "k1", "x5u": "https://evil.example/c"}),
                TokenError::KeySource,
            ),
            (
                "jwk",
                serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": "k1", "jwk": {"kty": "oct", "k": "AA"}}),
                TokenError::KeySource,
            ),
            (
                "x5c",
                serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": "k1", "x5c": ["AA"]}),
                TokenError::KeySource,
            ),
        ];
        for (name, header, want) in cases {
            assert_eq!(keys().verify(&forge(SECRET, header, body.clone()), NOW), Err(want), "{name}");
        }
    }

    #[test]
    fn the_token_length_cap_is_exact() {
        // Grow the jti until the token is exactly at the cap, then one past it.
        let sized = |len: usize| {
            (1..4000).find_map(|n| {
                let mut c = claims();
                c.jti = "j".repeat(n);
                let t = keys().issue(c, NOW, 900).unwrap();
                (t.len() == len).then_some(t)
            })
        };
        let at_cap = sized(MAX_TOKEN_LEN).expect("a token of exactly the cap");
        assert!(keys().verify(&at_cap, NOW).is_ok());
        let over = sized(MAX_TOKEN_LEN + 1).or_else(|| sized(MAX_TOKEN_LEN + 2)).expect("a token just over the cap");
        assert_eq!(keys().verify(&over, NOW), Err(TokenError::Malformed));
    }

    /// Wycheproof JWS vectors for HS256: a valid one must verify its signature with our
    /// algorithm; every invalid one must fail. Four cases are excluded, as testdata/README says.
    #[test]
    fn wycheproof_hs256_vectors() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/wycheproof/json_web_signature_test.json");
        let data: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let (mut valid, mut invalid) = (0, 0);
        for group in data["testGroups"].as_array().unwrap() {
            let jwk = &group["private"];
            if jwk["alg"] != "HS256" {
                continue;
            }
            let key = URL_SAFE_NO_PAD.decode(jwk["k"].as_str().unwrap()).unwrap();
            for case in group["tests"].as_array().unwrap() {
                let id = case["tcId"].as_i64().unwrap();
                if [367, 370, 372, 373].contains(&id) {
                    continue;
                }
                let jws = case["jws"].as_str().unwrap();
                // What `check` asks of a token's signature: an HS256 header, no `crit`, and the HMAC.
                let ok = Jws::parse(jws).is_ok_and(|j| {
                    j.header_str("alg") == Ok(Some(ALGORITHM)) && !j.header_has("crit") && j.signed_by(&key)
                });
                if case["result"] == "valid" {
                    valid += 1;
                    // Valid vectors with a JSON-object payload must pass; others (e.g. "foo")
                    // are valid JWS but can never be our tokens, so they must merely parse.
                    let payload = jws.split('.').nth(1).and_then(|p| URL_SAFE_NO_PAD.decode(p).ok());
                    let json_object = payload
                        .and_then(|p| serde_json::from_slice::<serde_json::Value>(&p).ok())
                        .is_some_and(|v| v.is_object());
                    assert!(Jws::parse(jws).is_ok(), "tcId {id} did not parse");
                    assert!(ok || !json_object, "tcId {id} ({}) refused", case["comment"]);
                } else {
                    invalid += 1;
                    assert!(!ok, "tcId {id} ({}) accepted", case["comment"]);
                }
            }
        }
        assert!(invalid > 10 && valid > 0, "ran {valid} valid and {invalid} invalid cases");
    }
}
