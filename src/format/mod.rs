//! What a GGUF file holds: the container ([`gguf`]), the tensor types' block layouts
//! ([`quant`]), the hyperparameters ([`hparams`]) and the tensors a model needs
//! ([`tensors`]).

pub mod gguf;
pub mod hparams;
pub mod quant;
pub mod tensors;
