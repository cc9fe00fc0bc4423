//! What differs between native and the browser: the [`clock`] and driving futures
//! ([`exec`]).

pub mod clock;
pub mod exec;
