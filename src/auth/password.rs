//! argon2id password hashing at OWASP's recommended parameters (m=19 MiB, t=2, p=1).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::platform::error::ApiError;

/// OWASP Password Storage Cheat Sheet, argon2id option 2: m=19456 KiB, t=2, p=1.
pub const M_COST_KIB: u32 = 19_456;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;

/// A hash of a random password made at the same parameters. Unknown emails are checked against
/// it, so they cost what a wrong password costs.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$Z2F0ZWhvdXNlLWR1bW15$9m3+4mI4Yqv1Xg0fVq2m0c8m6n3xkE3cN2m2m0vC3Yg";

fn hasher() -> Result<Argon2<'static>, ApiError> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let salt_bytes = crate::platform::ids::random_bytes::<16>()?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| ApiError::Internal(e.to_string()))?;
    let hash = hasher()?.hash_password(password.as_bytes(), &salt).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(hash.to_string())
}

/// Verifies a password against a stored hash, or against the dummy hash when the user is
/// unknown, so both paths do one full argon2id computation.
pub fn verify_password(password: &str, stored: Option<&str>) -> bool {
    let Ok(argon) = hasher() else { return false };
    let candidate = stored.unwrap_or(DUMMY_HASH);
    let parsed = match PasswordHash::new(candidate) {
        Ok(p) => p,
        // A corrupt stored hash still costs a full computation before it fails.
        Err(_) => match PasswordHash::new(DUMMY_HASH) {
            Ok(p) => p,
            Err(_) => return false,
        },
    };
    let ok = argon.verify_password(password.as_bytes(), &parsed).is_ok();
    ok && stored.is_some() && candidate == stored.unwrap_or_default()
}

/// Password rules for new accounts: long enough to resist guessing, bounded so hashing stays cheap.
pub fn validate_new_password(password: &str) -> Result<(), ApiError> {
    let len = password.chars().count();
    if len < 10 {
        return Err(ApiError::invalid("weak_password", "Password must be at least 10 characters"));
    }
    if password.len() > 256 {
        return Err(ApiError::invalid("invalid_password", "Password must be at most 256 bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("correct horse battery", Some(&h)));
        assert!(!verify_password("wrong horse battery", Some(&h)));
    }

    #[test]
    fn an_unknown_user_never_verifies_and_still_does_the_work() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok(), "dummy hash must parse, or unknown users get cheaper");
        assert!(!verify_password("anything", None));
        assert!(!verify_password("anything", Some("not a hash")));
    }
}
