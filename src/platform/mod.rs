//! What differs between native and the browser: the [`clock`] and driving futures
//! ([`exec`]), and how much memory is left ([`memory`]).

pub mod clock;
pub mod exec;
pub mod memory;
