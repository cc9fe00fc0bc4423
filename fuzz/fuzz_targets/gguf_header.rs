#![no_main]
//! The GGUF header parser and the model loader on arbitrary bytes: errors, never panics
//! or huge allocations.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = precis::format::gguf::Gguf::parse(data, data.len() as u64);
    // A short prefix of a larger file exercises the NeedMore path.
    let _ = precis::format::gguf::Gguf::parse(&data[..data.len() / 2], data.len() as u64);
    let mut src: &[u8] = data;
    let _ = precis::Engine::load(&mut src, "fuzz.gguf", &precis::Overrides::default());
});
