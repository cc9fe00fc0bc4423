//! Whole-model logits, GPU against the CPU engine: tiny Mistral (decode past W = 8,
//! chunked prefill), tiny Qwen2 (biases, NEOX rope, Q5_0/Q5_1), tiny Qwen3 (Q/K norms), tiny Mixtral in both expert layouts (also with its expert stacks
//! split across buffers), SmolLM2 and tiny-smollm2 (SmolLM2's shapes per head, random
//! weights); GPU decode = GPU prefill; greedy SmolLM2 tokens equal to the CPU path;
//! prefill cut into bounded submissions; a missing limit is an error.
//! No adapter is a failure, not a skip (CI runs lavapipe).
#![cfg(feature = "gpu")]

mod common;
use common::{default_model, fixture};
use precis::format::gguf::Gguf;
use precis::gpu::{block_on, GpuContext, GpuError, GpuModel, Requirements};
use precis::cpu::model::Model;
use precis::model::Logits;
use precis::model::spec::ModelSpec;
use precis::{Hparams, Overrides};

/// GPU vs the CPU engine with the weights dequantized to f32 (`Weights::Dequantized`,
/// exact matmuls): both multiply the same f32 weights by f32 activations, so only
/// summation order differs. (Against the CPU's quantized path the gap is ~5% of the
/// logits' spread: that path rounds activations to 8 bits, ggml's Q8 partners.)
const TOL_GPU_VS_CPU: f32 = 2e-3;
/// GPU against itself with another chunking: only f32 summation order changes.
const TOL_SAME_MATH: f32 = 1e-4;
/// With an f16 KV cache, against the CPU's f32 cache: K/V rows rounded to 11 bits
/// (seen on lavapipe: up to 6.0e-3, SmolLM2 decode after a 300-token prompt).
const TOL_F16_KV_VS_CPU: f32 = 1e-2;
/// With an f16 KV cache, decode against one-chunk prefill: the chunk's own keys are
/// f32 in the one-chunk run, read back from the f16 cache in decode (seen: up to
/// 1.2e-3 on tiny Mixtral).
const TOL_F16_KV_SAME: f32 = 1e-2;

struct Both {
    /// The CPU engine as shipped (quantized products).
    cpu: Model,
    /// The CPU engine with f32 weights: what the GPU computes, up to summation order.
    exact: Model,
    gpu: GpuModel,
}

fn load(path: &str) -> Both {
    load_limited(path, u64::MAX)
}

/// As [`load`] with the GPU's weight parts at most `limit` bytes.
fn load_limited(path: &str, limit: u64) -> Both {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let g = Gguf::parse(&bytes, bytes.len() as u64).unwrap();
    let hp = Hparams::from_gguf(&g, &Overrides::default()).unwrap();
    let spec = ModelSpec::resolve(&g, &hp, path).unwrap();
    let cpu = Model::load(&mut &bytes[..], path, &spec, hp.clone()).unwrap();
    let exact = Model::load_with(&mut &bytes[..], path, &spec, hp.clone(), precis::cpu::model::Weights::Dequantized).unwrap();
    let ctx = block_on(GpuContext::new(&Requirements::default())).expect("a GPU adapter is required (lavapipe in CI)");
    let gpu = block_on(GpuModel::load_limited(ctx, &mut &bytes[..], path, &spec, hp, limit)).unwrap();
    Both { cpu, exact, gpu }
}

fn tokens(n: usize, vocab: usize) -> Vec<u32> {
    (0..n).map(|i| ((i * 7919 + 13) % vocab) as u32).collect()
}

/// Max |a - b| relative to the spread of `want`; names the first element over `tol`.
fn compare(what: &str, got: &[f32], want: &[f32], vocab: usize, tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let mean = want.iter().sum::<f32>() / want.len() as f32;
    let std = (want.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / want.len() as f32).sqrt();
    let mut worst = 0f32;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let d = (g - w).abs() / std;
        assert!(d <= tol, "{what}: first bad index {i} (row {}, token {}): gpu {g}, cpu {w}, |diff|/std {d:.2e} > {tol:.0e}", i / vocab, i % vocab);
        worst = worst.max(d);
    }
    eprintln!("{what}: max |diff|/std = {worst:.2e}");
}

/// The KV cache element types the adapter offers (f32; f16 with `shader-f16`), each
/// with its tolerances (vs the CPU, vs the GPU itself).
fn kv_types(gpu: &GpuModel) -> Vec<(bool, f32, f32)> {
    let mut v = vec![(false, TOL_GPU_VS_CPU, TOL_SAME_MATH)];
    if gpu.ctx.has_f16 {
        v.push((true, TOL_F16_KV_VS_CPU, TOL_F16_KV_SAME));
    } else {
        eprintln!("{}: no shader-f16, the f16 KV cache is not tested", gpu.ctx.adapter_name);
    }
    v
}

