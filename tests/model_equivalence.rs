//! The CPU forward pass against an independent NumPy reference (tiny random models the
//! project generates), against llama.cpp's logits on the same files, against its
//! plain-Rust slow twin, and against itself:
//! token-by-token decoding = one full prefill = chunked prefill, past the sliding
//! window and through the MoE path.

mod common;
use common::fixture;
use precis::format::gguf::Gguf;
use precis::cpu::model::{Model, Weights};
use precis::model::Logits;
use precis::cpu::reference::RefModel;
use precis::model::spec::ModelSpec;
use precis::{Hparams, Overrides};

/// Cache/chunking changes only the f32 summation order of attention.
const TOL_SAME_MATH: f32 = 2e-4;
/// Fast path with exact (dequantized) weights, and the slow twin, vs NumPy float64.
const TOL_REFERENCE: f32 = 2e-3;
/// Quantized fast path vs NumPy: the matmuls round activations to 8 bits (ggml's Q8
/// dot-product partners); bound on the mean |diff| relative to the logits' spread.
const TOL_QUANT_MEAN: f32 = 0.1;

struct Loaded {
    model: Model,
    exact: Model,
    reference: RefModel,
    tokens: Vec<u32>,
    numpy_logits: Vec<f32>,
}

fn tiny(name: &str) -> Loaded {
    tiny_with(name, &Overrides::default(), "ref")
}

/// `name` loaded with `ov`, its NumPy logits from the file under `ref_key` in tiny-models.json.
fn tiny_with(name: &str, ov: &Overrides, ref_key: &str) -> Loaded {
    let bytes = std::fs::read(fixture(&format!("{name}.gguf"))).unwrap();
    let g = Gguf::parse(&bytes, bytes.len() as u64).unwrap();
    let hp = Hparams::from_gguf(&g, ov).unwrap();
    let spec = ModelSpec::resolve(&g, &hp, name).unwrap();
    let mut src: &[u8] = &bytes;
    let model = Model::load(&mut src, name, &spec, hp.clone()).unwrap();
    let exact = Model::load_with(&mut &bytes[..], name, &spec, hp.clone(), Weights::Dequantized).unwrap();
    let mut src: &[u8] = &bytes;
    let reference = RefModel::load(&mut src, name, &spec, hp).unwrap();
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture("tiny-models.json")).unwrap()).unwrap();
    let m = &meta["models"][name];
    let tokens: Vec<u32> = m["tokens"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    let raw = std::fs::read(fixture(m[ref_key].as_str().unwrap())).unwrap();
    let numpy_logits = raw.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    Loaded { model, exact, reference, tokens, numpy_logits }
}

/// Max |a-b| over rows, relative to the reference's standard deviation; names the
/// first element that breaks `tol`.
fn compare(what: &str, got: &[f32], want: &[f32], vocab: usize, tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let mean = want.iter().sum::<f32>() / want.len() as f32;
    let std = (want.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / want.len() as f32).sqrt();
    let mut worst = (0f32, 0usize);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let d = (g - w).abs() / std;
        assert!(d <= tol, "{what}: first bad index {i} (position {}, token {}): got {g}, want {w}, |diff|/std {d:.2e} > {tol:.0e}", i / vocab, i % vocab);
        if d > worst.0 {
            worst = (d, i);
        }
    }
    eprintln!("{what}: max |diff|/std = {:.2e} at index {}", worst.0, worst.1);
}

fn mean_rel(got: &[f32], want: &[f32]) -> f32 {
    let mean = want.iter().sum::<f32>() / want.len() as f32;
    let std = (want.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / want.len() as f32).sqrt();
    got.iter().zip(want).map(|(g, w)| (g - w).abs()).sum::<f32>() / got.len() as f32 / std
}

fn argmax_agreement(got: &[f32], want: &[f32], vocab: usize) -> f32 {
    let am = |r: &[f32]| precis::model::sampling::argmax(r);
    let rows = got.len() / vocab;
    (0..rows).filter(|&r| am(&got[r * vocab..][..vocab]) == am(&want[r * vocab..][..vocab])).count() as f32 / rows as f32
}

fn run_all(m: &Model, tokens: &[u32]) -> Vec<f32> {
    let mut cache = m.new_cache(tokens.len());
    m.forward(tokens, &mut cache, Logits::All).unwrap()
}

fn run_steps(m: &Model, tokens: &[u32], chunk: usize) -> Vec<f32> {
    let mut cache = m.new_cache(tokens.len());
    tokens.chunks(chunk).flat_map(|c| m.forward(c, &mut cache, Logits::All).unwrap()).collect()
}

fn check_model(name: &str) {
    check_loaded(name, tiny(name));
}

