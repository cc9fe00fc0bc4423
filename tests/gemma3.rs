//! Gemma 3 270M (base, Q4_K_M: `gemma3`, 18 layers of which 5, 11 and 17 attend to the
//! whole context and the others through a 512-token window with their own rope base)
//! against llama.cpp (tests/fixtures/llamacpp-gemma3.json, from
//! tests/fixtures/llamacpp/gen.mjs --only gemma3): llama.cpp's choice at every position of
//! a corpus transcript's first 768 tokens under teacher forcing — well past the window —
//! and free-running greedy continuations, one of them after a 600-token prompt. The model
//! is fetched on demand (`make model-gemma3`); every test skips, saying so, without it.
//! The prompt-ids and first-window checks run in `make test` where the model is present
//! (seconds); the long checks are `#[ignore]`d: `make test-models` runs them.

mod common;
use precis::model::Logits;
use precis::{Engine, GenerateOptions, Overrides};
use std::sync::OnceLock;

fn engine() -> Option<&'static Engine> {
    static E: OnceLock<Option<Engine>> = OnceLock::new();
    E.get_or_init(|| common::gemma3_model().map(|p| Engine::load_file(&p, &Overrides::default()).unwrap())).as_ref()
}

fn fixture() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(common::fixture("llamacpp-gemma3.json")).unwrap()).unwrap()
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

/// A position is a near-tie when llama.cpp's own top two logits are closer than this:
/// ~2.5x the engines' measured distance (the mean |diff| of llama.cpp's top-5 logits is
/// 0.18 before the window and 0.16 past it), and where llama.cpp's default f16 KV cache and
/// flash attention already move its own argmax (at 5 of the first 128 positions).
const NEAR_TIE_THEIRS: f32 = 0.4;
/// Wherever the engines part, llama.cpp's pick is at most this far below our argmax (the
/// widest measured: 0.70 at a position where llama.cpp's own margin is 0.02).
const MAX_GAP: f32 = 1.0;
/// Teacher-forced positions that are not near-ties where llama.cpp's pick is exactly our
/// argmax (issue 15: ≥ 97%).
const MIN_EXACT: f32 = 0.97;
/// Over every position, near-ties included: measured 727/768 (94.7%), 236/256 (92.2%)
/// past the window, every miss a near-tie; a floor that catches a regression, not the
/// issue's target.
const MIN_EXACT_ALL: f32 = 0.9;
/// Logits per forward call under teacher forcing: 64 rows of the 262144-token vocabulary
/// are 64 MiB, where all 768 at once would be 768 MiB.
const CHUNK: usize = 64;

/// Agreement over teacher-forced positions.
#[derive(Default)]
struct Agreement {
    exact: usize,
    total: usize,
    /// Positions that are not near-ties, and how many of them agree.
    clear: usize,
    clear_exact: usize,
    /// The positions where the engines part, named.
    misses: Vec<String>,
}

/// Positions `range` of the fixture's transcript under teacher forcing.
fn forced(e: &Engine, range: std::ops::Range<usize>) -> Agreement {
    let m = e.cpu().unwrap();
    let fx = fixture();
    let f = &fx["forced"];
    let toks = ids(&f["ids"]);
    let top5 = f["top5"].as_array().unwrap();
    let v = e.hp.n_vocab;
    let mut cache = m.new_cache(toks.len());
    let mut a = Agreement::default();
    let mut diffs = [(0f32, 0usize); 2];
    for (c, chunk) in toks[..range.end].chunks(CHUNK).enumerate() {
        let logits = m.forward(chunk, &mut cache, Logits::All).unwrap();
        for (i, row) in logits.chunks_exact(v).enumerate() {
            let p = c * CHUNK + i;
            if p < range.start {
                continue;
            }
            let theirs = top5[p][0][0].as_u64().unwrap() as u32;
            let margin = (top5[p][0][1].as_f64().unwrap() - top5[p][1][1].as_f64().unwrap()) as f32;
            let ours = precis::model::sampling::argmax(row);
            let gap = row[ours as usize] - row[theirs as usize];
            assert!(gap <= MAX_GAP, "position {p}: llama.cpp chose {theirs}, {gap} below our argmax {ours}");
            for e in top5[p].as_array().unwrap() {
                let d = (row[e[0].as_u64().unwrap() as usize] - e[1].as_f64().unwrap() as f32).abs();
                let bucket = &mut diffs[(p >= 512) as usize];
                bucket.0 += d;
                bucket.1 += 1;
            }
            let clear = margin >= NEAR_TIE_THEIRS;
            a.total += 1;
            a.clear += clear as usize;
            if ours == theirs {
                a.exact += 1;
                a.clear_exact += clear as usize;
            } else {
                a.misses.push(format!("#{p}: llama.cpp {theirs} (its top-2 margin {margin:.3}{}), ours {ours} (gap {gap:.3})", if clear { ", NOT a near-tie" } else { "" }));
            }
        }
    }
    let mean = |(s, n): (f32, usize)| s / n.max(1) as f32;
    eprintln!("llama.cpp's top-5 logits against ours, mean |diff|: {:.3} before position 512, {:.3} from it", mean(diffs[0]), mean(diffs[1]));
    a
}

