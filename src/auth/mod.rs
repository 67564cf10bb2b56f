//! Authentication: password hashing, access tokens, login throttling and the Turnstile challenge.

pub mod jwt;
pub mod password;
pub mod ratelimit;
pub mod turnstile;