fn check_loaded(name: &str, t: Loaded) {
    let v = t.model.hp.n_vocab;
    let full = run_all(&t.model, &t.tokens);

    let slow = t.reference.forward_all(&t.tokens);
    compare(&format!("{name}: slow twin vs NumPy"), &slow, &t.numpy_logits, v, TOL_REFERENCE);
    compare(&format!("{name}: fast path (exact weights) vs NumPy"), &run_all(&t.exact, &t.tokens), &t.numpy_logits, v, TOL_REFERENCE);
    let mad = mean_rel(&full, &t.numpy_logits);
    assert!(mad < TOL_QUANT_MEAN, "{name}: quantized fast path vs NumPy: mean |diff|/std {mad}");
    let agree = argmax_agreement(&full, &t.numpy_logits, v);
    assert!(agree >= 0.9, "{name}: argmax agrees on only {:.0}% of positions", agree * 100.0);

    compare(&format!("{name}: token-by-token vs full prefill"), &run_steps(&t.model, &t.tokens, 1), &full, v, TOL_SAME_MATH);
    let w = t.model.hp.sliding_window.unwrap_or(8);
    for chunk in [3, w, w + 5] {
        compare(&format!("{name}: chunks of {chunk} vs full prefill"), &run_steps(&t.model, &t.tokens, chunk), &full, v, TOL_SAME_MATH);
    }
    // `prefill` (chunks capped at W) must give the last row of the full pass.
    let mut cache = t.model.new_cache(t.tokens.len());
    let last = t.model.prefill(&t.tokens, &mut cache, 512).unwrap();
    compare(&format!("{name}: prefill() last logits"), &last, &full[full.len() - v..], v, TOL_SAME_MATH);
}

#[test]
fn tiny_mistral_sliding_window() {
    let t = tiny("tiny-mistral");
    let w = t.model.hp.sliding_window.expect("tiny-mistral has a sliding window");
    assert!(t.tokens.len() > 4 * w, "the test sequence must run well past W");
    // The window must matter: the same model with full attention differs past W.
    let mut dense = tiny("tiny-mistral");
    dense.model.hp.sliding_window = None;
    let (a, b) = (run_all(&t.model, &t.tokens), run_all(&dense.model, &t.tokens));
    let v = t.model.hp.n_vocab;
    assert_eq!(a[..w * v], b[..w * v], "positions before W see the same keys");
    let diff = a[w * v..].iter().zip(&b[w * v..]).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(diff > 0.1, "window had no effect past W (max diff {diff})");
    check_model("tiny-mistral");
}

/// qwen2: Q/K/V biases, NEOX rope, a tied Q5_0 head and Q5_0/Q5_1 layers, against NumPy;
/// each of the family's two differences must matter (a model without them differs).
#[test]
fn tiny_qwen2_biases_and_neox_rope() {
    check_model("tiny-qwen2");
    let t = tiny("tiny-qwen2");
    assert_eq!(t.model.hp.family.rope, precis::format::family::RopeStyle::Neox);
    let want = run_all(&t.exact, &t.tokens);
    let max_diff = |m: &Model| run_all(m, &t.tokens).iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    let mut normal = tiny("tiny-qwen2").exact;
    normal.rope = precis::cpu::rope::Rope::new(normal.hp.head_dim, normal.hp.n_rot, normal.hp.rope_base, precis::format::family::RopeStyle::Normal);
    let mut unbiased = tiny("tiny-qwen2").exact;
    unbiased.layers.iter_mut().for_each(|l| l.qkv_bias = [None, None, None]);
    for (what, m) in [("normal-mode rope", &normal), ("no biases", &unbiased)] {
        let d = max_diff(m);
        assert!(d > 0.1, "{what}: logits moved by only {d}: the step has no effect");
    }
}

/// qwen3: per-head RMSNorm of Q and K before a NEOX rotation, no biases, against NumPy;
/// the norm must matter (a model without it differs).
#[test]
fn tiny_qwen3_per_head_qk_norm() {
    check_model("tiny-qwen3");
    let t = tiny("tiny-qwen3");
    assert!(t.model.hp.family.qk_norm && t.model.layers.iter().all(|l| l.qkv_bias.iter().all(Option::is_none)));
    let want = run_all(&t.exact, &t.tokens);
    let mut unnormed = tiny("tiny-qwen3").exact;
    unnormed.layers.iter_mut().for_each(|l| l.qk_norm = [None, None]);
    let d = run_all(&unnormed, &t.tokens).iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(d > 0.1, "without the Q/K norm the logits moved by only {d}: the step has no effect");
}