/// All-position logits on both engines (one chunk), then the GPU's decode and
/// chunked prefill against its own one-chunk run; with each KV cache type.
fn check_model(name: &str, path: &str, n: usize) {
    check_loaded(name, &load(path), n)
}

fn check_loaded(name: &str, m: &Both, n: usize) {
    let hp = &m.cpu.hp;
    let v = hp.n_vocab;
    let toks = tokens(n, v);
    let w = hp.sliding_window.unwrap_or(usize::MAX);
    for (half, tol_cpu, tol_same) in kv_types(&m.gpu) {
        let name = format!("{name} (KV cache {})", if half { "f16" } else { "f32" });
        // One forward per chunk of <= W tokens (the rolling cache's limit), all logits.
        let mut cpu_cache = m.exact.new_cache(n);
        let mut gpu_cache = m.gpu.new_cache_with(n, half).unwrap();
        let (mut cpu_all, mut gpu_all) = (vec![], vec![]);
        for c in toks.chunks(w.min(n)) {
            cpu_all.extend(m.exact.forward(c, &mut cpu_cache, Logits::All).unwrap());
            gpu_all.extend(block_on(m.gpu.forward(c, &mut gpu_cache, Logits::All)).unwrap());
        }
        compare(&format!("{name}: GPU vs CPU, all positions"), &gpu_all, &cpu_all, v, tol_cpu);

        // Token by token on the GPU = the chunked run above, past the window.
        let mut cache = m.gpu.new_cache_with(n, half).unwrap();
        let mut steps = vec![];
        for &t in &toks {
            steps.extend(block_on(m.gpu.forward(&[t], &mut cache, Logits::Last)).unwrap());
        }
        compare(&format!("{name}: GPU decode vs GPU prefill"), &steps, &gpu_all, v, tol_same);

        // Chunked prefill (3 tokens at a time) ends on the same last logits.
        let mut cache = m.gpu.new_cache_with(n, half).unwrap();
        let last = block_on(m.gpu.prefill(&toks, &mut cache, 3)).unwrap();
        compare(&format!("{name}: GPU chunked prefill"), &last, &gpu_all[(n - 1) * v..], v, tol_same);
        // The greedy fast path reads back only the id: the argmax of those logits.
        let mut cache = m.gpu.new_cache_with(n, half).unwrap();
        let id = block_on(m.gpu.prefill_greedy(&toks, &mut cache, 5)).unwrap();
        let mut cache = m.gpu.new_cache_with(n, half).unwrap();
        let last5 = block_on(m.gpu.prefill(&toks, &mut cache, 5)).unwrap();
        assert_eq!(id, precis::model::sampling::argmax(&last5), "{name}: GPU greedy id vs argmax of GPU logits");
    }
}

#[test]
fn tiny_mistral_past_the_window() {
    check_model("tiny-mistral", &fixture("tiny-mistral.gguf"), 21);
}

#[test]
fn tiny_mixtral_merged_experts() {
    check_model("tiny-mixtral", &fixture("tiny-mixtral.gguf"), 13);
}

/// The qwen2 family: Q/K/V biases (add_rows), NEOX rope pairs, Q5_0/Q5_1 matrices and a
/// tied Q5_0 head through the generic matvec dot.
#[test]
fn tiny_qwen2_biases_neox_rope_q5() {
    check_model("tiny-qwen2", &fixture("tiny-qwen2.gguf"), 13);
}

/// The qwen3 family: per-head RMSNorm of Q and K (rms_norm.wgsl over head-sized rows).
#[test]
fn tiny_qwen3_per_head_qk_norm() {
    check_model("tiny-qwen3", &fixture("tiny-qwen3.gguf"), 13);
}

/// The gemma3 family past its window: the embedding scale, post-attention and post-FFN
/// norms, GeGLU, per-head Q/K norms, local layers (W = 8, their rope base) and a global
/// one in a mixed cache (W slots and the context), decode and chunked prefill included.
#[test]
fn tiny_gemma3_local_and_global_layers() {
    check_model("tiny-gemma3", &fixture("tiny-gemma3.gguf"), 21);
}

/// Llama 3.1-style `rope_freqs.weight`: the GPU rotates by the same divided frequencies.
#[test]
fn tiny_llama3_rope_frequency_factors() {
    check_model("tiny-llama3", &fixture("tiny-llama3.gguf"), 13);
}

