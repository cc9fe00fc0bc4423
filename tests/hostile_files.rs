//! Model files built to hurt: hyperparameters anywhere in u64, headers that claim
//! more memory than the machine has, metadata that would amplify in memory,
//! overlapping tensors, a tokenizer smaller than the vocabulary, a chat template that
//! builds values without bound. Each gives an error that names the file and the
//! cause — never a panic, an abort or a huge allocation.
//! The files are generated here (large ones sparse), not committed.

mod common;

use common::{GgufWriter, Kv};
use precis::format::gguf::Gguf;
use precis::text::chat::{ChatError, Message};
use precis::{Engine, GenerateOptions, Overrides};

const F32: u32 = 0;

/// The hyperparameters of a llama file; the tensors' shapes follow them with
/// wrapping arithmetic, as a crafted file's would, so that only the engine's own
/// bounds stand between a wrapped product and an out-of-range index.
#[derive(Debug, Clone, Copy)]
struct Hp {
    n_layer: u64,
    n_embd: u64,
    n_ff: u64,
    n_head: u64,
    n_head_kv: u64,
    head_dim: u64,
    n_vocab: u64,
    n_ctx: u64,
}

fn writer(hp: Hp, tokens: usize) -> GgufWriter {
    let mut w = GgufWriter::new()
        .kv("general.architecture", Kv::Str("llama".into()))
        .kv("llama.block_count", Kv::U64(hp.n_layer))
        .kv("llama.embedding_length", Kv::U64(hp.n_embd))
        .kv("llama.feed_forward_length", Kv::U64(hp.n_ff))
        .kv("llama.attention.head_count", Kv::U64(hp.n_head))
        .kv("llama.attention.head_count_kv", Kv::U64(hp.n_head_kv))
        .kv("llama.attention.key_length", Kv::U64(hp.head_dim))
        .kv("llama.vocab_size", Kv::U64(hp.n_vocab))
        .kv("llama.context_length", Kv::U64(hp.n_ctx))
        .kv("tokenizer.ggml.model", Kv::Str("llama".into()))
        .kv("tokenizer.ggml.tokens", Kv::StrArr((0..tokens).map(|i| format!("t{i}")).collect()));
    let (d, ff, nv) = (hp.n_embd, hp.n_ff, hp.n_vocab);
    let qd = hp.n_head.wrapping_mul(hp.head_dim);
    let kvd = hp.n_head_kv.wrapping_mul(hp.head_dim);
    let mut t = |name: String, dims: &[u64]| {
        let n = dims.iter().fold(1u64, |a, &b| a.wrapping_mul(b));
        w.tensors.push((name, dims.to_vec(), F32, n.wrapping_mul(4)));
    };
    t("token_embd.weight".into(), &[d, nv]);
    t("output_norm.weight".into(), &[d]);
    for l in 0..hp.n_layer.min(4) {
        t(format!("blk.{l}.attn_norm.weight"), &[d]);
        t(format!("blk.{l}.attn_q.weight"), &[d, qd]);
        t(format!("blk.{l}.attn_k.weight"), &[d, kvd]);
        t(format!("blk.{l}.attn_v.weight"), &[d, kvd]);
        t(format!("blk.{l}.attn_output.weight"), &[qd, d]);
        t(format!("blk.{l}.ffn_norm.weight"), &[d]);
        t(format!("blk.{l}.ffn_gate.weight"), &[d, ff]);
        t(format!("blk.{l}.ffn_up.weight"), &[d, ff]);
        t(format!("blk.{l}.ffn_down.weight"), &[ff, d]);
    }
    w
}

/// Writes `w` to a temporary file, its data sparse (no disk or memory for zeros),
/// and returns the path. The caller removes it.
fn sparse_file(w: &GgufWriter, name: &str) -> std::path::PathBuf {
    use std::io::Write;
    let (header, data) = w.header();
    let path = std::env::temp_dir().join(format!("precis-hostile-{}-{name}", std::process::id()));
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(&header).unwrap();
    // Past 1 TiB (the filesystem's limit is near) the file is cut short: the parser
    // then finds the data truncated, also a refusal by name.
    // A filesystem that refuses that size (a small tmpfs) gets a shorter cut: the
    // file is then truncated the same way.
    let want = header.len() as u64 + data.min(1 << 40);
    if f.set_len(want).is_err() {
        f.set_len(want.min(header.len() as u64 + (1 << 20))).unwrap();
    }
    path
}

