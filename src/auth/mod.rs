//! Authentication primitives: password hashing, tokens, and keyed rate limiters. The
//! rules that use them live in the service layer.

mod limiter;
mod password;
mod token;

pub use limiter::{KeyedLimiter, RateLimited};
pub use password::{HashError, PasswordHasher};
pub use token::{Claims, TokenError, Tokens};