fn check(a: &Agreement, what: &str) {
    eprintln!(
        "gemma3 {what}: our argmax = llama.cpp's at {}/{} positions ({:.1}%), at {}/{} that are not near-ties; where they part: {:?}",
        a.exact, a.total, 100.0 * a.exact as f32 / a.total as f32, a.clear_exact, a.clear, a.misses
    );
    assert!(a.clear_exact as f32 >= MIN_EXACT * a.clear as f32, "{what}: argmax agrees at only {}/{} clear positions: {:?}", a.clear_exact, a.clear, a.misses);
    assert!(a.exact as f32 >= MIN_EXACT_ALL * a.total as f32, "{what}: argmax agrees at only {}/{} positions: {:?}", a.exact, a.total, a.misses);
}

#[test]
fn the_model_is_gemma3_with_local_and_global_layers() {
    let Some(e) = engine() else { return };
    let hp = &e.hp;
    assert_eq!((hp.arch.as_str(), hp.n_layer, hp.sliding_window), ("gemma3", 18, Some(512)));
    assert_eq!((0..hp.n_layer).filter(|&l| hp.is_global(l)).collect::<Vec<_>>(), [5, 11, 17]);
    assert_eq!((hp.rope_base, hp.rope_base_local), (1_000_000.0, 10_000.0));
    let cache = e.cpu().unwrap().new_cache(4096);
    assert!((0..hp.n_layer).all(|l| cache.layers[l].capacity == if hp.is_global(l) { 4096 } else { 512 }));
}

/// The transcript and prompts tokenize to llama.cpp's ids (BOS first), and inside the
/// first window our argmax is llama.cpp's pick at ≥ 97% of 128 positions that are not
/// near-ties (seconds).
#[test]
fn prompt_ids_and_the_first_positions_match_llama_cpp() {
    let Some(e) = engine() else { return };
    let fx = fixture();
    let f = &fx["forced"];
    let text = std::fs::read_to_string(common::shared(&format!("corpus/transcripts/{}", f["file"].as_str().unwrap()))).unwrap();
    let want = ids(&f["ids"]);
    assert_eq!(e.tokenizer.encode(&text, true, false)[..want.len()], want[..], "transcript ids (BOS + text)");
    let g = &fx["greedy"][0];
    assert_eq!(g["name"], "printing-press");
    assert_eq!(e.tokenizer.encode("The printing press changed Europe because", true, false), ids(&g["prompt_ids"]));
    check(&forced(e, 0..128), "positions 0..128");
}

/// Every position of the 768: past the 512-token window the local layers see only their
/// window and the global ones everything (issue 15: ≥ 97% of the positions that are not
/// near-ties; every position where the engines part is named with llama.cpp's margin).
#[test]
#[ignore = "a minute on two cores: make test-models"]
fn llama_cpp_choices_are_ours_under_teacher_forcing_past_the_window() {
    let Some(e) = engine() else { return };
    let n = ids(&fixture()["forced"]["ids"]).len();
    assert!(n > 512 + 200, "the sequence runs well past the window");
    check(&forced(e, 0..n), "teacher-forced, all 768 positions");
    check(&forced(e, 512..n), "teacher-forced, past the window (512..768)");
}

/// Free-running greedy tokens equal llama.cpp's for at least this many tokens on every
/// prompt (issue 15: ≥ 32).
const MIN_GREEDY_SAME: usize = 32;

/// Greedy decoding step by step on the rolling local caches: a short prompt, and 560
/// transcript tokens and a count, whose continuation runs past the window.
#[test]
#[ignore = "a minute on two cores: make test-models"]
fn greedy_matches_llama_cpp() {
    let Some(e) = engine() else { return };
    for g in fixture()["greedy"].as_array().unwrap() {
        let (name, prompt, want) = (g["name"].as_str().unwrap(), ids(&g["prompt_ids"]), ids(&g["generated_ids"]));
        let opts = GenerateOptions { max_tokens: want.len(), ignore_eos: true, ..Default::default() };
        let out = e.generate(&prompt, &opts, &mut |_| true).unwrap();
        let same = out.tokens.iter().zip(&want).take_while(|(a, b)| a == b).count();
        eprintln!("{name} ({} prompt tokens): greedy agreement with llama.cpp {same} of {} tokens: {:?}", prompt.len(), want.len(), e.tokenizer.decode(&out.tokens));
        assert!(same >= MIN_GREEDY_SAME, "{name}: greedy tokens agree for only {same}: got {:?}\nwant {:?}", out.tokens, want);
    }
}