fn load(path: &std::path::Path) -> Result<Engine, String> {
    Engine::load_file(path.to_str().unwrap(), &Overrides::default()).map_err(|e| e.to_string())
}

#[test]
fn random_hyperparameters_never_panic() {
    // Small values make a model that loads and runs; huge ones (around 2^31, 2^32,
    // 2^62, 2^63 and u64::MAX, where usize products wrap on wasm32 or natively) must
    // be refused by name.
    const SMALL: [u64; 6] = [1, 2, 3, 4, 8, 64];
    const HUGE: [u64; 7] = [0, 1 << 31, (1 << 32) + 64, 1 << 62, (1 << 63) + 64, u64::MAX, 1 << 40];
    let mut s = 0x9E3779B97F4A7C15u64;
    let mut rnd = move |n: u64| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s % n
    };
    let (mut loaded, mut refused) = (0, 0);
    for iter in 0..240 {
        // (value, huge): a small value is scaled to a plausible size; a huge one is kept.
        let mut pick = |huge_odds: u64, scale: u64| -> (u64, bool) {
            if rnd(huge_odds) == 0 {
                (HUGE[rnd(HUGE.len() as u64) as usize], true)
            } else {
                (SMALL[rnd(SMALL.len() as u64) as usize] * scale, false)
            }
        };
        let picks = [pick(12, 1), pick(12, 2), pick(12, 1), pick(12, 1), pick(12, 1), pick(8, 2), pick(12, 8), pick(16, 16)];
        let any_huge = picks.iter().any(|p| p.1);
        let v = picks.map(|p| p.0);
        let hp = Hp { n_layer: v[0], n_embd: v[1], n_ff: v[2], n_head: v[3], n_head_kv: v[4], head_dim: v[5], n_vocab: v[6], n_ctx: v[7] };
        // A small file is consistent (KV heads divide the heads), so it loads and runs.
        let hp = if any_huge { hp } else { Hp { n_head_kv: hp.n_head, ..hp } };
        let tokens = if hp.n_vocab <= 1024 { hp.n_vocab as usize } else { 4 };
        let w = writer(hp, tokens);
        let path = sparse_file(&w, &format!("{iter}.gguf"));
        let r = std::panic::catch_unwind(|| match load(&path) {
            Ok(e) => {
                let opts = GenerateOptions { max_tokens: 2, ..Default::default() };
                e.generate(&[1, 0], &opts, &mut |_| true).map(|_| ()).map_err(|e| e.to_string())
            }
            Err(e) => Err(e),
        });
        std::fs::remove_file(&path).ok();
        let r = r.unwrap_or_else(|_| panic!("iteration {iter} panicked: {hp:?}"));
        match &r {
            Ok(()) => loaded += 1,
            Err(msg) => {
                refused += 1;
                assert!(msg.contains(&format!("precis-hostile-{}-{iter}.gguf", std::process::id())), "iteration {iter}: the error does not name the file: {msg}");
            }
        }
        if any_huge {
            assert!(r.is_err(), "iteration {iter}: {hp:?} with a huge value was accepted");
        }
    }
    assert!(loaded > 20 && refused > 20, "the mix should both load and refuse: {loaded} loaded, {refused} refused");
}

#[test]
fn a_wrapped_head_size_is_refused_by_name() {
    // 2 heads of 2^63 + 64 wrap to a 128-wide query: the shapes "agree" under wrapping.
    let hp = Hp { n_layer: 1, n_embd: 64, n_ff: 64, n_head: 2, n_head_kv: 2, head_dim: (1 << 63) + 64, n_vocab: 8, n_ctx: 64 };
    let path = sparse_file(&writer(hp, 8), "wrapped.gguf");
    let msg = load(&path).err().expect("refused");
    std::fs::remove_file(&path).ok();
    assert!(msg.contains("wrapped.gguf") && msg.contains("llama.attention.key_length") && msg.contains("9223372036854775872"), "{msg}");
}

