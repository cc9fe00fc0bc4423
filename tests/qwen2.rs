//! Qwen2.5-Coder-0.5B-Instruct (Q4_K_M: `qwen2`, Q/K/V biases, NEOX rope, a tied Q8_0
//! head, Q5_0/Q4_K/Q6_K layers) against llama.cpp (tests/fixtures/greedy-qwen2.json,
//! from tests/fixtures/llamacpp/gen.mjs --only qwen2): the chat prompt and its ids,
//! teacher-forced argmax, and free-running greedy tokens. The model is fetched on demand
//! (`make model-qwen2`); every test skips, saying so, without it. The prompt check runs
//! in `make test` where the model is present (seconds); the generation checks take
//! minutes on two cores and are `#[ignore]`d: `make test-models` runs them.

mod common;
use precis::text::chat::Message;
use precis::{Engine, GenerateOptions, Overrides};
use std::sync::OnceLock;

fn engine() -> Option<&'static Engine> {
    static E: OnceLock<Option<Engine>> = OnceLock::new();
    E.get_or_init(|| common::qwen2_model().map(|p| Engine::load_file(&p, &Overrides::default()).unwrap())).as_ref()
}

fn fixture() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(common::fixture("greedy-qwen2.json")).unwrap()).unwrap()
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

/// The fixture's three prompts: (name, the case).
fn cases(fx: &serde_json::Value) -> Vec<(String, serde_json::Value)> {
    let mut v = vec![("long".to_string(), fx.clone())];
    v.extend(fx["variants"].as_array().unwrap().iter().map(|c| (c["name"].as_str().unwrap().to_string(), c.clone())));
    v
}

#[test]
fn chat_template_and_prompt_ids_match_llama_cpp() {
    let Some(e) = engine() else { return };
    assert_eq!(e.hp.arch, "qwen2");
    for (name, c) in cases(&fixture()) {
        let user = [Message::new("user", c["user"].as_str().unwrap())];
        // The GGUF's ChatML template inserts Qwen's default system turn, as llama.cpp's rendering did.
        assert_eq!(e.template.render(&user, true).unwrap(), c["prompt"].as_str().unwrap(), "{name}: rendered prompt");
        assert_eq!(e.chat_tokens(&user).unwrap(), ids(&c["prompt_ids"]), "{name}: prompt ids");
    }
}

/// Where the two engines round activations differently (llama.cpp: Q8_K/Q8_0 partners
/// per 256/32 values and its own kernels; Precis: 8-bit blocks of 32), a near-tie may
/// order differently: llama.cpp's pick must be our argmax or within this many logits
/// of it (the logits' spread here is ~3).
const NEAR_TIE: f32 = 0.5;
/// Teacher-forced positions where llama.cpp's pick is exactly our argmax (issue 15: ≥ 97%).
const MIN_EXACT: f32 = 0.97;

#[test]
#[ignore = "minutes on two cores: make test-models"]
fn llama_cpp_greedy_choices_are_ours_under_teacher_forcing() {
    let Some(e) = engine() else { return };
    let m = e.cpu().unwrap();
    let v = e.hp.n_vocab;
    let (mut exact, mut total, mut ties) = (0, 0, vec![]);
    for (name, c) in cases(&fixture()) {
        let prompt = ids(&c["prompt_ids"]);
        let want = ids(&c["generated_ids"]);
        let all: Vec<u32> = prompt.iter().chain(&want[..want.len() - 1]).copied().collect();
        let logits = m.forward(&all, &mut m.new_cache(all.len()), precis::model::Logits::All).unwrap();
        for (i, &tok) in want.iter().enumerate() {
            let row = &logits[(prompt.len() - 1 + i) * v..][..v];
            let top = precis::model::sampling::argmax(row);
            let gap = row[top as usize] - row[tok as usize];
            assert!(gap <= NEAR_TIE, "{name}: position {i}: llama.cpp chose {tok}, {gap} below our argmax {top}");
            if top == tok {
                exact += 1;
            } else {
                ties.push(format!("{name} #{i}: llama.cpp {tok}, ours {top}, gap {gap:.3}"));
            }
            total += 1;
        }
    }
    eprintln!("teacher-forced: our argmax = llama.cpp's at {exact}/{total} positions; near-ties: {ties:?}");
    assert!(exact as f32 >= MIN_EXACT * total as f32, "argmax agrees at only {exact}/{total}: {ties:?}");
}

/// Free-running greedy tokens equal llama.cpp's for at least this many tokens on every
/// prompt (issue 15: ≥ 32), or the whole fixture where it is shorter.
const MIN_GREEDY_SAME: usize = 32;