/// GPU against the CPU engine with f32 weights (`Weights::Dequantized`): the same
/// arithmetic up to f32 summation order (tests/gpu_model.rs's TOL_GPU_VS_CPU).
#[cfg(feature = "gpu")]
const TOL_GPU_VS_CPU: f32 = 2e-3;

/// The GPU path on the real model (lavapipe where there is no GPU): head_dim 256 (the
/// per-query attention kernel, past the tiled prefill's 128), a 262144-token head, the
/// mixed cache. The short prompt's logits at every position against the CPU with f32
/// weights, then greedy decode on the device against llama.cpp's 48 tokens.
#[cfg(feature = "gpu")]
#[test]
#[ignore = "minutes on lavapipe: make test-models"]
fn gpu_logits_match_cpu_and_greedy_matches_llama_cpp() {
    use precis::cpu::model::{Model, Weights};
    use precis::format::gguf::Gguf;
    use precis::gpu::{block_on, GpuContext, GpuModel, Requirements};
    use precis::model::spec::ModelSpec;
    let Some(path) = common::gemma3_model() else { return };
    let bytes = std::fs::read(&path).unwrap();
    let g = Gguf::parse(&bytes, bytes.len() as u64).unwrap();
    let hp = precis::Hparams::from_gguf(&g, &Overrides::default()).unwrap();
    let spec = ModelSpec::resolve(&g, &hp, &path).unwrap();
    let exact = Model::load_with(&mut &bytes[..], &path, &spec, hp.clone(), Weights::Dequantized).unwrap();
    let ctx = block_on(GpuContext::new(&Requirements::default())).expect("a GPU adapter is required (lavapipe in CI)");
    let gpu = block_on(GpuModel::load(ctx, &mut &bytes[..], &path, &spec, hp)).unwrap();
    let case = &fixture()["greedy"][0];
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
    eprintln!("gemma3 GPU vs CPU (f32 weights), {} positions: max |diff|/std {worst:.2e}", prompt.len());

    let want = ids(&case["generated_ids"]);
    let mut got = vec![precis::model::sampling::argmax(&gl[(prompt.len() - 1) * v..])];
    while got.len() < want.len() {
        got.push(block_on(gpu.forward_greedy(&[*got.last().unwrap()], &mut gc)).unwrap());
    }
    let same = got.iter().zip(&want).take_while(|(a, b)| a == b).count();
    eprintln!("gemma3 GPU greedy: {same} of {} tokens equal to llama.cpp's", want.len());
    assert!(same >= MIN_GREEDY_SAME, "GPU greedy tokens agree with llama.cpp's for only {same}: got {got:?}\nwant {want:?}");
}

/// The exact model: `gemma3-f64.json`, a float64 forward of the dequantized weights
/// (tests/fixtures/gemma3_reference.py, independent of this crate), per position its
/// top-5 logits and its logits at llama.cpp's top-5 ids.
fn reference() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(common::fixture("gemma3-f64.json")).unwrap()).unwrap()
}

/// The f32-weight engine against the float64 reference: f32 arithmetic over 18 layers
/// (measured: 0.0000 mean |diff| at 4 decimals, every argmax the same).
const TOL_EXACT_TOP5: f32 = 1e-3;
/// Where the reference's own top-2 margin is below this, f32 rounding may swap them.
const EXACT_NEAR_TIE: f32 = 1e-3;