#[test]
fn a_header_claiming_more_memory_than_the_machine_has_is_refused_before_reading() {
    // A 137 GB token table (32768 × 2^20 f32) in a sparse file: valid bytes as far
    // as the file goes. Only where the machine says how much memory it has, and has
    // less than that (else the load would be legitimate, and read 137 GB).
    match precis::platform::memory::available_bytes() {
        Some(a) if a < 137_000_000_000 => {}
        other => {
            eprintln!("skipped: this machine reports {other:?} bytes available");
            return;
        }
    }
    let hp = Hp { n_layer: 1, n_embd: 32768, n_ff: 64, n_head: 32, n_head_kv: 8, head_dim: 128, n_vocab: 1 << 20, n_ctx: 64 };
    let mut w = writer(hp, 4);
    w.kv.retain(|(k, _)| k != "tokenizer.ggml.tokens");
    w = w.kv("tokenizer.ggml.tokens", Kv::StrArr((0..1 << 20).map(|i| format!("t{i}")).collect()));
    let path = sparse_file(&w, "huge.gguf");
    if std::fs::metadata(&path).unwrap().len() < 137_000_000_000 {
        std::fs::remove_file(&path).ok();
        eprintln!("skipped: the temporary folder's filesystem cannot hold a 137 GB sparse file");
        return;
    }
    let msg = load(&path).err().expect("refused");
    std::fs::remove_file(&path).ok();
    assert!(msg.contains("huge.gguf") && msg.contains("`token_embd.weight`") && msg.contains("bytes of memory are available"), "{msg}");
}

#[test]
fn a_tokenizer_smaller_than_the_vocabulary_is_refused() {
    let hp = Hp { n_layer: 1, n_embd: 8, n_ff: 8, n_head: 2, n_head_kv: 2, head_dim: 4, n_vocab: 16, n_ctx: 64 };
    let b = writer(hp, 12).bytes();
    let mut src: &[u8] = &b;
    let msg = Engine::load(&mut src, "short-vocab.gguf", &Overrides::default()).err().expect("refused").to_string();
    assert!(msg.contains("short-vocab.gguf") && msg.contains("12 tokens") && msg.contains("16 rows"), "{msg}");
}

#[test]
fn overlapping_tensor_data_is_refused_by_name() {
    let hp = Hp { n_layer: 1, n_embd: 8, n_ff: 8, n_head: 2, n_head_kv: 2, head_dim: 4, n_vocab: 16, n_ctx: 64 };
    let mut b = writer(hp, 16).bytes();
    // Point output_norm (the second tensor) at token_embd's data: its info is the
    // second in the file; its offset is the u64 after its type.
    let g = Gguf::parse(&b, b.len() as u64).unwrap();
    let norm = g.tensor("output_norm.weight").unwrap().clone();
    let name_len = norm.name.len() as u64;
    let offset_field = (norm.info_offset + 8 + name_len + 4 + 8 + 4) as usize;
    b[offset_field..offset_field + 8].copy_from_slice(&32u64.to_le_bytes());
    let msg = Gguf::parse(&b, b.len() as u64).err().expect("refused").to_string();
    assert!(msg.contains("output_norm.weight") && msg.contains("overlaps tensor `token_embd.weight`"), "{msg}");
}

#[test]
fn numeric_metadata_arrays_stay_the_size_of_their_bytes() {
    // 8 MiB of one-byte elements: one Value each would take 32 bytes apiece (256 MiB).
    let b = GgufWriter::new().kv("general.architecture", Kv::Str("llama".into())).kv("junk", Kv::U8Arr(8 << 20)).bytes();
    let g = Gguf::parse(&b, b.len() as u64).unwrap();
    match g.get("junk").unwrap() {
        precis::format::gguf::Value::Numbers { bytes, .. } => assert_eq!(bytes.len(), 8 << 20),
        other => panic!("stored as {other:?}"),
    }
}