#[test]
#[ignore = "minutes on two cores: make test-models"]
fn greedy_matches_llama_cpp() {
    let Some(e) = engine() else { return };
    for (name, c) in cases(&fixture()) {
        let prompt = ids(&c["prompt_ids"]);
        let want = ids(&c["generated_ids"]);
        let opts = GenerateOptions { max_tokens: want.len(), ignore_eos: true, ..Default::default() };
        let g = e.generate(&prompt, &opts, &mut |_| true).unwrap();
        let same = g.tokens.iter().zip(&want).take_while(|(a, b)| a == b).count();
        eprintln!("{name}: greedy agreement with llama.cpp {same} of {} tokens: {:?}", want.len(), e.tokenizer.decode(&g.tokens));
        assert!(same >= MIN_GREEDY_SAME.min(want.len()), "{name}: greedy tokens agree for only {same}: got {:?}\nwant {:?}", g.tokens, want);
    }
}

/// GPU against the CPU engine with f32 weights (`Weights::Dequantized`): the same
/// arithmetic up to f32 summation order (tests/gpu_model.rs's TOL_GPU_VS_CPU).
#[cfg(feature = "gpu")]
const TOL_GPU_VS_CPU: f32 = 2e-3;
/// GPU greedy tokens (decode on the device, f32 KV cache) equal to llama.cpp's: on the
/// long prompt, whose first 24 llama.cpp choices have no near-tie (its smallest top-2
/// margin there is 0.53, checked below). On the code prompt llama.cpp's token 12 wins by
/// 0.002, and the GPU's f32 weights resolve that tie the other way.
#[cfg(feature = "gpu")]
const MIN_GPU_GREEDY_SAME: usize = 24;

/// The GPU path on the real model (lavapipe where there is no GPU): the long prompt's
/// logits at every position against the CPU with f32 weights, then greedy decode on
/// the device against llama.cpp's tokens.
#[cfg(feature = "gpu")]
#[test]
#[ignore = "minutes on lavapipe: make test-models"]
fn gpu_logits_match_cpu_and_greedy_matches_llama_cpp() {
    use precis::cpu::model::{Model, Weights};
    use precis::format::gguf::Gguf;
    use precis::gpu::{block_on, GpuContext, GpuModel, Requirements};
    use precis::model::{spec::ModelSpec, Logits};
    let Some(path) = common::qwen2_model() else { return };
    let bytes = std::fs::read(&path).unwrap();
    let g = Gguf::parse(&bytes, bytes.len() as u64).unwrap();
    let hp = precis::Hparams::from_gguf(&g, &Overrides::default()).unwrap();
    let spec = ModelSpec::resolve(&g, &hp, &path).unwrap();
    let exact = Model::load_with(&mut &bytes[..], &path, &spec, hp.clone(), Weights::Dequantized).unwrap();
    let ctx = block_on(GpuContext::new(&Requirements::default())).expect("a GPU adapter is required (lavapipe in CI)");
    let gpu = block_on(GpuModel::load(ctx, &mut &bytes[..], &path, &spec, hp)).unwrap();
    let case = fixture();
    let prompt = ids(&case["prompt_ids"]);
    let v = exact.hp.n_vocab;

    let mut gc = gpu.new_cache_with(256, false).unwrap();
    let gl = block_on(gpu.forward(&prompt, &mut gc, Logits::All)).unwrap();
    let cl = exact.forward(&prompt, &mut exact.new_cache(256), Logits::All).unwrap();
    let mean = cl.iter().sum::<f32>() / cl.len() as f32;
    let std = (cl.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / cl.len() as f32).sqrt();
    let mut worst = 0f32;
    for (i, (a, b)) in gl.iter().zip(&cl).enumerate() {
        let d = (a - b).abs() / std;
        assert!(d <= TOL_GPU_VS_CPU, "GPU vs CPU (f32 weights): first bad index {i} (position {}, token {}): gpu {a}, cpu {b}, |diff|/std {d:.2e}", i / v, i % v);
        worst = worst.max(d);
    }
    eprintln!("qwen2 GPU vs CPU (f32 weights), {} positions: max |diff|/std {worst:.2e}", prompt.len());

    let want = ids(&case["generated_ids"]);
    for (i, top) in case["top5_logits"].as_array().unwrap()[..MIN_GPU_GREEDY_SAME].iter().enumerate() {
        let margin = top[0][1].as_f64().unwrap() - top[1][1].as_f64().unwrap();
        assert!(margin > NEAR_TIE as f64, "fixture position {i}: llama.cpp's top two are {margin} apart, a near-tie this check cannot hold");
    }
    let mut got = vec![precis::model::sampling::argmax(&gl[(prompt.len() - 1) * v..])];
    while got.len() < MIN_GPU_GREEDY_SAME {
        got.push(block_on(gpu.forward_greedy(&[*got.last().unwrap()], &mut gc)).unwrap());
    }
    assert_eq!(got[..], want[..MIN_GPU_GREEDY_SAME], "GPU greedy tokens vs llama.cpp's");
}