/// gemma3 on a tiny random model with 7 layers: 0-4 and 6 local (W = 8, their own rope
/// base), 5 global, over 40 tokens, against NumPy; decoding token by token, in chunks
/// and in one prefill agree past W. Each gemma step must matter (a model without it
/// differs), and the global layer must see past the window.
#[test]
fn tiny_gemma3_local_and_global_layers() {
    check_model("tiny-gemma3");
    let t = tiny("tiny-gemma3");
    let hp = &t.model.hp;
    let w = hp.sliding_window.expect("gemma3 has a window");
    assert!(t.tokens.len() > 4 * w, "the test sequence must run well past W");
    assert_eq!((0..hp.n_layer).filter(|&l| hp.is_global(l)).collect::<Vec<_>>(), vec![5], "layer 5 of 7 is global");
    assert!(hp.mixed_windows() && hp.rope_base_local != hp.rope_base);
    let want = run_all(&t.exact, &t.tokens);
    let v = hp.n_vocab;
    let max_diff = |m: &Model| run_all(m, &t.tokens).iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    let variant = |f: &dyn Fn(&mut Model)| {
        let mut m = tiny("tiny-gemma3").exact;
        f(&mut m);
        m
    };
    use precis::format::family::Activation;
    let cases: Vec<(&str, Model)> = vec![
        ("no embedding scale", variant(&|m| m.hp.family.embd_scale = false)),
        ("no post-attention norm", variant(&|m| m.layers.iter_mut().for_each(|l| l.post_norm[0] = None))),
        ("no post-FFN norm", variant(&|m| m.layers.iter_mut().for_each(|l| l.post_norm[1] = None))),
        ("SiLU instead of GELU", variant(&|m| m.layers.iter_mut().for_each(|l| if let precis::cpu::model::Ffn::Dense(f) = &mut l.ffn { f.act = Activation::Silu }))),
        ("no Q/K norm", variant(&|m| m.layers.iter_mut().for_each(|l| l.qk_norm = [None, None]))),
        ("the global base on local layers", variant(&|m| m.rope_local = None)),
        ("every layer local", variant(&|m| m.hp.global_every = None)),
    ];
    for (what, m) in &cases {
        let d = max_diff(m);
        assert!(d > 0.1, "{what}: logits moved by only {d}: the step has no effect");
    }
    // Without any window (the same rotations) the model agrees before W, bit for bit, and
    // differs past it.
    let dense = run_all(&variant(&|m| m.hp.sliding_window = None), &t.tokens);
    assert!(want[..w * v] == dense[..w * v], "before W the local layers see what the global ones do");
    let past = want[w * v..].iter().zip(&dense[w * v..]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(past > 0.1, "the window had no effect past W (max diff {past})");
}

/// The mixed cache: after 40 tokens, each local layer holds exactly W rows and the global
/// layer all 40; a prompt-prefix snapshot moves into a larger context keeping that.
#[test]
fn mixed_cache_holds_w_slots_for_local_layers_and_the_context_for_global_ones() {
    let t = tiny("tiny-gemma3");
    let (w, kvd) = (t.model.hp.sliding_window.unwrap(), t.model.hp.kv_dim());
    let mut cache = t.model.new_cache(4096);
    for c in t.tokens.chunks(w) {
        t.model.forward(c, &mut cache, Logits::Last).unwrap();
    }
    for (l, lc) in cache.layers.iter().enumerate() {
        let rows = if t.model.hp.is_global(l) { t.tokens.len() } else { w };
        assert_eq!((lc.k.len(), lc.v.len()), (rows * kvd, rows * kvd), "layer {l} holds {rows} rows");
        assert_eq!(lc.capacity, if t.model.hp.is_global(l) { 4096 } else { w }, "layer {l}'s slots");
    }
    // A dense context shorter than what the global layers hold is refused, a longer one taken.
    let bigger = cache.reshaped(precis::model::cache::CacheShape::for_model(&t.model.hp, 8192)).expect("a longer context takes the rows");
    assert!(bigger.layers.iter().enumerate().all(|(l, lc)| lc.capacity == if t.model.hp.is_global(l) { 8192 } else { w }));
    assert!(cache.reshaped(precis::model::cache::CacheShape::for_model(&t.model.hp, 39)).is_none());
    // And the context rule is the global layers': 4096 - 40 more tokens fit, one more does not.
    let err = t.model.forward(&vec![5; 4096 - 40 + 1], &mut cache, Logits::Last).unwrap_err();
    assert!(matches!(err, precis::model::ModelError::ContextFull { .. }), "{err}");
}

/// Llama 3.1-style rope scaling: `rope_freqs.weight` divides each pair's frequency,
/// against NumPy; without the factors the logits differ.
#[test]
fn tiny_llama3_rope_frequency_factors() {
    check_model("tiny-llama3");
    let t = tiny("tiny-llama3");
    let bytes = std::fs::read(fixture("tiny-llama3.gguf")).unwrap();
    let g = Gguf::parse(&bytes, bytes.len() as u64).unwrap();
    let spec = ModelSpec::resolve(&g, &t.model.hp, "tiny-llama3").unwrap();
    assert!(spec.rope_freqs.is_some(), "the fixture has rope_freqs.weight");
    let mut plain = tiny("tiny-llama3").exact;
    plain.rope = precis::cpu::rope::Rope::new(plain.hp.head_dim, plain.hp.n_rot, plain.hp.rope_base, plain.hp.family.rope);
    let want = run_all(&t.exact, &t.tokens);
    let d = run_all(&plain, &t.tokens).iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(d > 0.1, "without the frequency factors the logits moved by only {d}");
}

/// phi3 (tests/fixtures/tiny-phi3.gguf): fused `attn_qkv` and gate/up in `ffn_up`, NEOX
/// rope on 48 of 64 head dims with LongRoPE factors and its attention factor, against
/// NumPy with both factor sets: the long ones at the default context (8192, past the
/// original 1024), the short ones at a context of 64. The file's sliding_window key (8)
/// is not read, as llama.cpp turns phi3's off. Each part must matter.
#[test]
fn tiny_phi3_fused_projections_and_longrope() {
    check_model("tiny-phi3");
    let short_ctx = Overrides { context: Some(64), ..Default::default() };
    check_loaded("tiny-phi3 (short factors)", tiny_with("tiny-phi3", &short_ctx, "ref_short"));
    let t = tiny("tiny-phi3");
    let hp = &t.model.hp;
    assert_eq!((hp.arch.as_str(), hp.n_rot, hp.head_dim, hp.sliding_window, hp.rope_orig_ctx), ("phi3", 48, 64, None, 1024));
    assert!(hp.long_rope() && !tiny_with("tiny-phi3", &short_ctx, "ref_short").model.hp.long_rope());
    assert!((hp.rope_attn_factor - 1.224_744_9).abs() < 1e-6, "attn factor {}", hp.rope_attn_factor);
    let bytes = std::fs::read(fixture("tiny-phi3.gguf")).unwrap();
    let g = Gguf::parse(&bytes, bytes.len() as u64).unwrap();
    let spec = ModelSpec::resolve(&g, hp, "tiny-phi3").unwrap();
    assert_eq!(spec.rope_freqs.as_ref().map(|t| t.name.as_str()), Some("rope_factors_long.weight"));
    assert!(spec.layers.iter().all(|l| matches!(l.qkv, precis::model::spec::Parts::Fused { .. })));
    assert!(t.model.layers.iter().all(|l| matches!(l.qkv, precis::cpu::linear::Projections::Stacked { .. })), "a fused tensor is one stacked product");
    let want = run_all(&t.exact, &t.tokens);
    let v = hp.n_vocab;
    let max_diff = |m: &Model| run_all(m, &t.tokens).iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    let variant = |f: &dyn Fn(&mut Model)| {
        let mut m = tiny("tiny-phi3").exact;
        f(&mut m);
        m
    };
    use precis::cpu::rope::Rope;
    let cases: Vec<(&str, Model)> = vec![
        ("no attention factor", variant(&|m| m.rope = Rope::with_factors(m.hp.head_dim, m.hp.n_rot, m.hp.rope_base, m.hp.family.rope, Some(read_factors(&g, &bytes, "rope_factors_long.weight").as_slice())))),
        ("no frequency factors", variant(&|m| m.rope = Rope::new(m.hp.head_dim, m.hp.n_rot, m.hp.rope_base, m.hp.family.rope).scaled(m.hp.rope_attn_factor))),
        ("the short factors", variant(&|m| m.rope = Rope::with_factors(m.hp.head_dim, m.hp.n_rot, m.hp.rope_base, m.hp.family.rope, Some(read_factors(&g, &bytes, "rope_factors_short.weight").as_slice())).scaled(m.hp.rope_attn_factor))),
        ("the file's window", variant(&|m| m.hp.sliding_window = Some(8))),
    ];
    for (what, m) in &cases {
        let d = max_diff(m);
        assert!(d > 0.1, "{what}: logits moved by only {d}: the step has no effect");
    }
    // The window would only change positions past it.
    assert!(run_all(&cases[3].1, &t.tokens)[..8 * v] == want[..8 * v]);
}

/// mistral3 (tests/fixtures/tiny-mistral3.gguf): YaRN (factor 4 over an original context of
/// 16) and Llama 4's query temperature (beta 0.1, a step every 16 positions), against NumPy,
/// over 40 tokens: past the original context and both temperature steps. Each part must
/// matter, and the temperature not before position 16.
#[test]
fn tiny_mistral3_yarn_and_query_temperature() {
    check_model("tiny-mistral3");
    let t = tiny("tiny-mistral3");
    let hp = &t.model.hp;
    use precis::format::hparams::{AttnTemp, RopeScaling};
    assert_eq!(hp.rope_scaling, RopeScaling::Yarn { factor: 4.0, beta_fast: 32.0, beta_slow: 1.0, log_mul: 1.0 });
    assert_eq!((hp.attn_temp, hp.rope_orig_ctx, hp.rope_attn_factor), (Some(AttnTemp { beta: 0.1, len: 16 }), 16, 1.0));
    assert!(t.tokens.len() > 2 * 16, "the sequence must pass both temperature steps");
    let (want, v) = (run_all(&t.exact, &t.tokens), hp.n_vocab);
    let max_diff = |m: &Model| run_all(m, &t.tokens).iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    let mut no_temp = tiny("tiny-mistral3").exact;
    no_temp.hp.attn_temp = None;
    let mut no_yarn = tiny("tiny-mistral3").exact;
    no_yarn.rope = precis::cpu::rope::Rope::new(hp.head_dim, hp.n_rot, hp.rope_base, hp.family.rope);
    for (what, m) in [("no temperature", &no_temp), ("no YaRN", &no_yarn)] {
        let d = max_diff(m);
        assert!(d > 0.1, "{what}: logits moved by only {d}: the step has no effect");
    }
    assert!(run_all(&no_temp, &t.tokens)[..16 * v] == want[..16 * v], "the temperature is 1 before position 16");
}

/// smollm3 (tests/fixtures/tiny-smollm3.gguf): 4 layers, layer 3 without rope (llama.cpp's
/// `(il + 1) % 4 != 0`), a tied head; against NumPy. Rotating layer 3 too must differ.
#[test]
fn tiny_smollm3_nope_layer() {
    check_model("tiny-smollm3");
    let t = tiny("tiny-smollm3");
    let hp = &t.model.hp;
    assert_eq!((0..hp.n_layer).map(|l| hp.layer_rotates(l)).collect::<Vec<_>>(), [true, true, true, false]);
    let want = run_all(&t.exact, &t.tokens);
    let mut all_rope = tiny("tiny-smollm3").exact;
    all_rope.hp.family.no_rope_every = None;
    let d = run_all(&all_rope, &t.tokens).iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(d > 0.1, "rotating the NoPE layer moved the logits by only {d}");
}

/// phi3's `ffn_up` must hold 2 n_ff rows (gate and up), and a fused Q/K/V bias is refused:
/// each a load error naming the tensor, never a panic.
#[test]
fn a_phi3_file_with_a_wrong_fused_shape_is_refused_by_name() {
    let bytes = std::fs::read(fixture("tiny-phi3.gguf")).unwrap();
    let g = Gguf::parse(&bytes, bytes.len() as u64).unwrap();
    let mut hp = Hparams::from_gguf(&g, &Overrides::default()).unwrap();
    hp.n_ff /= 2;
    let e = ModelSpec::resolve(&g, &hp, "tiny-phi3").err().expect("ffn_up of 4 n_ff rows is refused").to_string();
    assert!(e.contains("blk.0.ffn_up.weight"), "{e}");
    let mut hp = Hparams::from_gguf(&g, &Overrides::default()).unwrap();
    hp.n_head_kv = 4;
    let e = ModelSpec::resolve(&g, &hp, "tiny-phi3").err().expect("attn_qkv of the wrong height is refused").to_string();
    assert!(e.contains("blk.0.attn_qkv.weight"), "{e}");
}

/// The f32 values of a 1-D F32 tensor of the fixture.
fn read_factors(g: &Gguf, bytes: &[u8], name: &str) -> Vec<f32> {
    let t = g.tensor(name).unwrap_or_else(|| panic!("the fixture has {name}"));
    bytes[t.range().start as usize..t.range().end as usize].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

/// A `rope_freqs.weight` factor of 0 (an infinite frequency) or NaN is refused at load,
/// naming the tensor and the factor, on the CPU and in the slow twin.
#[test]
fn a_zero_or_nan_rope_frequency_factor_is_refused_by_name() {
    let bytes = std::fs::read(fixture("tiny-llama3.gguf")).unwrap();
    let g = Gguf::parse(&bytes, bytes.len() as u64).unwrap();
    let t = g.tensor("rope_freqs.weight").expect("tiny-llama3 has rope_freqs").clone();
    for (i, bad) in [(0usize, 0f32), (7, f32::NAN), (31, -1.0)] {
        let mut b = bytes.clone();
        let at = t.offset as usize + 4 * i;
        b[at..at + 4].copy_from_slice(&bad.to_le_bytes());
        let e = precis::Engine::load(&mut &b[..], "bad.gguf", &Overrides::default()).err().expect("refused").to_string();
        assert!(e.contains("rope_freqs.weight") && e.contains(&format!("frequency factor {i} is")), "{e}");
        let hp = Hparams::from_gguf(&g, &Overrides::default()).unwrap();
        let spec = ModelSpec::resolve(&g, &hp, "bad.gguf").unwrap();
        assert!(RefModel::load(&mut &b[..], "bad.gguf", &spec, hp).is_err(), "the slow twin refuses it too");
    }
}

/// Precis's quantized CPU path against llama.cpp's own logits on the same tiny files
/// (tests/fixtures/tiny-llamacpp.json, from tests/fixtures/llamacpp/tiny_logits.mjs):
/// llama.cpp's 5 highest logits at every position are ours within this fraction of the
/// logits' spread (both engines round activations to 8 bits, each in its own way, and
/// llama.cpp keeps an f16 KV cache; measured: 3.3e-2 on tiny-qwen2, 4.8e-2 on tiny-qwen3,
/// 5.3e-2 on tiny-mixtral, 9.4e-2 on tiny-gemma3 (past its window; its logits spread only
/// 1.05, and llama.cpp's own distance from NumPy float64 there is 8.8e-2 — its GELU reads
/// an f16 table), 4.5e-2 on tiny-llama3 (rope_freqs), 5.3e-2 and 7.5e-2 on tiny-phi3 with
/// its long and short LongRoPE factors, with llama.cpp's argmax ours at 40/40 positions
/// of each but tiny-llama3's 38/40 and tiny-phi3's 37/40 and 38/40 (near-ties, within
/// NEAR_TIE_LLAMA_CPP; llama.cpp's own argmax equals NumPy float64's at 37 and 38 there);
/// llama.cpp against NumPy float64 is 2.8e-2 and 3.8e-2 on the two qwen files).
/// tiny-qwen3moe: 7.2e-2, argmax 38/40 (position 4 a near-tie: NumPy float64's top two
/// 0.11 apart, and llama.cpp's own argmax differs from NumPy's there).
const TOL_LLAMA_CPP_TOP5: f32 = 0.1;
/// The gemma3 runs: llama.cpp's GELU reads an f16 table, so llama.cpp itself is 8.8e-2
/// (tiny-gemma3) and 9.9e-2 (tiny-gemma3-linear) of the spread from NumPy float64, which
/// our exact-weight path meets within 3e-6; with our own 8-bit rounding on top we measure
/// 9.4e-2 and 1.07e-1, argmax 40/40 on both. (llama.cpp does scale: against the unscaled
/// reference its tiny-gemma3-linear logits are 3.6e-1 off.)
const TOL_LLAMA_CPP_TOP5_GEMMA3: f32 = 0.12;
/// llama.cpp's pick at a position may be below our argmax by at most this (a near-tie
/// the two roundings order differently), in logits.
const NEAR_TIE_LLAMA_CPP: f32 = 0.25;

#[test]
fn tiny_families_match_llama_cpp_logits() {
    let fx: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture("tiny-llamacpp.json")).unwrap()).unwrap();
    let models = fx["models"].as_object().unwrap();
    for name in ["tiny-qwen2", "tiny-qwen3", "tiny-mixtral", "tiny-gemma3", "tiny-llama3", "tiny-phi3", "tiny-phi3-short", "tiny-mistral3", "tiny-smollm3", "tiny-qwen3moe", "tiny-gemma3-linear"] {
        assert!(models.contains_key(name), "tiny-llamacpp.json has {name}");
    }
    for (name, m) in models {
        // A run at another context (tiny-phi3's LongRoPE factors depend on it) loads the
        // file with that context.
        let ov = Overrides { context: m["context"].as_u64().map(|c| c as usize), ..Default::default() };
        let t = tiny_with(m["file"].as_str().unwrap().trim_end_matches(".gguf"), &ov, "ref");
        let want_tokens: Vec<u32> = m["tokens"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        assert_eq!(t.tokens, want_tokens, "{name}: the same tokens as llama.cpp's run");
        let v = t.model.hp.n_vocab;
        let got = run_all(&t.model, &t.tokens);
        let mean = got.iter().sum::<f32>() / got.len() as f32;
        let std = (got.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / got.len() as f32).sqrt();
        let tol = if t.model.hp.family.arch == "gemma3" { TOL_LLAMA_CPP_TOP5_GEMMA3 } else { TOL_LLAMA_CPP_TOP5 };
        let (mut worst, mut exact) = (0f32, 0);
        for (p, top) in m["top5"].as_array().unwrap().iter().enumerate() {
            let row = &got[p * v..][..v];
            for e in top.as_array().unwrap() {
                let (id, logit) = (e[0].as_u64().unwrap() as usize, e[1].as_f64().unwrap() as f32);
                let d = (row[id] - logit).abs() / std;
                assert!(d <= tol, "{name}: position {p}, token {id}: ours {}, llama.cpp {logit}, |diff|/std {d:.2e} > {tol}", row[id]);
                worst = worst.max(d);
            }
            let (theirs, ours) = (top[0][0].as_u64().unwrap() as u32, precis::model::sampling::argmax(row));
            let gap = row[ours as usize] - row[theirs as usize];
            assert!(gap <= NEAR_TIE_LLAMA_CPP, "{name}: position {p}: llama.cpp's argmax {theirs} is {gap} below ours {ours}");
            exact += (theirs == ours) as usize;
        }
        eprintln!("{name} vs llama.cpp: argmax equal at {exact}/{} positions, top-5 logits max |diff|/std {worst:.2e}", t.tokens.len());
    }
}

#[test]
fn tiny_mixtral_merged_experts() {
    check_model("tiny-mixtral");
}

/// qwen3moe (llama.cpp `llama_model_qwen3moe`): qwen3's attention with 8 experts, top 3,
/// each `expert_feed_forward_length` (128) wide beside a dense `feed_forward_length` (768)
/// that sizes nothing; against NumPy, decode step by step = full prefill through the MoE
/// path. The fixture's seed keeps every router's k-th/(k+1)-th margin at least
/// `min_router_margin` (tiny-models.json), so the float32 and 8-bit roundings choose the
/// same experts as float64.
#[test]
fn tiny_qwen3moe_experts_of_their_own_width() {
    check_model("tiny-qwen3moe");
    let t = tiny("tiny-qwen3moe");
    let hp = &t.model.hp;
    assert_eq!((hp.family.arch, hp.n_expert, hp.n_expert_used, hp.n_ff_exp, hp.n_ff), ("qwen3moe", 8, 3, 128, 768));
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture("tiny-models.json")).unwrap()).unwrap();
    let margin = meta["models"]["tiny-qwen3moe"]["min_router_margin"].as_f64().unwrap();
    assert!(margin > 0.05, "tiny-qwen3moe's closest expert choice is {margin} from a tie: regenerate with another seed");
    // Every expert is chosen somewhere, so a wrong expert slice would show.
    let routing = meta["models"]["tiny-qwen3moe"]["routing"].as_array().unwrap();
    let used: std::collections::BTreeSet<u64> = routing.iter().flat_map(|l| l.as_array().unwrap()).flat_map(|t| t.as_array().unwrap()).map(|e| e.as_u64().unwrap()).collect();
    assert_eq!(used.len(), 8);
}