/// The phi3 family: a fused `attn_qkv` (decode's matvec_qkv on its rows, prefill by row
/// ranges), gate and up fused in `ffn_up` (the fused SwiGLU matvec), NEOX rope on 48 of
/// 64 head dims with LongRoPE's long factors and cos/sin × the attention factor.
#[test]
fn tiny_phi3_fused_projections_and_longrope() {
    let m = load(&fixture("tiny-phi3.gguf"));
    assert!((m.gpu.hp.rope_attn_factor - 1.0).abs() > 0.1 && m.gpu.hp.n_rot < m.gpu.hp.head_dim && m.gpu.hp.long_rope());
    for (l, ly) in m.gpu.layers.iter().enumerate() {
        assert!(matches!(ly.qkv, precis::gpu::model::Projections::Stacked(..)), "layer {l}: the fused Q/K/V is one stack");
        assert!(matches!(&ly.ffn, precis::gpu::model::GpuFfn::Dense { gate_up: precis::gpu::model::Projections::Stacked(..), .. }), "layer {l}: gate/up one stack");
    }
    check_loaded("tiny-phi3", &m, 21);
}

/// The mistral3 family: YaRN frequencies (shared with the CPU through model::rope) and the
/// query temperature inside rope.wgsl, over 40 tokens: past the original context (16) and
/// both temperature steps, decode and chunked prefill included.
#[test]
fn tiny_mistral3_yarn_and_query_temperature() {
    let m = load(&fixture("tiny-mistral3.gguf"));
    assert!(m.gpu.hp.attn_temp.is_some_and(|t| t.len == 16) && matches!(m.gpu.hp.rope_scaling, precis::format::hparams::RopeScaling::Yarn { .. }));
    check_loaded("tiny-mistral3", &m, 40);
}

/// The smollm3 family: no rope on layer 3 (of 4), a tied head.
#[test]
fn tiny_smollm3_nope_layer() {
    let m = load(&fixture("tiny-smollm3.gguf"));
    assert!(!m.gpu.hp.layer_rotates(3) && m.gpu.hp.layer_rotates(2));
    check_loaded("tiny-smollm3", &m, 13);
}

/// The qwen3moe family: qwen3's per-head Q/K norms and NEOX rope with 8 experts, top 3,
/// `expert_feed_forward_length` (128) wide beside a dense width (768) that sizes nothing:
/// moe_route's top 3, the grouped prefill and the decode's per-slot expert products at the
/// expert width; decode step by step = prefill through the MoE path.
#[test]
fn tiny_qwen3moe_experts_of_their_own_width() {
    let m = load(&fixture("tiny-qwen3moe.gguf"));
    assert_eq!((m.gpu.hp.n_ff_exp, m.gpu.hp.n_ff, m.gpu.hp.n_expert, m.gpu.hp.n_expert_used), (128, 768, 8, 3));
    check_loaded("tiny-qwen3moe", &m, 13);
}

/// Linear rope scaling (factor 8) on gemma3's global layer only: the GPU's global
/// frequencies carry 1/8, the local ones none, as the CPU's.
#[test]
fn tiny_gemma3_linear_rope_scaling_on_global_layers() {
    check_model("tiny-gemma3-linear", &fixture("tiny-gemma3-linear.gguf"), 21);
}

#[test]
fn tiny_mixtral_legacy_per_expert_tensors() {
    check_model("tiny-mixtral-legacy", &fixture("tiny-mixtral-legacy.gguf"), 13);
}

/// Bytes of the largest single expert of any expert stack in `path`.
fn largest_expert_bytes(path: &str) -> u64 {
    use precis::model::spec::FfnSpec;
    let bytes = std::fs::read(path).unwrap();
    let g = Gguf::parse(&bytes, bytes.len() as u64).unwrap();
    let hp = Hparams::from_gguf(&g, &Overrides::default()).unwrap();
    let spec = ModelSpec::resolve(&g, &hp, path).unwrap();
    let mut most = 0;
    for l in &spec.layers {
        if let FfnSpec::Moe { experts, .. } = &l.ffn {
            most = experts.expert(0).iter().map(|s| s.range().end - s.range().start).fold(most, u64::max);
        }
    }
    most
}

/// Tiny Mixtral with parts of one largest expert (as a browser's binding limit splits
/// 8x7B's 264-499 MB stacks): every expert stack is split by whole experts, every
/// other matrix by rows; the same checks as unsplit (GPU vs CPU, decode = prefill).
fn check_split_experts(name: &str, file: &str) {
    let path = fixture(file);
    let limit = largest_expert_bytes(&path);
    let m = load_limited(&path, limit);
    for (l, ly) in m.gpu.layers.iter().enumerate() {
        let precis::gpu::model::GpuFfn::Moe { gate, up, down, .. } = &ly.ffn else { panic!("{name}: layer {l} is not MoE") };
        for s in [gate, up, down] {
            let parts: Vec<_> = s.parts.iter().map(|p| s.experts(p)).collect();
            assert!(parts.len() > 1, "{name}: `{}` ({} bytes) in one part under a limit of {limit}", s.name, s.bytes());
            eprintln!("{name}: `{}` experts per part {parts:?}", s.name);
        }
    }
    check_loaded(&format!("{name} (parts of {limit} bytes)"), &m, 13);
}

#[test]
fn tiny_mixtral_merged_experts_split_across_parts() {
    check_split_experts("tiny-mixtral", "tiny-mixtral.gguf");
}

