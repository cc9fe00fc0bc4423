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
