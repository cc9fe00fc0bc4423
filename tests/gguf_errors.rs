//! Bad input never panics: each corruption yields an error naming offset and field,
//! and loading a model names the file.

mod common;
use common::{fixture, GgufWriter, Kv};
use precis::format::gguf::{Gguf, GgufError};
use precis::{Engine, Overrides};

fn parse(b: &[u8]) -> Result<Gguf, GgufError> {
    Gguf::parse(b, b.len() as u64)
}

fn load(b: &[u8], name: &str) -> String {
    let mut src: &[u8] = b;
    match Engine::load(&mut src, name, &Overrides::default()) {
        Ok(_) => panic!("{name}: loading succeeded"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn wrong_magic() {
    let mut b = GgufWriter::new().bytes();
    b[..4].copy_from_slice(b"GGML");
    let e = parse(&b).unwrap_err();
    assert!(matches!(e, GgufError::BadMagic { .. }), "{e}");
    assert!(load(&b, "x.gguf").starts_with("x.gguf: not a GGUF file"));
}

#[test]
fn truncated_everywhere_is_an_error_naming_the_field() {
    let b = std::fs::read(fixture("tiny-mistral.gguf")).unwrap();
    let g = parse(&b).unwrap();
    // Every cut inside the header is reported as truncation at a named field.
    for cut in (0..g.data_offset as usize).step_by(97) {
        match parse(&b[..cut]) {
            Err(GgufError::Truncated { field, size, .. }) => assert_eq!(size, cut as u64, "{field}"),
            Err(GgufError::BadTensor { .. }) => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
    // A cut inside the tensor data: the header parses only if the data still fits.
    let e = parse(&b[..b.len() - 1]).unwrap_err().to_string();
    assert!(e.contains("runs past the end of the file"), "{e}");
    let msg = load(&b[..b.len() / 2], "tiny.gguf");
    assert!(msg.starts_with("tiny.gguf: tensor `") && msg.contains("past the end"), "{msg}");
}

#[test]
fn short_prefix_asks_for_more() {
    let b = std::fs::read(fixture("tiny-mistral.gguf")).unwrap();
    assert!(matches!(Gguf::parse(&b[..100], b.len() as u64), Err(GgufError::NeedMore { .. })));
}

#[test]
fn absurd_counts_and_lengths_are_refused_before_allocating() {
    let mut b = GgufWriter::new().bytes();
    b[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    let e = parse(&b).unwrap_err();
    assert!(matches!(&e, GgufError::TooLarge { field, offset: 8, .. } if field == "tensor_count"), "{e}");

    let mut b = GgufWriter::new().kv("general.name", Kv::Str("abc".into())).bytes();
    // The key's length field sits right after the 24-byte header.
    b[24..32].copy_from_slice(&(1u64 << 60).to_le_bytes());
    let e = parse(&b).unwrap_err();
    assert!(matches!(&e, GgufError::TooLarge { offset: 24, .. }), "{e}");

    let mut b = GgufWriter::new().kv("tokenizer.ggml.tokens", Kv::StrArr(vec!["a".into()])).bytes();
    let at = 24 + 8 + "tokenizer.ggml.tokens".len() + 4 + 4;
    b[at..at + 8].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    let e = parse(&b).unwrap_err().to_string();
    assert!(e.contains("tokenizer.ggml.tokens (array length)") && e.contains(&format!("offset {at}")), "{e}");
}

#[test]
fn unknown_quant_type() {
    let b = GgufWriter::new().tensor("blk.0.attn_q.weight", &[32, 2], 19, 64).bytes();
    let e = parse(&b).unwrap_err();
    assert!(matches!(&e, GgufError::UnknownType { tensor, ty: 19, .. } if tensor == "blk.0.attn_q.weight"), "{e}");
    // A known ggml type Precis does not read is named, with the ones it does.
    let msg = e.to_string();
    assert!(msg.contains("unsupported ggml type 19 (IQ1_S)") && msg.contains("Q5_0, Q5_1"), "{msg}");
    assert!(msg.contains("Q2_K, Q3_K, Q4_K") && msg.contains("IQ4_NL, IQ4_XS"), "{msg}");
    // Q2_K, Q3_K, IQ4_NL and IQ4_XS tensors are read; a row that splits a block is not.
    for (ty, bytes) in [(10u32, 2 * 84), (11, 2 * 110), (20, 16 * 18), (23, 2 * 136)] {
        let b = GgufWriter::new().tensor("blk.0.ffn_up.weight", &[256, 2], ty, bytes).bytes();
        let g = parse(&b).unwrap_or_else(|e| panic!("type {ty}: {e}"));
        assert_eq!(g.tensors[0].n_bytes(), bytes, "type {ty}");
    }
    let b = GgufWriter::new().tensor("blk.0.ffn_up.weight", &[32, 2], 10, 64).bytes();
    let msg = parse(&b).unwrap_err().to_string();
    assert!(msg.contains("row length 32 is not a multiple") && msg.contains("block size 256"), "{msg}");
    let b = GgufWriter::new().tensor("blk.0.ffn_down.weight", &[32, 2], 77, 64).bytes();
    let msg = parse(&b).unwrap_err().to_string();
    assert!(msg.contains("`blk.0.ffn_down.weight`") && msg.contains("unknown ggml type 77;"), "{msg}");
}

#[test]
fn unsupported_architecture() {
    let b = GgufWriter::new().kv("general.architecture", Kv::Str("gpt-neox".into())).bytes();
    let msg = load(&b, "neox.gguf");
    assert!(msg.contains("neox.gguf") && msg.contains("unsupported architecture `gpt-neox`"), "{msg}");
    assert!(msg.contains("`llama`, `mistral`, `qwen2`"), "names the supported ones: {msg}");
}

#[test]
fn tensor_shape_disagreeing_with_metadata() {
    let mut w = GgufWriter::new()
        .kv("general.architecture", Kv::Str("llama".into()))
        .kv("llama.block_count", Kv::U32(1))
        .kv("llama.embedding_length", Kv::U32(64))
        .kv("llama.feed_forward_length", Kv::U32(128))
        .kv("llama.attention.head_count", Kv::U32(2))
        .kv("llama.vocab_size", Kv::U32(4))
        .kv("tokenizer.ggml.model", Kv::Str("llama".into()))
        .kv("tokenizer.ggml.tokens", Kv::StrArr(vec!["<unk>".into(), "<s>".into(), "</s>".into(), "a".into()]));
    w = w.tensor("token_embd.weight", &[64, 4], 0, 64 * 4 * 4).tensor("output_norm.weight", &[64], 0, 256);
    // attn_q should be [64, 64]; give it [64, 32].
    w = w.tensor("blk.0.attn_norm.weight", &[64], 0, 256).tensor("blk.0.attn_q.weight", &[64, 32], 0, 64 * 32 * 4);
    let msg = load(&w.bytes(), "bad-shape.gguf");
    assert!(msg.contains("bad-shape.gguf: tensor `blk.0.attn_q.weight`") && msg.contains("[64, 32]") && msg.contains("[64, 64]"), "{msg}");
    let w2 = GgufWriter { kv: w.kv, tensors: w.tensors.into_iter().filter(|t| t.0 != "blk.0.attn_q.weight").collect() };
    let msg = load(&w2.bytes(), "missing.gguf");
    assert!(msg.contains("missing.gguf: tensor `blk.0.attn_q.weight` is missing"), "{msg}");
}

#[test]
fn random_mutations_never_panic() {
    // Deterministic mutation fuzzing over the real fixtures: flips, overwrites with
    // boundary values, truncations. Both the header parser and the full loader run.
    let originals = [std::fs::read(fixture("tiny-mistral.gguf")).unwrap(), std::fs::read(fixture("tiny-mixtral.gguf")).unwrap()];
    let mut s = 0x2545F4914F6CDD1Du64;
    let mut rnd = move |n: usize| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s % n as u64) as usize
    };
    for iter in 0..400 {
        let orig = &originals[iter % 2];
        let header_end = parse(orig).unwrap().data_offset as usize;
        let mut b = orig.clone();
        for _ in 0..1 + rnd(4) {
            let at = rnd(header_end.min(b.len()));
            match rnd(4) {
                0 => b[at] ^= 1 << rnd(8),
                1 => b[at] = [0, 0xFF, 0x7F, 0x80][rnd(4)],
                2 => {
                    let v = [0u64, 1, u32::MAX as u64, u64::MAX, 1 << 40][rnd(5)].to_le_bytes();
                    let end = (at + 8).min(b.len());
                    b[at..end].copy_from_slice(&v[..end - at]);
                }
                _ => b.truncate(at.max(1)),
            }
        }
        let r = std::panic::catch_unwind(|| {
            let _ = parse(&b);
            let mut src: &[u8] = &b;
            let _ = Engine::load(&mut src, "fuzz.gguf", &Overrides::default());
        });
        assert!(r.is_ok(), "iteration {iter} panicked");
    }
}

#[test]
fn sliding_window_from_metadata_or_override() {
    use precis::Hparams;
    let base = || {
        GgufWriter::new()
            .kv("general.architecture", Kv::Str("llama".into()))
            .kv("llama.block_count", Kv::U32(32))
            .kv("llama.embedding_length", Kv::U32(4096))
            .kv("llama.feed_forward_length", Kv::U32(14336))
            .kv("llama.attention.head_count", Kv::U32(32))
            .kv("llama.attention.head_count_kv", Kv::U32(8))
            .kv("llama.vocab_size", Kv::U32(32000))
    };
    let b = base().bytes();
    let g = parse(&b).unwrap();
    let hp = Hparams::from_gguf(&g, &Overrides::default()).unwrap();
    assert_eq!((hp.sliding_window, hp.head_dim, hp.gqa_group(), hp.rope_base), (None, 128, 4, 10000.0));
    // Mistral 7B v0.1 GGUFs lack the key: the caller supplies W = 4096.
    let hp = Hparams::from_gguf(&g, &Overrides { sliding_window: Some(4096), ..Default::default() }).unwrap();
    assert_eq!(hp.sliding_window, Some(4096));
    let b = base().kv("llama.attention.sliding_window", Kv::U32(4096)).kv("llama.expert_count", Kv::U32(8)).kv("llama.expert_used_count", Kv::U32(2)).bytes();
    let hp = Hparams::from_gguf(&parse(&b).unwrap(), &Overrides::default()).unwrap();
    assert_eq!((hp.sliding_window, hp.n_expert, hp.n_expert_used), (Some(4096), 8, 2));
    let b = base().kv("llama.expert_count", Kv::U32(8)).kv("llama.expert_used_count", Kv::U32(9)).bytes();
    let e = Hparams::from_gguf(&parse(&b).unwrap(), &Overrides::default()).unwrap_err().to_string();
    assert!(e.contains("expert_used_count 9"), "{e}");
    let b = base().kv("llama.rope.freq_base", Kv::Str("fast".into())).bytes();
    let e = Hparams::from_gguf(&parse(&b).unwrap(), &Overrides::default()).unwrap_err().to_string();
    assert!(e.contains("llama.rope.freq_base") && e.contains("string at offset"), "{e}");
}

/// gemma3: the window is required (llama.cpp reads it as required); the local layers'
/// rope base is `rope.freq_base_swa` where given, else 10000; every 6th layer is global.
#[test]
fn gemma3_window_and_local_rope_base_from_metadata() {
    use precis::Hparams;
    let base = || {
        GgufWriter::new()
            .kv("general.architecture", Kv::Str("gemma3".into()))
            .kv("gemma3.block_count", Kv::U32(18))
            .kv("gemma3.embedding_length", Kv::U32(640))
            .kv("gemma3.feed_forward_length", Kv::U32(2048))
            .kv("gemma3.attention.head_count", Kv::U32(4))
            .kv("gemma3.attention.head_count_kv", Kv::U32(1))
            .kv("gemma3.attention.key_length", Kv::U32(256))
            .kv("gemma3.rope.freq_base", Kv::F32(1e6))
            .kv("gemma3.vocab_size", Kv::U32(1000))
    };
    let e = Hparams::from_gguf(&parse(&base().bytes()).unwrap(), &Overrides::default()).unwrap_err().to_string();
    assert!(e.contains("gemma3.attention.sliding_window") && e.contains("local layers"), "{e}");
    let b = base().kv("gemma3.attention.sliding_window", Kv::U32(512)).bytes();
    let hp = Hparams::from_gguf(&parse(&b).unwrap(), &Overrides::default()).unwrap();
    assert_eq!((hp.rope_base, hp.rope_base_local, hp.attn_scale), (1e6, 10_000.0, 1.0 / 16.0));
    assert_eq!((0..18).filter(|&l| hp.is_global(l)).collect::<Vec<_>>(), [5, 11, 17]);
    assert_eq!((hp.layer_window(4), hp.layer_window(5), hp.layer_rope_base(5), hp.layer_rope_base(6)), (Some(512), None, 1e6, 10_000.0));
    let b = base().kv("gemma3.attention.sliding_window", Kv::U32(512)).kv("gemma3.rope.freq_base_swa", Kv::F32(5e4)).bytes();
    assert_eq!(Hparams::from_gguf(&parse(&b).unwrap(), &Overrides::default()).unwrap().rope_base_local, 5e4);
}

/// phi3 (Phi-3.5-mini's shapes): the window key its converter writes is not read (llama.cpp
/// turns phi3's window off); LongRoPE's choice follows the context the model runs at
/// against `rope.scaling.original_context_length` (llama.cpp `get_rope_factors`), the
/// default context being 8192 capped at the training one; `rope.scaling.attn_factor` is
/// read, and one that is not a positive number is refused by key.
#[test]
fn phi3_window_key_ignored_and_longrope_choice_from_the_context() {
    use precis::Hparams;
    let base = |ctx: u32| {
        GgufWriter::new()
            .kv("general.architecture", Kv::Str("phi3".into()))
            .kv("phi3.block_count", Kv::U32(32))
            .kv("phi3.context_length", Kv::U32(ctx))
            .kv("phi3.embedding_length", Kv::U32(3072))
            .kv("phi3.feed_forward_length", Kv::U32(8192))
            .kv("phi3.attention.head_count", Kv::U32(32))
            .kv("phi3.attention.sliding_window", Kv::U32(262144))
            .kv("phi3.vocab_size", Kv::U32(32064))
    };
    let long = base(131072).kv("phi3.rope.scaling.original_context_length", Kv::U32(4096)).kv("phi3.rope.scaling.attn_factor", Kv::F32(1.190238));
    let hp = Hparams::from_gguf(&parse(&long.bytes()).unwrap(), &Overrides::default()).unwrap();
    assert_eq!((hp.sliding_window, hp.n_ctx_run, hp.rope_orig_ctx, hp.long_rope(), hp.rope_attn_factor), (None, 8192, 4096, true, 1.190238));
    let at = |c: usize| Overrides { context: Some(c), ..Default::default() };
    let g = parse(&long.bytes()).unwrap();
    assert!(!Hparams::from_gguf(&g, &at(4096)).unwrap().long_rope(), "a context of 4096 is the short factors'");
    assert!(Hparams::from_gguf(&g, &at(4097)).unwrap().long_rope());
    assert!(Hparams::from_gguf(&g, &at(0)).unwrap_err().to_string().contains("context"));
    // The --window override still applies; without the original context key, the training
    // context is the short factors' (and the default context never passes it).
    assert_eq!(Hparams::from_gguf(&g, &Overrides { sliding_window: Some(2047), ..Default::default() }).unwrap().sliding_window, Some(2047));
    let hp = Hparams::from_gguf(&parse(&base(4096).bytes()).unwrap(), &Overrides::default()).unwrap();
    assert_eq!((hp.rope_orig_ctx, hp.n_ctx_run, hp.long_rope(), hp.rope_attn_factor), (4096, 4096, false, 1.0));
    for bad in [0.0, -1.0, f32::NAN] {
        let b = base(4096).kv("phi3.rope.scaling.attn_factor", Kv::F32(bad)).bytes();
        let e = Hparams::from_gguf(&parse(&b).unwrap(), &Overrides::default()).unwrap_err().to_string();
        assert!(e.contains("phi3.rope.scaling.attn_factor") && e.contains("positive number"), "{bad}: {e}");
    }
}

/// mistral3 (Ministral 3 3B's shapes): YaRN and the query temperature from metadata (its
/// step length the YaRN original context); rope scaling forms Precis does not run, and a
/// temperature with part of each head unrotated, are refused naming the key.
#[test]
fn mistral3_yarn_and_temperature_keys_and_their_refusals() {
    use precis::format::hparams::{AttnTemp, RopeScaling};
    use precis::Hparams;
    let with_type = |kind: &str| {
        GgufWriter::new()
            .kv("general.architecture", Kv::Str("mistral3".into()))
            .kv("mistral3.block_count", Kv::U32(26))
            .kv("mistral3.context_length", Kv::U32(262144))
            .kv("mistral3.embedding_length", Kv::U32(3072))
            .kv("mistral3.feed_forward_length", Kv::U32(9216))
            .kv("mistral3.attention.head_count", Kv::U32(32))
            .kv("mistral3.attention.head_count_kv", Kv::U32(8))
            .kv("mistral3.attention.key_length", Kv::U32(128))
            .kv("mistral3.vocab_size", Kv::U32(131072))
            .kv("mistral3.rope.scaling.type", Kv::Str(kind.into()))
            .kv("mistral3.rope.scaling.factor", Kv::F32(16.0))
            .kv("mistral3.rope.scaling.original_context_length", Kv::U32(16384))
            .kv("mistral3.rope.scaling.yarn_log_multiplier", Kv::F32(1.0))
    };
    let base = || with_type("yarn");
    let hp_of = |w: GgufWriter| Hparams::from_gguf(&parse(&w.bytes()).unwrap(), &Overrides::default());
    let hp = hp_of(base().kv("mistral3.attention.temperature_scale", Kv::F32(0.1))).unwrap();
    assert_eq!(hp.rope_scaling, RopeScaling::Yarn { factor: 16.0, beta_fast: 32.0, beta_slow: 1.0, log_mul: 1.0 });
    assert_eq!((hp.attn_temp, hp.rope_attn_factor), (Some(AttnTemp { beta: 0.1, len: 16384 }), 1.0));
    // No log multiplier: YaRN's own correction, 1 + 0.1 ln 16, on cos and sin.
    let mut no_log = base();
    no_log.kv.retain(|(k, _)| k != "mistral3.rope.scaling.yarn_log_multiplier");
    assert!((hp_of(no_log).unwrap().rope_attn_factor - (1.0 + 0.1 * 16f32.ln())).abs() < 1e-6);
    assert_eq!(hp_of(base().kv("mistral3.attention.temperature_scale", Kv::F32(0.0))).unwrap().attn_temp, None);
    let refused = [
        (with_type("su"), "mistral3.rope.scaling.type"),
        (base().kv("mistral3.rope.scaling.yarn_ext_factor", Kv::F32(0.5)), "mistral3.rope.scaling.yarn_ext_factor"),
        (base().kv("mistral3.rope.scaling.yarn_attn_factor", Kv::F32(1.2)), "mistral3.rope.scaling.yarn_attn_factor"),
        (base().kv("mistral3.rope.scaling.yarn_beta_fast", Kv::F32(-1.0)), "mistral3.rope.scaling.yarn_beta_fast"),
        (base().kv("mistral3.attention.temperature_scale", Kv::F32(-0.1)), "mistral3.attention.temperature_scale"),
        (base().kv("mistral3.attention.temperature_scale", Kv::F32(0.1)).kv("mistral3.rope.dimension_count", Kv::U32(64)), "mistral3.attention.temperature_scale"),
    ];
    for (w, key) in refused {
        let e = hp_of(w).unwrap_err().to_string();
        assert!(e.contains(key), "{key}: {e}");
    }
}

/// `{arch}.rope.scaling.*` for every family (llama.cpp `llama_model::load_hparams`): the type
/// defaults to linear, the factor (or the older `rope.scale_linear`) gives positions ×
/// 1/factor, a zero factor or type none means unscaled; on gemma3 (Gemma 3 4B's keys) the
/// local layers stay unscaled. YaRN is read for every family too (its defaults: beta fast
/// 32, slow 1); an unknown type, a type that is not a string and a negative or NaN factor
/// are refused by key (and value).
#[test]
fn rope_scaling_linear_read_for_every_family_and_unknown_types_refused_by_name() {
    use precis::format::rope_scaling::RopeScaling;
    use precis::Hparams;
    let llama = || {
        GgufWriter::new()
            .kv("general.architecture", Kv::Str("llama".into()))
            .kv("llama.block_count", Kv::U32(4))
            .kv("llama.embedding_length", Kv::U32(256))
            .kv("llama.feed_forward_length", Kv::U32(512))
            .kv("llama.attention.head_count", Kv::U32(4))
            .kv("llama.vocab_size", Kv::U32(1000))
    };
    let hp = |w: GgufWriter| Hparams::from_gguf(&parse(&w.bytes()).unwrap(), &Overrides::default());
    assert_eq!(hp(llama()).unwrap().rope_scaling, RopeScaling::None, "no keys: unscaled");
    assert_eq!(hp(llama().kv("llama.rope.scaling.factor", Kv::F32(4.0))).unwrap().rope_scaling, RopeScaling::Linear { factor: 4.0 }, "the type defaults to linear");
    let h = hp(llama().kv("llama.rope.scaling.type", Kv::Str("linear".into())).kv("llama.rope.scaling.factor", Kv::F32(4.0))).unwrap();
    assert_eq!((0..4).map(|l| h.layer_rope_scale(l)).collect::<Vec<_>>(), [0.25; 4], "every layer of a family without local layers");
    assert_eq!(hp(llama().kv("llama.rope.scale_linear", Kv::F32(2.0))).unwrap().rope_scale(), 0.5, "the older key, type defaulting to linear");
    assert_eq!(hp(llama().kv("llama.rope.scaling.type", Kv::Str("none".into())).kv("llama.rope.scaling.factor", Kv::F32(4.0))).unwrap().rope_scale(), 1.0);
    assert_eq!(hp(llama().kv("llama.rope.scaling.factor", Kv::F32(0.0))).unwrap().rope_scale(), 1.0);
    let yarn = hp(llama().kv("llama.rope.scaling.type", Kv::Str("yarn".into())).kv("llama.rope.scaling.factor", Kv::F32(4.0))).unwrap();
    assert_eq!(yarn.rope_scaling, RopeScaling::Yarn { factor: 4.0, beta_fast: 32.0, beta_slow: 1.0, log_mul: 0.0 });
    assert_eq!(yarn.rope_scale(), 0.25);
    let e = hp(llama().kv("llama.rope.scaling.type", Kv::Str("ntk".into()))).unwrap_err().to_string();
    assert!(e.contains("`llama.rope.scaling.type` is `ntk`"), "{e}");
    let e = hp(llama().kv("llama.rope.scaling.type", Kv::U32(1))).unwrap_err().to_string();
    assert!(e.contains("llama.rope.scaling.type") && e.contains("a string"), "{e}");
    for bad in [-8.0, f32::NAN] {
        let e = hp(llama().kv("llama.rope.scaling.factor", Kv::F32(bad))).unwrap_err().to_string();
        assert!(e.contains("llama.rope.scaling.factor") && e.contains("positive number"), "{bad}: {e}");
    }
    // Gemma 3 4B: 34 layers, linear 8 on the global ones (5, 11, ...) only.
    let gemma = GgufWriter::new()
        .kv("general.architecture", Kv::Str("gemma3".into()))
        .kv("gemma3.block_count", Kv::U32(34))
        .kv("gemma3.embedding_length", Kv::U32(2560))
        .kv("gemma3.feed_forward_length", Kv::U32(10240))
        .kv("gemma3.attention.head_count", Kv::U32(8))
        .kv("gemma3.attention.head_count_kv", Kv::U32(4))
        .kv("gemma3.attention.key_length", Kv::U32(256))
        .kv("gemma3.attention.sliding_window", Kv::U32(1024))
        .kv("gemma3.rope.freq_base", Kv::F32(1e6))
        .kv("gemma3.rope.scaling.type", Kv::Str("linear".into()))
        .kv("gemma3.rope.scaling.factor", Kv::F32(8.0))
        .kv("gemma3.vocab_size", Kv::U32(1000));
    let h = hp(gemma).unwrap();
    assert_eq!((h.layer_rope_scale(4), h.layer_rope_scale(5), h.layer_rope_scale(6), h.layer_rope_scale(11)), (1.0, 0.125, 1.0, 0.125));
}

/// qwen3moe (Qwen3-30B-A3B's keys): experts `expert_feed_forward_length` wide beside the
/// dense `feed_forward_length`; without the key, n_ff / expert_used_count (llama.cpp's
/// qwen3moe loader); without `expert_count`, refused naming it.
#[test]
fn qwen3moe_expert_width_and_expert_count_from_metadata() {
    use precis::Hparams;
    let base = || {
        GgufWriter::new()
            .kv("general.architecture", Kv::Str("qwen3moe".into()))
            .kv("qwen3moe.block_count", Kv::U32(48))
            .kv("qwen3moe.embedding_length", Kv::U32(2048))
            .kv("qwen3moe.feed_forward_length", Kv::U32(6144))
            .kv("qwen3moe.attention.head_count", Kv::U32(32))
            .kv("qwen3moe.attention.head_count_kv", Kv::U32(4))
            .kv("qwen3moe.attention.key_length", Kv::U32(128))
            .kv("qwen3moe.vocab_size", Kv::U32(1000))
    };
    let hp = |w: GgufWriter| Hparams::from_gguf(&parse(&w.bytes()).unwrap(), &Overrides::default());
    let moe = || base().kv("qwen3moe.expert_count", Kv::U32(128)).kv("qwen3moe.expert_used_count", Kv::U32(8));
    let h = hp(moe().kv("qwen3moe.expert_feed_forward_length", Kv::U32(768))).unwrap();
    assert_eq!((h.n_ff, h.n_ff_exp, h.n_expert, h.n_expert_used, h.family.rope), (6144, 768, 128, 8, precis::format::family::RopeStyle::Neox));
    assert_eq!(hp(moe()).unwrap().n_ff_exp, 6144 / 8);
    let e = hp(base()).unwrap_err().to_string();
    assert!(e.contains("qwen3moe.expert_count") && e.contains("mixture of experts"), "{e}");
}