#[test]
fn tiny_qwen3moe_experts_split_across_parts() {
    check_split_experts("tiny-qwen3moe", "tiny-qwen3moe.gguf");
}

#[test]
fn tiny_mixtral_legacy_experts_split_across_parts() {
    check_split_experts("tiny-mixtral-legacy", "tiny-mixtral-legacy.gguf");
}

/// Under a part limit one byte short of the largest expert the load fails before any
/// upload, naming an expert tensor, that expert's bytes and the limit.
#[test]
fn tiny_mixtral_expert_over_the_limit_is_a_clear_error() {
    let path = fixture("tiny-mixtral.gguf");
    let need = largest_expert_bytes(&path);
    let bytes = std::fs::read(&path).unwrap();
    let g = Gguf::parse(&bytes, bytes.len() as u64).unwrap();
    let hp = Hparams::from_gguf(&g, &Overrides::default()).unwrap();
    let spec = ModelSpec::resolve(&g, &hp, &path).unwrap();
    let ctx = block_on(GpuContext::new(&Requirements::default())).expect("a GPU adapter");
    let err = block_on(GpuModel::load_limited(ctx, &mut &bytes[..], &path, &spec, hp, need - 1)).err().expect("an expert over the limit must not load");
    match &err {
        GpuError::TooLarge { tensor, bytes, limit } => {
            assert!(tensor.contains("_exps.weight") && tensor.contains("one of its 4 experts"), "{err}");
            assert_eq!((*bytes, *limit), (need, need - 1), "{err}");
        }
        e => panic!("expected TooLarge, got {e}"),
    }
}

#[test]
fn smollm2_logits_match_cpu() {
    let m = load(&default_model());
    let v = m.cpu.hp.n_vocab;
    let prompt = tokens(20, v);
    for (half, tol_cpu, _) in kv_types(&m.gpu) {
        let mut cc = m.exact.new_cache(128);
        let mut gc = m.gpu.new_cache_with(128, half).unwrap();
        let cpu_l = m.exact.forward(&prompt, &mut cc, Logits::All).unwrap();
        let gpu_l = block_on(m.gpu.forward(&prompt, &mut gc, Logits::All)).unwrap();
        compare(&format!("SmolLM2 (KV cache f16 {half}): GPU vs CPU, all positions"), &gpu_l, &cpu_l, v, tol_cpu);
        // Decode over the cache the prompt left: logits of 4 more tokens, vs the CPU.
        let (mut cd, mut gd) = (vec![], vec![]);
        for &t in &tokens(24, v)[20..] {
            cd.extend(m.exact.forward(&[t], &mut cc, Logits::Last).unwrap());
            gd.extend(block_on(m.gpu.forward(&[t], &mut gc, Logits::Last)).unwrap());
        }
        compare(&format!("SmolLM2 (KV cache f16 {half}): GPU vs CPU, decode"), &gd, &cd, v, tol_cpu);
    }
}