/// Linear rope scaling (`gemma3.rope.scaling.type` linear, factor 8, as Gemma 3 4B+):
/// tiny-gemma3's weights, the global layer's positions × 1/8 and the local layers'
/// unscaled (llama.cpp `llama_load_hparams_gemma3`: `rope_freq_scale_train_swa = 1`).
/// Against NumPy (which moves the logits by up to 0.88 from tiny-gemma3's), step by step =
/// full prefill; scaling every layer, or none, misses the reference.
#[test]
fn tiny_gemma3_linear_rope_scaling_on_global_layers() {
    check_model("tiny-gemma3-linear");
    let t = tiny("tiny-gemma3-linear");
    let hp = &t.model.hp;
    assert_eq!(hp.rope_scaling, precis::format::rope_scaling::RopeScaling::Linear { factor: 8.0 });
    assert_eq!((0..hp.n_layer).map(|l| hp.layer_rope_scale(l)).collect::<Vec<_>>(), [1.0, 1.0, 1.0, 1.0, 1.0, 0.125, 1.0]);
    // The unscaled model (tiny-gemma3, the same weights) is far from this reference.
    let plain = tiny("tiny-gemma3");
    let got = run_all(&plain.exact, &plain.tokens);
    let worst = got.iter().zip(&t.numpy_logits).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst > 0.5, "the scaling must matter on this fixture: unscaled is within {worst}");
}

