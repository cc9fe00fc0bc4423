//! What the CPU and GPU forward passes share.

pub mod sampling;