/// `n` greedy tokens through `Engine::generate` on the GPU (argmax on the device, only
/// ids read back) against (a) the CPU engine with f32 weights — the same arithmetic,
/// must be identical — and (b) the shipped quantized CPU engine, whose 8-bit
/// activations may flip a near-tie: if they part, the quantized CPU's own margin
/// between the two candidates at that step must be within its quantization noise
/// (its max |logit diff| against the f32-weight engine at that step).
fn smollm2_greedy_gpu_vs_cpu(n: usize) {
    let path = default_model();
    let engine = precis::Engine::load_file(&path, &Overrides::default()).unwrap();
    let ctx = block_on(GpuContext::new(&Requirements::default())).expect("a GPU adapter");
    let mut gpu_engine = block_on(precis::Engine::load_gpu(ctx, &mut std::fs::File::open(&path).unwrap(), &path, &Overrides::default())).unwrap();
    assert!(gpu_engine.cpu().is_none(), "a GPU engine keeps no CPU weights");
    // The f32-weight CPU engine is matched exactly only with an f32 cache.
    if let precis::Backend::Gpu(g) = &mut gpu_engine.backend {
        g.kv_half = false;
    }
    let prompt = engine.chat_tokens(&[precis::text::chat::Message::new("user", "In two sentences, what is a sliding-window attention cache?")]).unwrap();
    let opts = precis::GenerateOptions { max_tokens: n, ignore_eos: true, ..Default::default() };
    let gpu = gpu_engine.generate(&prompt, &opts, &mut |_| true).unwrap().tokens;
    let cpu = engine.generate(&prompt, &opts, &mut |_| true).unwrap().tokens;
    assert_eq!(gpu.len(), n);

    let bytes = std::fs::read(&path).unwrap();
    let g = Gguf::parse(&bytes, bytes.len() as u64).unwrap();
    let spec = ModelSpec::resolve(&g, &engine.hp, &path).unwrap();
    let exact = Model::load_with(&mut &bytes[..], &path, &spec, engine.hp.clone(), precis::cpu::model::Weights::Dequantized).unwrap();
    let mut cache = exact.new_cache(256);
    let mut logits = exact.prefill(&prompt, &mut cache, 512).unwrap();
    let mut exact_tok = vec![];
    let mut exact_logits = vec![];
    while exact_tok.len() < n {
        let t = precis::model::sampling::argmax(&logits);
        exact_tok.push(t);
        exact_logits.push(logits.clone());
        logits = exact.forward(&[t], &mut cache, Logits::Last).unwrap();
    }
    assert_eq!(gpu, exact_tok, "GPU greedy vs CPU with f32 weights");

    match cpu.iter().zip(&gpu).position(|(a, b)| a != b) {
        None => eprintln!("SmolLM2 greedy: GPU = quantized CPU for all {n} tokens"),
        Some(i) => {
            let mut qc = engine.cpu().unwrap().new_cache(256);
            let mut ctx = prompt.clone();
            ctx.extend(&gpu[..i]);
            let ql = engine.cpu().unwrap().prefill(&ctx, &mut qc, 512).unwrap();
            let margin = ql[cpu[i] as usize] - ql[gpu[i] as usize];
            let noise = ql.iter().zip(&exact_logits[i]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            eprintln!("SmolLM2 greedy: quantized CPU parts from GPU at step {i}: margin {margin:.4}, quantization noise {noise:.4}");
            assert!(margin <= noise, "step {i}: quantized CPU prefers {} over the GPU's {} by {margin}, more than its quantization noise {noise}", cpu[i], gpu[i]);
        }
    }
}

/// The first 16 tokens: the whole path (device argmax, the f32-weight CPU twin, the
/// quantized CPU's near-tie rule) in about a minute on lavapipe.
#[test]
fn smollm2_greedy_16_tokens_gpu_vs_cpu() {
    smollm2_greedy_gpu_vs_cpu(16);
}

/// 64 tokens: four minutes of lavapipe on two cores (2026-12-07), most of `make test`'s
/// cargo phase, so only in `make test-models`.
#[test]
#[ignore = "minutes on lavapipe: make test-models"]
fn smollm2_greedy_64_tokens_gpu_vs_cpu() {
    smollm2_greedy_gpu_vs_cpu(64);
}

/// Decode after a 300-token prompt, where the GPU splits the keys over workgroups
/// (split-K attention), against the CPU with f32 weights; each KV cache type. On
/// tiny-smollm2 (SmolLM2's head_dim 64 and vocabulary, 2 random layers): the kernels'
/// arithmetic does not depend on the weights, and lavapipe takes minutes per long
/// SmolLM2 prefill.
#[test]
fn tiny_smollm2_split_k_decode_after_long_prompt() {
    let m = load(&fixture("tiny-smollm2.gguf"));
    let v = m.cpu.hp.n_vocab;
    let n = 300;
    assert!(precis::gpu::kernels::attention_splits(n + 1) > 1, "{n} keys do not reach split-K");
    let prompt = tokens(n, v);
    for (half, tol_cpu, _) in kv_types(&m.gpu) {
        let mut cc = m.exact.new_cache(n + 8);
        let mut gc = m.gpu.new_cache_with(n + 8, half).unwrap();
        m.exact.prefill(&prompt, &mut cc, 512).unwrap();
        block_on(m.gpu.prefill(&prompt, &mut gc, 512)).unwrap();
        let (mut cd, mut gd) = (vec![], vec![]);
        for &t in &tokens(n + 3, v)[n..] {
            cd.extend(m.exact.forward(&[t], &mut cc, Logits::Last).unwrap());
            gd.extend(block_on(m.gpu.forward(&[t], &mut gc, Logits::Last)).unwrap());
        }
        compare(&format!("tiny-smollm2 (KV cache f16 {half}): split-K decode after {n} tokens vs CPU"), &gd, &cd, v, tol_cpu);
        eprintln!("tiny-smollm2 decode step: {:?}", m.gpu.last_step());
    }
}

/// Seeded sampling (temperature, top-k, top-p) through `Engine::generate` on the GPU,
/// where only token ids come back, against the same GPU model with its logits read
/// back and drawn from by the plain-Rust twin at the same steps; the same seed
/// repeats, another seed gives another text. On tiny-smollm2: the sampler sees only
/// logits.
#[test]
fn tiny_smollm2_gpu_sampling_matches_twin_on_read_back_logits() {
    use precis::gpu::sample::{sample_twin, SampleParams};
    let path = fixture("tiny-smollm2.gguf");
    let ctx = block_on(GpuContext::new(&Requirements::default())).expect("a GPU adapter");
    let e = block_on(precis::Engine::load_gpu(ctx, &mut std::fs::File::open(&path).unwrap(), &path, &Overrides::default())).unwrap();
    let prompt = e.chat_tokens(&[precis::text::chat::Message::new("user", "Write one sentence about rivers.")]).unwrap();
    let n = 12;
    let sampler = precis::model::sampling::SamplerConfig { temperature: 0.9, top_k: 40, top_p: 0.95, seed: 42, ..Default::default() };
    let opts = precis::GenerateOptions { max_tokens: n, ignore_eos: true, sampler: sampler.clone(), ..Default::default() };
    let got = e.generate(&prompt, &opts, &mut |_| true).unwrap().tokens;
    assert_eq!(got.len(), n);

    let g = e.gpu().unwrap();
    let sp = SampleParams::from_config(&sampler).unwrap();
    let mut cache = g.new_cache(prompt.len() + n + 1).unwrap();
    let mut logits = block_on(g.prefill(&prompt, &mut cache, opts.chunk)).unwrap();
    let mut want = vec![];
    for step in 0..n as u32 {
        let t = sample_twin(&logits, &sp, step);
        want.push(t);
        logits = block_on(g.forward(&[t], &mut cache, Logits::Last)).unwrap();
    }
    assert_eq!(got, want, "GPU-sampled tokens vs the twin over read-back logits");
    assert_eq!(e.generate(&prompt, &opts, &mut |_| true).unwrap().tokens, got, "the same seed repeats");
    let other = precis::GenerateOptions { sampler: precis::model::sampling::SamplerConfig { seed: 43, ..sampler }, ..opts };
    assert_ne!(e.generate(&prompt, &other, &mut |_| true).unwrap().tokens, got, "seed 43 drew the same 12 tokens as seed 42");
}

/// A prefill far over one submission's budget is cut into submissions of at most the
/// budget (natively each is waited for in turn, so no wait covers the whole prompt),
/// with the logits of one unbounded submission; a decode step stays one submission.
#[test]
fn long_prefill_is_cut_into_bounded_submissions() {
    let m = load(&fixture("tiny-smollm2.gguf"));
    let v = m.cpu.hp.n_vocab;
    let n = 400;
    let prompt = tokens(n, v);
    let subs = &m.gpu.ctx.submits;

    subs.fix(precis::gpu::submit::MAX_UNITS);
    // f32 caches: with f16 ones a chunk would read its predecessors' keys rounded.
    let mut one = m.gpu.new_cache_with(n + 2, false).unwrap();
    subs.take_stats();
    let want = block_on(m.gpu.prefill(&prompt, &mut one, 512)).unwrap();
    let whole = subs.take_stats();
    assert_eq!(whole.submits, 1, "unbounded: one submission for the whole prompt: {whole:?}");

    // A budget a twentieth of the prompt's work.
    let budget = whole.units / 20;
    subs.fix(budget);
    let chunk = m.gpu.prefill_chunk(512);
    assert!(chunk < n, "the budget {budget} caps a chunk at {chunk} tokens");
    let mut cut = m.gpu.new_cache_with(n + 2, false).unwrap();
    let got = block_on(m.gpu.prefill(&prompt, &mut cut, 512)).unwrap();
    let st = subs.take_stats();
    eprintln!("{n}-token prefill: {whole:?} unbounded; budget {budget} units, chunks of {chunk}: {st:?}");
    assert!(st.max_units <= budget, "a submission held {} units, over the budget {budget}", st.max_units);
    // Greedy packing of dispatches no larger than the budget: at least total/budget
    // submissions, and every two consecutive ones hold more than the budget.
    let lower = st.units.div_ceil(budget) as usize;
    assert!(st.submits >= lower && st.submits <= 2 * lower + 2, "{} submissions for {} units at {budget} per submission", st.submits, st.units);
    assert!(st.submits >= 20, "{} submissions", st.submits);
    compare("prefill cut into bounded submissions vs one submission", &got, &want, v, TOL_SAME_MATH);

    block_on(m.gpu.forward(&[7], &mut cut, Logits::Last)).unwrap();
    assert_eq!(m.gpu.last_step().submits, 1, "a decode step is one submission");
}

#[test]
fn missing_limit_is_a_clear_error() {
    let err = block_on(GpuContext::new(&Requirements { min_binding_bytes: u64::MAX / 2 })).err().expect("no adapter binds 2^63 bytes");
    match &err {
        GpuError::MissingLimit { name, need, have } => {
            assert_eq!(*name, "maxStorageBufferBindingSize");
            assert_eq!(*need, u64::MAX / 2);
            assert!(have < need);
        }
        e => panic!("expected MissingLimit, got {e}"),
    }
    assert!(err.to_string().contains("maxStorageBufferBindingSize must be at least"), "{err}");
}

/// A byte source that records the largest single read: the GPU load must stream
/// (header, then slices), never ask for a whole tensor of a big model at once.
struct Counting<'a> {
    bytes: &'a [u8],
    largest: u64,
    total: u64,
}