#[test]
fn tiny_mixtral_legacy_experts_equal_merged() {
    check_model("tiny-mixtral-legacy");
    let (a, b) = (tiny("tiny-mixtral"), tiny("tiny-mixtral-legacy"));
    assert_eq!(run_all(&a.model, &a.tokens), run_all(&b.model, &b.tokens), "same expert bytes, same logits");
}

#[test]
fn rolling_cache_stays_at_w_slots() {
    let t = tiny("tiny-mistral");
    let w = t.model.hp.sliding_window.unwrap();
    let mut cache = t.model.new_cache(4096);
    for c in t.tokens.chunks(w) {
        t.model.forward(c, &mut cache, Logits::Last).unwrap();
    }
    let per_layer = w * t.model.hp.kv_dim();
    for l in &cache.layers {
        assert_eq!(l.k.len(), per_layer, "K cache holds exactly W rows");
    }
}

#[test]
fn loading_from_ranges_supplied_out_of_order() {
    use precis::engine::Loader;
    use precis::{Engine, Overrides};
    let bytes = std::fs::read(fixture("tiny-mixtral.gguf")).unwrap();
    let mut l = Loader::new("tiny-mixtral.gguf", bytes.len() as u64, Overrides::default());
    // Offer growing prefixes the way the browser would.
    let mut want = 64u64;
    while let Some(n) = l.header(&bytes[..want as usize]).unwrap() {
        assert!(n > want);
        want = n.min(bytes.len() as u64);
    }
    let mut ranges = l.ranges();
    let total: u64 = ranges.iter().map(|r| r.end - r.start).sum();
    assert!(total < bytes.len() as u64, "only tensor bytes are requested");
    ranges.reverse();
    for r in ranges {
        l.add(r.start, bytes[r.start as usize..r.end as usize].to_vec());
    }
    let streamed = l.finish().unwrap();
    let direct = Engine::load(&mut &bytes[..], "tiny-mixtral.gguf", &Overrides::default()).unwrap();
    let toks = [1u32, 300, 301, 5, 17];
    let a = streamed.cpu().unwrap().forward(&toks, &mut streamed.cpu().unwrap().new_cache(16), Logits::All).unwrap();
    let b = direct.cpu().unwrap().forward(&toks, &mut direct.cpu().unwrap().new_cache(16), Logits::All).unwrap();
    assert_eq!(a, b);
    // A range never supplied is an error naming it, not a panic.
    let mut l = Loader::new("x.gguf", bytes.len() as u64, Overrides::default());
    assert_eq!(l.header(&bytes).unwrap(), None);
    let e = l.finish().err().unwrap().to_string();
    assert!(e.contains("were not supplied"), "{e}");
}

