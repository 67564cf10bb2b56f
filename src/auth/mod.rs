//! Authentication: password hashing, access tokens, and the login rate limit.

pub mod jwt;
pub mod password;
pub mod ratelimit;