impl precis::format::source::ByteSource for Counting<'_> {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }
    fn read_range(&mut self, r: std::ops::Range<u64>) -> std::io::Result<Vec<u8>> {
        self.largest = self.largest.max(r.end - r.start);
        self.total += r.end - r.start;
        (&self.bytes[..]).read_range(r)
    }
}

/// Loading for the GPU reads every weight byte once, in slices no larger than the
/// upload staging area (so host memory is bounded whatever the model's size).
#[test]
fn gpu_load_streams_in_bounded_slices() {
    let path = default_model();
    let bytes = std::fs::read(&path).unwrap();
    let mut src = Counting { bytes: &bytes, largest: 0, total: 0 };
    let ctx = block_on(GpuContext::new(&Requirements::default())).expect("a GPU adapter");
    let e = block_on(precis::Engine::load_gpu(ctx, &mut src, &path, &Overrides::default())).unwrap();
    let weights = e.gpu().unwrap().weight_bytes;
    eprintln!("GPU load: {} reads bytes total for {weights} weight bytes, largest read {} KiB", src.total, src.largest >> 10);
    assert!(src.largest <= precis::gpu::weights::STAGING_BYTES.max(4 << 20), "largest read {} bytes exceeds the staging slice", src.largest);
    assert!(src.total < weights + (8 << 20), "read {} bytes for {weights} bytes of weights: something was read twice", src.total);
}

