//! Authentication primitives: password hashing, access and refresh tokens, keyed rate limiters, and the
//! login guard (backoff per email and client address). The rules that use them live in
//! the service layer.

mod limiter;
mod login_guard;
mod password;
mod refresh;
mod token;

pub use limiter::{KeyedLimiter, RateLimited};
pub use login_guard::{LIMITER as LOGIN_LIMITER, LoginAttempt, LoginGuard, LoginPolicy, rate_key};
pub use password::{HashError, PasswordHasher};
pub use refresh::{NotARefreshToken, RefreshToken};
pub use token::{Claims, TokenError, Tokens};
