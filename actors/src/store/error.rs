//! The store's one error type. It keeps its cause, so the log can show the whole chain
//! while clients only ever see a code.

use std::borrow::Cow;
use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// A failure of the store itself (I/O, corruption, an unreachable cluster).
#[derive(Clone)]
pub struct StoreError {
    context: Cow<'static, str>,
    source: Option<Arc<dyn Error + Send + Sync>>,
}

impl StoreError {
    /// Wraps an error of the engine underneath, keeping it as the cause.
    pub fn new(source: impl Error + Send + Sync + 'static) -> Self {
        Self {
            context: Cow::Borrowed("store operation failed"),
            source: Some(Arc::new(source)),
        }
    }

    /// Wraps an error with what was being done when it happened.
    pub fn context(
        context: impl Into<Cow<'static, str>>,
        source: impl Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            context: context.into(),
            source: Some(Arc::new(source)),
        }
    }

    /// A failure with no underlying error, such as a corrupt record.
    pub fn msg(context: impl Into<Cow<'static, str>>) -> Self {
        Self {
            context: context.into(),
            source: None,
        }
    }
}

impl fmt::Display for StoreError {
    // The whole chain on one line: a store error is logged once, where it is handled,
    // and the cause is what an operator needs. Many errors (the CQL driver's among
    // them) already print their source in their own message; a cause the line holds
    // already is not printed again.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = self.context.to_string();
        let mut next = self.source.as_deref().map(|e| e as &(dyn Error + 'static));
        while let Some(cause) = next {
            let text = cause.to_string();
            if !line.contains(&text) {
                line.push_str(": ");
                line.push_str(&text);
            }
            next = cause.source();
        }
        f.write_str(&line)
    }
}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreError({self})")
    }
}

impl Error for StoreError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_is_kept_and_shown() {
        let io = std::io::Error::other("disk full");
        let e = StoreError::context("appending events", io);
        assert_eq!(e.to_string(), "appending events: disk full");
        assert_eq!(
            e.source().map(|s| s.to_string()).as_deref(),
            Some("disk full")
        );
        assert!(StoreError::msg("corrupt record").source().is_none());
    }

    #[test]
    fn a_cause_that_an_error_already_prints_is_not_repeated() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "pool broken: {}", self.0)
            }
        }
        impl Error for Outer {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = StoreError::context("connecting", Outer(std::io::Error::other("refused")));
        assert_eq!(e.to_string(), "connecting: pool broken: refused");
    }
}