fn engine(name: &str) -> precis::Engine {
    precis::Engine::load_file(&fixture(&format!("{name}.gguf")), &Overrides::default()).unwrap()
}

/// The prompt-prefix cache on the CPU: past the sliding window (a kept 20-token prefix
/// of an 8-slot rolling buffer), through the MoE path, and on the llama layout.
#[test]
fn prefix_cache_equals_a_cold_run_bit_for_bit() {
    common::check_prefix_reuse("tiny-mistral (W = 8)", &|| engine("tiny-mistral"), 20, 9, 5);
    common::check_prefix_reuse("tiny-mixtral", &|| engine("tiny-mixtral"), 20, 9, 7);
    common::check_prefix_reuse("tiny-smollm2", &|| engine("tiny-smollm2"), 23, 6, 8);
    common::check_prefix_reuse("tiny-gemma3 (mixed cache, W = 8)", &|| engine("tiny-gemma3"), 20, 9, 5);
}

/// The web app stores the kept prefix across reloads: saved as bytes and loaded
/// into a fresh engine it gives a cold run's logits, past the window (W = 8) too.
#[test]
fn a_saved_prefix_loaded_into_a_fresh_engine_equals_a_cold_run() {
    common::check_saved_prefix("tiny-mistral (W = 8)", &|| engine("tiny-mistral"), 20, 9, 5);
    common::check_saved_prefix("tiny-mixtral", &|| engine("tiny-mixtral"), 20, 9, 7);
    common::check_saved_prefix("tiny-smollm2", &|| engine("tiny-smollm2"), 23, 6, 8);
    common::check_saved_prefix("tiny-gemma3 (mixed cache, W = 8)", &|| engine("tiny-gemma3"), 20, 9, 5);
}