#[test]
fn deep_array_nesting_names_the_key() {
    let b = GgufWriter::new().kv("deep", Kv::Nested(9)).bytes();
    let msg = Gguf::parse(&b, b.len() as u64).err().expect("refused").to_string();
    assert!(msg.contains("`deep`") && msg.contains("nests arrays more than"), "{msg}");
}

#[test]
fn context_length_zero_is_named() {
    let hp = Hp { n_layer: 1, n_embd: 8, n_ff: 8, n_head: 2, n_head_kv: 2, head_dim: 4, n_vocab: 16, n_ctx: 0 };
    let b = writer(hp, 16).bytes();
    let mut src: &[u8] = &b;
    let msg = Engine::load(&mut src, "ctx0.gguf", &Overrides::default()).err().expect("refused").to_string();
    assert!(msg.contains("ctx0.gguf") && msg.contains("llama.context_length"), "{msg}");
}

/// Issue 20: a chat template that doubles a message 40 times takes ~200 template
/// steps and, built, a terabyte; it is stopped at its byte budget, by name, before
/// the allocation (the lib's text::chat tests cover each amplifier).
#[test]
fn a_chat_template_that_amplifies_its_values_is_stopped_by_name() {
    const DOUBLING: &str = "{% set ns = namespace(s=messages[0].content) %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}";
    let hp = Hp { n_layer: 1, n_embd: 8, n_ff: 8, n_head: 2, n_head_kv: 2, head_dim: 4, n_vocab: 16, n_ctx: 64 };
    let b = writer(hp, 16).kv("tokenizer.chat_template", Kv::Str(DOUBLING.into())).bytes();
    let mut src: &[u8] = &b;
    let e = Engine::load(&mut src, "doubling.gguf", &Overrides::default()).unwrap();
    let start = std::time::Instant::now();
    let err = e.chat_tokens(&[Message::new("user", "hello")]).unwrap_err();
    assert!(start.elapsed() < std::time::Duration::from_secs(10), "took {:?}", start.elapsed());
    assert!(matches!(err, ChatError::TooBig { input: 9, .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.starts_with("doubling.gguf: ") && msg.contains("built a value of over 4194340 bytes"), "{msg}");
}

#[cfg(feature = "gpu")]
#[test]
fn a_per_expert_moe_with_one_expert_loads_on_the_gpu() {
    // The GPU loader once chose "merged" by the number of tensors, and read a third
    // dimension that a per-expert (2-D) tensor does not have.
    let hp = Hp { n_layer: 1, n_embd: 32, n_ff: 32, n_head: 2, n_head_kv: 2, head_dim: 16, n_vocab: 16, n_ctx: 64 };
    let mut w = writer(hp, 16).kv("llama.expert_count", Kv::U64(1)).kv("llama.expert_used_count", Kv::U64(1));
    w.tensors.retain(|t| !t.0.starts_with("blk.0.ffn_gate") && !t.0.starts_with("blk.0.ffn_up") && !t.0.starts_with("blk.0.ffn_down"));
    for (name, dims) in [("ffn_gate_inp", [32u64, 1]), ("ffn_gate.0", [32, 32]), ("ffn_up.0", [32, 32]), ("ffn_down.0", [32, 32])] {
        w.tensors.push((format!("blk.0.{name}.weight"), dims.to_vec(), F32, dims[0] * dims[1] * 4));
    }
    let b = w.bytes();
    let ctx = match precis::gpu::block_on(precis::gpu::GpuContext::new(&precis::gpu::Requirements::default())) {
        Ok(c) => c,
        Err(e) => panic!("no Vulkan adapter (make setup installs lavapipe): {e}"),
    };
    let mut src: &[u8] = &b;
    let e = precis::gpu::block_on(Engine::load_gpu(ctx, &mut src, "one-expert.gguf", &Overrides::default())).expect("loads");
    let opts = GenerateOptions { max_tokens: 2, ..Default::default() };
    precis::gpu::block_on(e.generate_async(&[1, 2], &opts, None, &mut |_| true)).expect("runs");
}