/// Why 727/768 is where llama.cpp and we meet (issue 15 asks for ≥ 97%): against the
/// exact model, the f32-weight engine takes the reference's argmax everywhere (768/768
/// measured), and the product's quantized path is closer to it than llama.cpp is, in
/// argmax agreement (743 against 733 measured) and in the mean |diff| of the logits at
/// llama.cpp's top-5 ids (0.11 against 0.17). What separates the two engines is the
/// activations' rounding before each integer dot product — llama.cpp's Q8_K blocks of
/// 256 values, ours of 32 — and Gemma 3's outlier channels make that rounding
/// noise large: the reference with llama.cpp's rounding emulated lands as far from the
/// exact one as llama.cpp does (gemma3_reference.py, docs/TESTING.md).
#[test]
#[ignore = "20 s and 2 GB for the f32 weights on two cores: make test-models"]
fn we_are_closer_to_the_exact_model_than_llama_cpp() {
    use precis::cpu::model::{Model, Weights};
    use precis::format::gguf::Gguf;
    use precis::model::spec::ModelSpec;
    let Some(e) = engine() else { return };
    let path = common::gemma3_model().unwrap();
    let toks = ids(&fixture()["forced"]["ids"]);
    let llama = fixture()["forced"]["top5"].as_array().unwrap().clone();
    let r = reference();
    let (rtop, rat) = (r["top5"].as_array().unwrap(), r["at_llama_top5"].as_array().unwrap());
    assert_eq!(rtop.len(), toks.len(), "gemma3-f64.json covers the forced ids");
    let v = e.hp.n_vocab;
    let id = |x: &serde_json::Value| x[0].as_u64().unwrap() as usize;
    let val = |x: &serde_json::Value| x.as_f64().unwrap() as f32;
    // (argmax = the reference's, positions, Σ|diff| at llama.cpp's top-5 ids, count,
    // max |diff| at the reference's top-5 ids).
    let measure = |m: &Model| {
        let mut cache = m.new_cache(toks.len());
        let (mut agree, mut sum, mut cnt, mut worst) = (0usize, 0f64, 0usize, 0f32);
        let mut disagree = Vec::new();
        for (c, chunk) in toks.chunks(CHUNK).enumerate() {
            let logits = m.forward(chunk, &mut cache, Logits::All).unwrap();
            for (i, row) in logits.chunks_exact(v).enumerate() {
                let p = c * CHUNK + i;
                let top = rtop[p].as_array().unwrap();
                let ours = precis::model::sampling::argmax(row) as usize;
                if ours == id(&top[0]) {
                    agree += 1;
                } else {
                    disagree.push((p, val(&top[0][1]) - val(&top[1][1])));
                }
                for (e, want) in llama[p].as_array().unwrap().iter().zip(rat[p].as_array().unwrap()) {
                    sum += (row[id(e)] - val(want)).abs() as f64;
                    cnt += 1;
                }
                for t in top {
                    worst = worst.max((row[id(t)] - val(&t[1])).abs());
                }
            }
        }
        (agree, sum / cnt as f64, worst, disagree)
    };
    // llama.cpp against the same reference, from its fixture.
    let (mut l_agree, mut l_sum, mut l_cnt) = (0usize, 0f64, 0usize);
    for p in 0..toks.len() {
        let lt = llama[p].as_array().unwrap();
        l_agree += (id(&lt[0]) == id(&rtop[p][0])) as usize;
        for (e, want) in lt.iter().zip(rat[p].as_array().unwrap()) {
            l_sum += (val(&e[1]) - val(want)).abs() as f64;
            l_cnt += 1;
        }
    }
    let l_mean = l_sum / l_cnt as f64;
    let n = toks.len();
    let (f_agree, f_mean, _, _) = measure(e.cpu().unwrap());
    let bytes = std::fs::read(&path).unwrap();
    let g = Gguf::parse(&bytes, bytes.len() as u64).unwrap();
    let hp = precis::Hparams::from_gguf(&g, &Overrides::default()).unwrap();
    let spec = ModelSpec::resolve(&g, &hp, &path).unwrap();
    let exact = Model::load_with(&mut &bytes[..], &path, &spec, hp, Weights::Dequantized).unwrap();
    let (x_agree, x_mean, x_worst, x_disagree) = measure(&exact);
    eprintln!(
        "gemma3 against the float64 reference, {n} teacher-forced positions: argmax the same at {x_agree} (f32 weights), {f_agree} (ours, quantized), {l_agree} (llama.cpp); \
         mean |diff| at llama.cpp's top-5 ids {x_mean:.4} / {f_mean:.4} / {l_mean:.4}; f32 weights' largest |diff| at the reference's top 5: {x_worst:.2e}"
    );
    assert!(x_worst <= TOL_EXACT_TOP5, "f32-weight engine: a top-5 logit {x_worst} from the float64 reference (tolerance {TOL_EXACT_TOP5})");
    let real: Vec<_> = x_disagree.iter().filter(|(_, m)| *m >= EXACT_NEAR_TIE).collect();
    assert!(real.is_empty(), "f32-weight engine: argmax differs from the reference at positions (its margin) {real:?}");
    assert!(f_agree >= l_agree, "quantized path: the reference's argmax at {f_agree}/{n}, llama.cpp at {l_agree}/{n}");
    assert!(f_mean < l_mean, "quantized path: mean |diff| {f_mean:.4} from the reference, llama.cpp {l_mean:.4}");
}