/// A mixed cache's prefix file (version 2) names its local window and period: another
/// model's shape is refused by field, a version-1 reading of it too, every cut too.
#[test]
fn a_mixed_cache_prefix_file_is_checked_field_by_field() {
    use precis::engine::prefix_file::PrefixFileError as E;
    let key = "model sha256 + prompt";
    let bytes = common::check_saved_prefix("tiny-gemma3", &|| engine("tiny-gemma3"), 20, 9, 5);
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 2, "a mixed cache is written as version 2");
    let e = engine("tiny-gemma3");
    for len in (0..bytes.len()).step_by(97) {
        assert!(matches!(e.load_prefix(&bytes[..len], key), Err(E::Truncated { .. })), "cut at {len}");
    }
    // The local window field sits after magic, version, key, tokens, 3 u32 and the flag.
    let at = 16 + key.len() + 4 + 4 * 20 + 12 + 1;
    let mut other = bytes.clone();
    other[at..at + 4].copy_from_slice(&9u32.to_le_bytes());
    assert_eq!(e.load_prefix(&other, key), Err(E::Shape { field: "local window", saved: 9, model: 8 }));
    let mut v1 = bytes.clone();
    v1[8] = 1;
    assert!(matches!(e.load_prefix(&v1, key), Err(E::Shape { .. } | E::Trailing { .. } | E::Truncated { .. })), "read as version 1 it does not fit");
    // tiny-mistral's (every layer W slots) into gemma3, and gemma3's into tiny-mistral: refused.
    let mistral = common::check_saved_prefix("tiny-mistral", &|| engine("tiny-mistral"), 20, 9, 5);
    assert!(matches!(e.load_prefix(&mistral, key), Err(E::Shape { .. })));
    assert!(matches!(engine("tiny-mistral").load_prefix(&bytes, key), Err(E::Shape { .. })));
    assert_eq!(e.load_prefix(&bytes, key), Ok(20));
}

