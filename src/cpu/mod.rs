//! The forward pass on the CPU: [`model::Model::forward`] and the steps it is made of
//! (attention over the rolling [`cache`], [`rope`], the [`ffn`] and [`moe`] blocks,
//! quantized [`linear`] products on the [`kernels`], small f32 [`vector`] operations),
//! and its slow twin [`reference`].

pub mod attention;
pub mod cache;
pub mod ffn;
pub mod kernels;
pub mod linear;
pub mod model;
pub mod moe;
pub mod vector;
pub mod reference;
pub mod rope;
