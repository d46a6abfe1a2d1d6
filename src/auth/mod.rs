//! Authentication: password hashing, tokens, the `AuthUser` extractor, and the rate
//! limiters that guard login and sending.

mod extract;
mod limiter;
mod password;
mod token;

pub use extract::{AuthUser, authenticate, bearer_token};
pub use limiter::{KeyedLimiter, RateLimited};
pub use password::{HashError, PasswordHasher};
pub use token::{Claims, TokenError, Tokens};