fn gpu_engine(name: &str) -> precis::Engine {
    let path = fixture(&format!("{name}.gguf"));
    let ctx = block_on(GpuContext::new(&Requirements::default())).expect("a GPU adapter");
    block_on(precis::Engine::load_gpu(ctx, &mut std::fs::File::open(&path).unwrap(), &path, &Overrides::default())).unwrap()
}

/// The prompt-prefix cache on the GPU (the kept KV rows copied buffer to buffer into
/// the next generation's cache): bit for bit a cold run, past the window too; a Stop
/// between prefill chunks ends the run.
#[test]
fn gpu_prefix_cache_equals_a_cold_run_bit_for_bit() {
    common::check_prefix_reuse("GPU tiny-smollm2", &|| gpu_engine("tiny-smollm2"), 23, 6, 8);
    common::check_prefix_reuse("GPU tiny-mistral (W = 8)", &|| gpu_engine("tiny-mistral"), 20, 9, 5);
    common::check_prefix_reuse("GPU tiny-gemma3 (mixed cache, W = 8)", &|| gpu_engine("tiny-gemma3"), 20, 9, 5);
    common::check_stop_in_prefill("GPU, between chunks", &gpu_engine("tiny-smollm2"), false);
}

/// Dispatches a GPU decode step records for `g` (every layer's keys in one split:
/// under 257 visible keys), counted from the model's structure the way the step list
/// in src/gpu/model.rs `run` fuses them (issue 18), so that a fusion undone, or a
/// dispatch added, shows here. Per layer:
///   Q/K/V (the pre-attention RMSNorm fused in): one per part of the stack, or of each
///     separate matrix
///   + a bias add per bias (qwen2) + an in-place RMSNorm per Q/K norm (qwen3, gemma3)
///   + 1 RoPE of Q and K (with mistral3's query temperature on Q; none on a layer
///     without rope: smollm3's NoPE layers) + 1 attention + 1 KV store
///   + the output projection's parts (the residual add fused in), + 1 (rms_norm_add)
///     with a post-attention norm (gemma3)
///   + dense FFN: 1 fused gate/up + SwiGLU (pre-FFN RMSNorm fused in) where the stack
///     is one part and the activation SiLU, else each of gate and up's parts + 1
///     activation; then down's parts (residual fused in) + 1 with a post-FFN norm
///   + MoE: 1 RMSNorm + router parts + 1 route + gate/up/down parts + 1 SwiGLU +
///     1 combine + 1 residual add (or rms_norm_add).
///
/// Plus the embedding's parts (+ 1 scale for gemma3) and the vocabulary head's parts
/// (final RMSNorm fused in). A llama-family layer with Q/K/V stacked: 7 dispatches
/// (12 before the fusions); with Q/K/V apart: 9 (14).
fn decode_dispatches(g: &GpuModel) -> (Vec<usize>, usize) {
    use precis::gpu::model::{GpuFfn, Projections};
    use precis::gpu::weights::GpuMatrix;
    let parts = |m: &GpuMatrix| m.parts.len();
    // Parts of `m` holding rows `r` (a stacked matrix's slice).
    let parts_in = |m: &GpuMatrix, r: std::ops::Range<usize>| m.parts.iter().filter(|p| p.row0 < r.end && r.start < p.row0 + p.rows).count();
    let mut per_layer = vec![];
    for (l, ly) in g.layers.iter().enumerate() {
        let mut n = match &ly.qkv {
            Projections::Stacked(_, m) => parts(m),
            Projections::Separate(ms) => ms.iter().map(parts).sum(),
        };
        n += ly.qkv_bias.iter().flatten().count() + ly.qk_norm.iter().flatten().count();
        n += g.hp.layer_rotates(l) as usize + 2 + parts(&ly.o) + ly.post_norm[0].is_some() as usize;
        n += match &ly.ffn {
            GpuFfn::Dense { gate_up, down } => {
                let silu = g.hp.family.act == precis::format::family::Activation::Silu;
                let up = match gate_up {
                    Projections::Stacked(_, m) if silu && m.parts.len() == 1 => 1,
                    Projections::Stacked([rg, ru], m) => parts_in(m, 0..*rg) + parts_in(m, *rg..rg + ru) + 1,
                    Projections::Separate(ms) => ms.iter().map(parts).sum::<usize>() + 1,
                };
                up + parts(down) + ly.post_norm[1].is_some() as usize
            }
            GpuFfn::Moe { router, gate, up, down } => 1 + parts(router) + 1 + parts(gate) + parts(up) + 1 + parts(down) + 1 + 1,
        };
        per_layer.push(n);
    }
    let head = g.output.as_ref().unwrap_or(&g.embd);
    let total = parts(&g.embd) + g.hp.family.embd_scale as usize + per_layer.iter().sum::<usize>() + parts(head);
    (per_layer, total)
}

