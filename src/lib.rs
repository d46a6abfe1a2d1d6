//! Parley server library.