/// What the browser's storage gives back may be another model's, another key's,
/// cut short or crafted: each is refused with the field named, nothing is kept,
/// and a claimed size larger than the bytes given allocates nothing.
#[test]
fn a_damaged_or_foreign_prefix_file_is_refused_by_name() {
    use precis::engine::prefix_file::PrefixFileError as E;
    let bytes = common::check_saved_prefix("tiny-smollm2", &|| engine("tiny-smollm2"), 23, 6, 8);
    let e = engine("tiny-smollm2");
    let key = "model sha256 + prompt";
    let refused = |b: &[u8], k: &str| -> E {
        let err = e.load_prefix(b, k).expect_err("a damaged file is refused");
        assert_eq!(e.prefixes.kept().0, 0, "nothing is kept from a refused file ({err})");
        err
    };
    // Every cut: the field it falls in is named.
    for len in 0..bytes.len() {
        match refused(&bytes[..len], key) {
            E::Truncated { len: l, .. } => assert_eq!(l, len),
            other => panic!("cut at {len}: {other}"),
        }
    }
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(refused(&trailing, key), E::Trailing { extra: 1 });
    assert!(matches!(refused(&bytes, "another model"), E::Key { .. }));
    let mut magic = bytes.clone();
    magic[0] = b'X';
    assert!(matches!(refused(&magic, key), E::Magic(_)));
    let mut version = bytes.clone();
    version[8] = 9;
    assert_eq!(refused(&version, key), E::Version(9));
    // The token count, claimed as 2^32 - 1: truncated at the ids, nothing allocated.
    let at = 16 + key.len();
    let mut huge = bytes.clone();
    huge[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(refused(&huge, key), E::Truncated { field: "token ids", .. }));
    // A token id past the vocabulary.
    let mut token = bytes.clone();
    token[at + 4..at + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(refused(&token, key), E::Token { id: u32::MAX, at: 0, .. }));
    // Another model's prefix (other layers and widths).
    let mistral = common::check_saved_prefix("tiny-mistral", &|| engine("tiny-mistral"), 20, 9, 5);
    let err = refused(&mistral, key);
    assert!(matches!(err, E::Shape { .. } | E::Token { .. }), "{err}");
    assert!(err.to_string().contains("this model has"), "{err}");
    // The good file still loads.
    assert_eq!(e.load_prefix(&bytes, key), Ok(23));
}

/// Stop between two chunks, and inside one (between layers), ends the prefill.
#[test]
fn stop_during_the_prefill_ends_it() {
    let e = engine("tiny-smollm2");
    common::check_stop_in_prefill("between chunks", &e, false);
    common::check_stop_in_prefill("between layers", &e, true);
    // Nothing half-done was kept: the engine still gives a cold run's result.
    common::check_prefix_reuse("tiny-smollm2 after two Stops", &|| engine("tiny-smollm2"), 23, 6, 8);
}
