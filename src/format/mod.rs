//! What a GGUF file holds: the container ([`gguf`]), the tensor types' block layouts
//! ([`quant`]), the hyperparameters ([`hparams`]) with rope scaling as stated
//! ([`rope_scaling`]), the architectures Precis runs and what each changes ([`family`]),
//! and where the bytes come from ([`source`]).

pub mod family;
pub mod gguf;
pub mod hparams;
pub mod quant;
pub mod rope_scaling;
pub mod source;