/// The dispatches, compute passes and copies of one decode step, asserted (issue 18):
/// exact numbers for tiny-smollm2 (2 layers, Q/K/V apart: 20 dispatches, 9 a layer;
/// 31 and 14 before the fusions), tiny-mistral3 (11 a layer: the query temperature in
/// the RoPE dispatch) and tiny-smollm3 (11, 11, 11 and 10 on its NoPE layer), and the
/// per-layer count above for every fixture family; a decode step is
/// one compute pass with no buffer copy (the greedy path adds the argmax and its
/// 4-byte copy, after the pass).
#[test]
fn decode_step_dispatch_and_pass_counts() {
    for name in ["tiny-smollm2", "tiny-mistral", "tiny-qwen2", "tiny-qwen3", "tiny-gemma3", "tiny-llama3", "tiny-phi3", "tiny-mixtral", "tiny-mixtral-legacy", "tiny-mistral3", "tiny-smollm3"] {
        let path = fixture(&format!("{name}.gguf"));
        let bytes = std::fs::read(&path).unwrap();
        let gg = Gguf::parse(&bytes, bytes.len() as u64).unwrap();
        let hp = Hparams::from_gguf(&gg, &Overrides::default()).unwrap();
        let spec = ModelSpec::resolve(&gg, &hp, &path).unwrap();
        let ctx = block_on(GpuContext::new(&Requirements::default())).expect("a GPU adapter");
        let g = block_on(GpuModel::load(ctx, &mut &bytes[..], &path, &spec, hp)).unwrap();
        let (per_layer, want) = decode_dispatches(&g);
        let mut cache = g.new_cache(16).unwrap();
        block_on(g.prefill(&[1, 2, 3], &mut cache, 512)).unwrap();
        block_on(g.forward(&[4], &mut cache, Logits::Last)).unwrap();
        let got = g.last_step();
        eprintln!("{name}: decode step {got:?}; per layer {per_layer:?}");
        assert_eq!(got.dispatches, want, "{name}: dispatches per decode step (per layer {per_layer:?})");
        assert_eq!((got.passes, got.copies, got.submits), (1, 0, 1), "{name}: one compute pass, no copy, one submit");
        block_on(g.forward_greedy(&[5], &mut cache)).unwrap();
        let greedy = g.last_step();
        assert_eq!((greedy.dispatches, greedy.passes, greedy.copies), (want + 1, 1, 1), "{name}: greedy decode adds the argmax and the id's copy");
        if name == "tiny-smollm2" {
            assert_eq!((per_layer.as_slice(), got.dispatches), (&[9, 9][..], 20), "tiny-smollm2: Q/K/V apart, 9 a layer");
        }
        if name == "tiny-phi3" {
            assert!(per_layer.iter().all(|&n| n == 7), "tiny-phi3 (Q/K/V and gate/up stacked): 7 a layer, {per_layer:?}");
        }
        if name == "tiny-mistral3" {
            // The query temperature rides in the one RoPE dispatch: no dispatch more than a llama layer.
            assert_eq!((per_layer.as_slice(), got.dispatches), (&[11, 11][..], 24), "tiny-mistral3: rope_qk tempers Q in the same dispatch");
        }
        if name == "tiny-smollm3" {
            assert_eq!((per_layer.as_slice(), got.dispatches), (&[11, 11, 11, 10][..], 45), "tiny-smollm3: layer 3 (NoPE) skips the RoPE dispatch");
        }
    }
}
