//! Authentication: password hashing, tokens, the `AuthUser` extractor, the rate
//! limiters that guard registration and sending, and the login guard (backoff per email
//! and client address).

mod extract;
mod limiter;
mod login_guard;
mod password;
mod token;

pub use extract::{AuthUser, authenticate, bearer_token};
pub use limiter::{KeyedLimiter, RateLimited};
pub use login_guard::{LIMITER as LOGIN_LIMITER, LoginAttempt, LoginGuard, LoginPolicy, rate_key};
pub use password::{HashError, PasswordHasher};
pub use token::{Claims, TokenError, Tokens};
