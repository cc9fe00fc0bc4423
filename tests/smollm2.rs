//! The default model, SmolLM2-135M-Instruct (Q4_1): fast path vs slow twin, decode vs
//! prefill, and llama.cpp's tokens and greedy output (fixtures from node-llama-cpp).

mod common;
use common::{default_model, fixture};
use precis::text::chat::Message;
use precis::format::gguf::Gguf;
use precis::cpu::model::{Model, Weights};
use precis::model::Logits;
use precis::cpu::reference::RefModel;
use precis::model::spec::ModelSpec;
use precis::{Engine, GenerateOptions, Hparams, Overrides};
use std::sync::OnceLock;

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| Engine::load_file(&default_model(), &Overrides::default()).expect("run `make model` first"))
}

fn json(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

/// Exact weights: the fast path's attention/cache/norm code vs the f64 twin.
const TOL_EXACT_MAX: f32 = 1e-3;
/// Quantized weights: ggml-style 8-bit activations add noise over 30 layers
/// (measured: mean |diff| 0.03-0.16 of the logits' spread).
const TOL_QUANT_MEAN: f32 = 0.25;
const MIN_ARGMAX_AGREEMENT: f32 = 0.8;
const TOL_SAME_MATH: f32 = 2e-4;

/// (max |a-b|, mean |a-b|) relative to `b`'s standard deviation, and the worst index.
fn rel_err(a: &[f32], b: &[f32]) -> (f32, f32, usize) {
    let mean = b.iter().sum::<f32>() / b.len() as f32;
    let std = (b.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / b.len() as f32).sqrt();
    let (mx, i) = a.iter().zip(b).enumerate().map(|(i, (x, y))| ((x - y).abs() / std, i)).fold((0.0, 0), |m, c| if c.0 > m.0 { c } else { m });
    let mad = a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32 / std;
    (mx, mad, i)
}

#[test]
fn fast_path_matches_slow_twin() {
    let e = engine();
    let tokens = e.tokenizer.encode("The rolling buffer cache keeps the last W keys.", false, false);
    let bytes = std::fs::read(default_model()).unwrap();
    let g = Gguf::parse(&bytes, bytes.len() as u64).unwrap();
    let hp = Hparams::from_gguf(&g, &Overrides::default()).unwrap();
    let spec = ModelSpec::resolve(&g, &hp, "smollm2").unwrap();
    let slow = RefModel::load(&mut &bytes[..], "smollm2", &spec, hp.clone()).unwrap().forward_all(&tokens);
    let v = hp.n_vocab;

    let exact = Model::load_with(&mut &bytes[..], "smollm2", &spec, hp, Weights::Dequantized).unwrap();
    let got = exact.forward(&tokens, &mut exact.new_cache(64), Logits::All).unwrap();
    let (mx, _, i) = rel_err(&got, &slow);
    assert!(mx < TOL_EXACT_MAX, "exact weights: first worst index {i} (position {}, token {}): |diff|/std {mx}", i / v, i % v);

    let fast = e.cpu().unwrap().forward(&tokens, &mut e.cpu().unwrap().new_cache(64), Logits::All).unwrap();
    let mut agree = 0;
    for p in 0..tokens.len() {
        let (a, b) = (&fast[p * v..][..v], &slow[p * v..][..v]);
        let (_, mad, _) = rel_err(a, b);
        assert!(mad < TOL_QUANT_MEAN, "quantized: position {p}: mean |diff|/std {mad}");
        agree += (precis::model::sampling::argmax(a) == precis::model::sampling::argmax(b)) as usize;
    }
    assert!(agree as f32 >= MIN_ARGMAX_AGREEMENT * tokens.len() as f32, "argmax agrees at {agree}/{} positions", tokens.len());
}

#[test]
fn decode_step_by_step_equals_prefill() {
    let e = engine();
    let tokens = e.tokenizer.encode("Sliding windows, rolling buffers and chunked prefill.", false, false);
    let mut c1 = e.cpu().unwrap().new_cache(64);
    let full = e.cpu().unwrap().forward(&tokens, &mut c1, Logits::All).unwrap();
    let mut c2 = e.cpu().unwrap().new_cache(64);
    let steps: Vec<f32> = tokens.iter().flat_map(|t| e.cpu().unwrap().forward(&[*t], &mut c2, Logits::All).unwrap()).collect();
    let (d, _, i) = rel_err(&steps, &full);
    assert!(d < TOL_SAME_MATH, "first worst index {i}: |diff|/std {d}");
}

/// Teacher forcing: llama.cpp's greedy tokens fed through our model. Where the two
/// engines' 8-bit activation rounding differs, a near-tie may order differently, so
/// llama.cpp's pick must be our argmax or within this many logits of it (measured:
/// 93/96 exact on the AVX-512 VNNI kernels, the others at most 0.063 below; 91/96 and
/// 0.29 on the AVX2 ones; the logits' spread is ~3).
const NEAR_TIE: f32 = 0.5;

#[test]
fn llama_cpp_greedy_choices_are_ours_under_teacher_forcing() {
    let e = engine();
    let fx = json("greedy-smollm2.json");
    let prompt = ids(&fx["prompt_ids"]);
    let want = ids(&fx["generated_ids"]);
    let all: Vec<u32> = prompt.iter().chain(&want[..want.len() - 1]).copied().collect();
    let logits = e.cpu().unwrap().forward(&all, &mut e.cpu().unwrap().new_cache(1024), Logits::All).unwrap();
    let v = e.hp.n_vocab;
    let (mut exact, mut worst) = (0, 0f32);
    for (i, &tok) in want.iter().enumerate() {
        let row = &logits[(prompt.len() - 1 + i) * v..][..v];
        let top = precis::model::sampling::argmax(row);
        let gap = row[top as usize] - row[tok as usize];
        assert!(gap <= NEAR_TIE, "position {i}: llama.cpp chose {tok} at {gap} below our argmax {top}");
        exact += (top == tok) as usize;
        worst = worst.max(gap);
    }
    eprintln!("teacher-forced: our argmax = llama.cpp's at {exact}/{} positions; largest gap {worst}", want.len());
    assert!(exact * 10 >= want.len() * 9, "argmax agrees at only {exact}/{}", want.len());
}

#[test]
fn greedy_matches_llama_cpp() {
    let e = engine();
    let fx = json("greedy-smollm2.json");
    let rendered = e.template.render(&[Message::new("user", fx["user"].as_str().unwrap())], true).unwrap();
    assert_eq!(rendered, fx["prompt"].as_str().unwrap(), "chat template renders as llama.cpp's prompt");
    let prompt = e.chat_tokens(&[Message::new("user", fx["user"].as_str().unwrap())]).unwrap();
    assert_eq!(prompt, ids(&fx["prompt_ids"]));
    let want = ids(&fx["generated_ids"]);
    let opts = GenerateOptions { max_tokens: want.len(), ignore_eos: true, ..Default::default() };
    let g = e.generate(&prompt, &opts, &mut |_| true).unwrap();
    let same = g.tokens.iter().zip(&want).take_while(|(a, b)| a == b).count();
    assert!(want.len() >= 64, "fixture has {} tokens", want.len());
    // Free-running, the first near-tie (token 16: llama.cpp's pick is 0.19 logits
    // below ours, see the teacher-forced test) sends the two texts apart.
    assert!(same >= 16, "greedy tokens agree for only {same} tokens: got {:?}\nwant {:?}", g.tokens, want);
    eprintln!("greedy agreement with llama.cpp: {same} of {} tokens", want.len());
}

#[test]
fn greedy_matches_llama_cpp_on_the_short_prompt_past_end_of_turn() {
    // The fixture's second prompt: llama.cpp kept generating past <|im_end|> (into a
    // new chat turn), giving 64 greedy tokens to compare.
    let e = engine();
    let fx = json("greedy-smollm2.json");
    let var = &fx["variants"][0];
    let prompt = ids(&var["prompt_ids"]);
    let want = ids(&var["generated_ids"]);
    let opts = GenerateOptions { max_tokens: want.len(), ignore_eos: true, ..Default::default() };
    let g = e.generate(&prompt, &opts, &mut |_| true).unwrap();
    let same = g.tokens.iter().zip(&want).take_while(|(a, b)| a == b).count();
    eprintln!("short prompt: greedy agreement with llama.cpp {same} of {} tokens", want.len());
    assert!(same >= 32, "greedy tokens agree for only {same}: got {:?}\nwant {:?}", g.tokens, want);
}
