//! `precis` — the native command line: summarize transcripts, generate text,
//! inspect a GGUF.

#[path = "precis/summarize.rs"]
mod summarize;

use clap::{Parser, Subcommand};
use precis::text::chat::Message;
use precis::model::sampling::SamplerConfig;
use precis::{Engine, GenerateOptions, Overrides};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "precis", version, about = "Private transcript summarizer: quantized Llama, Mistral, Qwen, Gemma 3 and Phi-3 models on your machine")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Summarize transcripts (plain text, SRT, WebVTT, YouTube copy): one file to
    /// stdout, several files or a folder into OUT.
    Summarize {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// structured | notes | key-points | tldr | teaser | headline
        #[arg(long, default_value = "structured")]
        format: precis::summarize::Format,
        /// short | medium | long
        #[arg(long, default_value = "medium")]
        length: precis::summarize::Length,
        #[arg(long, default_value = "models/SmolLM2-135M-Instruct.Q4_1.gguf")]
        model: String,
        #[arg(long, value_enum, default_value = "cpu")]
        backend: Backend,
        /// Output folder (one file per input); required for several inputs.
        #[arg(short = 'o', long = "out")]
        out: Option<PathBuf>,
        /// Token budget for prompt + answer (default: the model's context);
        /// longer transcripts are summarized chunk by chunk.
        #[arg(long)]
        context: Option<usize>,
        /// Worked examples to show the model (structured format's overview pass), when
        /// they fit; none by default (they did not change a summary's measured quality).
        #[arg(long, default_value_t = 0)]
        shots: usize,
        /// 0 = greedy.
        #[arg(long, default_value_t = 0.0)]
        temperature: f32,
        /// Penalty on the model repeating its own words (1.0 = none).
        #[arg(long, default_value_t = 1.2)]
        repeat_penalty: f32,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Sliding-window size W when the GGUF lacks it (Mistral 7B v0.1: 4096).
        #[arg(long)]
        window: Option<usize>,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Refuse a transcript that needs more model passes than this (each pass reads
        /// a chunk and writes its notes; the estimate is printed before the run).
        #[arg(long)]
        max_passes: Option<usize>,
        /// Stop a transcript's summary after this many seconds.
        #[arg(long)]
        timeout: Option<f64>,
        /// Redo outputs that are newer than their transcript (a rerun skips them).
        #[arg(long)]
        force: bool,
    },
    /// Generate text from a prompt, streaming tokens to stdout and speed to stderr.
    Generate {
        #[arg(long, default_value = "models/SmolLM2-135M-Instruct.Q4_1.gguf")]
        model: String,
        #[arg(long, value_enum, default_value = "cpu")]
        backend: Backend,
        #[arg(long, required_unless_present = "prompt_file")]
        prompt: Option<String>,
        /// Read the prompt from a file instead.
        #[arg(long)]
        prompt_file: Option<String>,
        /// Keep only the first N prompt tokens (benchmarks).
        #[arg(long)]
        prompt_tokens: Option<usize>,
        /// Generate past end-of-generation tokens (benchmarks).
        #[arg(long)]
        ignore_eos: bool,
        /// Print the run's figures as one JSON line on stderr.
        #[arg(long)]
        stats_json: bool,
        /// Send the prompt as-is instead of wrapping it in the model's chat template.
        #[arg(long)]
        raw: bool,
        #[arg(long, default_value_t = 256)]
        max_tokens: usize,
        /// 0 = greedy.
        #[arg(long, default_value_t = 0.0)]
        temperature: f32,
        #[arg(long, default_value_t = 40)]
        top_k: usize,
        #[arg(long, default_value_t = 0.95)]
        top_p: f32,
        #[arg(long, default_value_t = 1.0)]
        repeat_penalty: f32,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Sliding-window size W when the GGUF lacks `llama.attention.sliding_window`
        /// (Mistral 7B v0.1 needs 4096).
        #[arg(long)]
        window: Option<usize>,
        /// Stop when this text appears (repeatable).
        #[arg(long)]
        stop: Vec<String>,
        #[arg(long, default_value_t = 8192)]
        ctx: usize,
        #[arg(long, default_value_t = 512)]
        chunk: usize,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Print the prompt's token ids to stderr.
        #[arg(long)]
        show_tokens: bool,
    },
    /// Print the five parts of a transcript that a structured summary's sections are
    /// written from, in order, as a JSON array of strings (to check a summary against
    /// its source: `make bench-quality` scores section order with them).
    Parts {
        file: PathBuf,
        /// The model whose tokenizer sizes the pieces the parts are cut on.
        #[arg(long, default_value = "models/SmolLM2-135M-Instruct.Q4_1.gguf")]
        model: String,
        /// short | medium | long
        #[arg(long, default_value = "medium")]
        length: precis::summarize::Length,
        #[arg(long)]
        context: Option<usize>,
    },
    /// Print architecture, sizes, quantization mix and tokenizer of a GGUF file.
    Info { file: String },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Backend {
    Cpu,
    /// WebGPU through wgpu (Vulkan natively; lavapipe works, slowly).
    Gpu,
}

/// Loads `model` for `backend`: into host memory for the CPU, or streamed from the
/// file straight into GPU buffers (the CPU copy is never made).
fn load(model: &str, backend: Backend, ov: &Overrides) -> Result<Engine, Box<dyn std::error::Error>> {
    let t0 = precis::platform::clock::now();
    let engine = match backend {
        Backend::Cpu => Engine::load_file(model, ov)?,
        Backend::Gpu => {
            let mut f = precis::engine::open_model(model)?;
            let ctx = precis::gpu::block_on(precis::gpu::GpuContext::new(&precis::gpu::Requirements::default()))?;
            let engine = precis::gpu::block_on(Engine::load_gpu(ctx, &mut f, model, ov))?;
            let g = engine.gpu().expect("loaded for the GPU");
            eprintln!("GPU: {} — {} MiB of weights uploaded", g.ctx.adapter_name, g.weight_bytes >> 20);
            engine
        }
    };
    eprintln!("loaded {} in {:.2}s", model, precis::platform::clock::now() - t0);
    Ok(engine)
}

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so `precis info f.gguf | head` made every print after the
    // reader left a panic ("failed printing to stdout"); with the default action the
    // CLI ends quietly as other Unix tools do.
    #[cfg(unix)]
    // SAFETY: called first in main, before any thread exists; SIG_DFL is a valid action.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            // Ctrl-C's conventional status (128 + SIGINT), so a script can tell.
            if matches!(e.downcast_ref::<summarize::CliError>(), Some(summarize::CliError::Interrupted { .. })) {
                return ExitCode::from(130);
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.cmd {
        Cmd::Info { file } => info(&file),
        Cmd::Parts { file, model, length, context } => {
            let transcript = summarize::read(&file)?;
            let summarizer = precis::summarize::Summarizer::new(load(&model, Backend::Cpu, &Overrides::default())?)?;
            let opts = precis::summarize::SummarizeOptions { format: precis::summarize::Format::Structured, length, context_tokens: context, ..Default::default() };
            println!("{}", serde_json::to_string(&summarizer.section_parts(&transcript, &opts))?);
            Ok(())
        }
        Cmd::Summarize { files, format, length, model, backend, out, context, shots, temperature, repeat_penalty, seed, window, threads, max_passes, timeout, force } => {
            if let Some(t) = threads {
                precis::cpu::kernels::pool::init(t);
            }
            let engine = load(&model, backend, &Overrides { sliding_window: window, ..Default::default() })?;
            let summarizer = precis::summarize::Summarizer::new(engine)?;
            // The penalty goes to the summarizer, which spares the layout from it.
            let sampler = SamplerConfig { temperature, seed, repeat_penalty: 1.0, ..SamplerConfig::default() };
            let opts = precis::summarize::SummarizeOptions { format, length, context_tokens: context, max_shots: shots, sampler, repeat_penalty };
            let limits = summarize::Limits { max_passes, timeout_s: timeout, force };
            summarize::run(&summarizer, &files, out.as_deref(), &opts, limits)?;
            Ok(())
        }
        Cmd::Generate { model, backend, prompt, prompt_file, prompt_tokens, ignore_eos, stats_json, raw, max_tokens, temperature, top_k, top_p, repeat_penalty, seed, window, stop, ctx, chunk, threads, show_tokens } => {
            if let Some(t) = threads {
                precis::cpu::kernels::pool::init(t);
            }
            let engine = load(&model, backend, &Overrides { sliding_window: window, ..Default::default() })?;
            let prompt = match (prompt, prompt_file) {
                (Some(p), _) => p,
                (None, Some(f)) => std::fs::read_to_string(&f).map_err(|e| format!("{f}: {e}"))?,
                (None, None) => return Err("give --prompt or --prompt-file".into()),
            };
            let mut ids = if raw { engine.tokenizer.encode(&prompt, true, true) } else { engine.chat_tokens(&[Message::new("user", &prompt)])? };
            if let Some(n) = prompt_tokens {
                if ids.len() < n {
                    return Err(format!("prompt has {} tokens, fewer than --prompt-tokens {n}", ids.len()).into());
                }
                ids.truncate(n);
            }
            if show_tokens {
                eprintln!("prompt tokens: {ids:?}");
            }
            let opts = GenerateOptions {
                max_tokens,
                sampler: SamplerConfig { temperature, top_k, top_p, repeat_penalty, repeat_last_n: 64, seed },
                stop,
                chunk,
                n_ctx: ctx,
                ignore_eos,
                keep_prefix: 0,
            };
            let mut stdout = std::io::stdout();
            let g = engine.generate(&ids, &opts, &mut |s| {
                let _ = stdout.write_all(s.as_bytes());
                let _ = stdout.flush();
                true
            })?;
            println!();
            let s = &g.stats;
            eprintln!(
                "prefill: {} tokens in {:.3}s ({:.1} tok/s) | decode: {} tokens in {:.3}s ({:.1} tok/s) | stop: {:?}",
                s.prompt_tokens,
                s.prefill_s,
                s.prefill_tps(),
                s.generated_tokens,
                s.decode_s,
                s.decode_tps(),
                g.stop
            );
            if let Some(p) = engine.gpu().and_then(|g| g.kernels.profile.as_ref()) {
                eprint!("{}", p.report());
            }
            // The last step is a decode step once a token was generated after the prompt:
            // what a GPU session compares before and after a fusion (issue 18).
            let step = engine.gpu().filter(|_| s.generated_tokens > 1).map(|g| g.last_step());
            if let Some(c) = step {
                eprintln!("GPU: decode step: {} dispatches, {} compute passes, {} buffer copies, {} submits", c.dispatches, c.passes, c.copies, c.submits);
            }
            if stats_json {
                eprintln!(
                    "{}",
                    serde_json::json!({"engine": "precis", "backend": if backend == Backend::Gpu { "gpu" } else { "cpu" }, "threads": precis::cpu::kernels::pool::global().threads(),
                        "prompt_tokens": s.prompt_tokens, "generated_tokens": s.generated_tokens,
                        "prefill_tok_s": s.prefill_tps(), "decode_tok_s": s.decode_tps(),
                        "host_peak_kib": vm_hwm_kib(),
                        "gpu_weight_bytes_per_token": engine.gpu().map(|g| g.weight_bytes_per_token()),
                        "gpu_decode_step": step.map(|c| serde_json::json!({"dispatches": c.dispatches, "passes": c.passes, "copies": c.copies, "submits": c.submits}))})
                );
            }
            Ok(())
        }
    }
}

/// Peak resident host memory so far (VmHWM), for the benchmark's loading row.
fn vm_hwm_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

fn info(file: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut f = precis::engine::open_model(file)?;
    let size = f.metadata().map_err(|e| format!("{file}: {e}"))?.len();
    // The header is read until it is whole, however large (a 256k-token vocabulary
    // and a long chat template pass 64 MiB).
    let g = precis::engine::read_header(&mut f, file)?;
    let hp = precis::Hparams::from_gguf(&g, &Overrides::default()).map_err(|e| format!("{file}: {e}"))?;
    let s = |k: &str| g.get(k).and_then(|v| v.as_str()).unwrap_or("-").to_string();
    println!("file:          {file} ({:.1} MiB, GGUF v{})", size as f64 / 1048576.0, g.version);
    println!("name:          {}", s("general.name"));
    println!("architecture:  {} — {}{}", hp.arch, hp.family.name, if hp.is_moe() { format!(" (MoE: {} experts, top-{})", hp.n_expert, hp.n_expert_used) } else { String::new() });
    println!("layers:        {}", hp.n_layer);
    println!("embedding:     {}   ffn: {}", hp.n_embd, hp.n_ff);
    println!("heads:         {} query / {} kv (head dim {}, rope dims {}, base {}, {:?} pairs)", hp.n_head, hp.n_head_kv, hp.head_dim, hp.n_rot, hp.rope_base, hp.family.rope);
    match (hp.family.qkv_bias, hp.family.qk_norm) {
        (true, _) => println!("attention:     Q/K/V biases"),
        (_, true) => println!("attention:     per-head RMSNorm of Q and K"),
        _ => {}
    }
    let mut steps = vec![];
    if hp.family.embd_scale {
        steps.push("embeddings × sqrt(n_embd)".to_string());
    }
    if hp.family.post_norms {
        steps.push("post-attention and post-FFN RMSNorms".into());
    }
    if hp.family.act == precis::format::family::Activation::GeluTanh {
        steps.push("GeGLU (tanh GELU)".into());
    }
    if g.tensor("blk.0.attn_qkv.weight").is_some() {
        steps.push("fused Q/K/V (attn_qkv)".into());
    }
    if hp.family.gate_up_fused {
        steps.push("gate and up fused in ffn_up".into());
    }
    if g.tensor("rope_freqs.weight").is_some() {
        steps.push("rope frequency factors (rope_freqs.weight)".into());
    } else if g.tensor("rope_factors_long.weight").is_some() || g.tensor("rope_factors_short.weight").is_some() {
        // The choice the default context makes (llama.cpp get_rope_factors).
        let which = if hp.long_rope() { "long" } else { "short" };
        steps.push(format!("LongRoPE: {which} factors at a context of {} (original {}), attention factor {}", hp.n_ctx_run, hp.rope_orig_ctx, hp.rope_attn_factor));
    }
    match hp.rope_scaling {
        precis::format::hparams::RopeScaling::None => {}
        precis::format::hparams::RopeScaling::Linear { factor } | precis::format::hparams::RopeScaling::LongRope { factor } => {
            let layers = if hp.global_every.is_some() { " on the global layers (the local ones unscaled)" } else { "" };
            steps.push(format!("linear rope scaling × 1/{factor}{layers}"))
        }
        precis::format::hparams::RopeScaling::Yarn { factor, beta_fast, beta_slow, log_mul } => steps.push(format!(
            "YaRN rope scaling: factor {factor} over an original context of {}, beta fast {beta_fast} / slow {beta_slow}, log multiplier {log_mul}",
            hp.rope_orig_ctx
        )),
    }
    if let Some(t) = hp.attn_temp {
        steps.push(format!("query temperature 1 + {} ln(1 + floor(pos / {}))", t.beta, t.len));
    }
    if hp.family.no_rope_every.is_some() {
        let nope: Vec<String> = (0..hp.n_layer).filter(|&l| !hp.layer_rotates(l)).map(|l| l.to_string()).collect();
        steps.push(format!("no rope on layers {}", nope.join(", ")));
    }
    if hp.rope_attn_factor != 1.0 && g.tensor("rope_factors_long.weight").is_none() {
        steps.push(format!("rope attention factor {}", hp.rope_attn_factor));
    }
    if !steps.is_empty() {
        println!("family steps:  {}", steps.join(", "));
    }
    println!("context:       {} (trained)", hp.n_ctx_train);
    if hp.mixed_windows() {
        let (local, global): (Vec<usize>, Vec<usize>) = (0..hp.n_layer).partition(|&l| !hp.is_global(l));
        let list = |v: &[usize]| v.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(" ");
        println!("sliding window: {} on the {} local layers (rope base {}); global layers (whole context, rope base {}): {}", hp.sliding_window.unwrap_or(0), local.len(), hp.rope_base_local, hp.rope_base, list(&global));
    } else {
        println!("sliding window:{}", hp.sliding_window.map_or(" none (full causal; use --window for Mistral 7B v0.1)".into(), |w| format!(" {w}")));
    }
    println!("vocabulary:    {}", hp.n_vocab);
    let params: u64 = g.tensors.iter().map(|t| t.n_elements()).sum();
    let bytes: u64 = g.tensors.iter().map(|t| t.n_bytes()).sum();
    println!("parameters:    {:.1} M in {} tensors, {:.1} MiB of weights", params as f64 / 1e6, g.tensors.len(), bytes as f64 / 1048576.0);
    let mix: Vec<String> = g.quant_mix().0.iter().map(|m| format!("{} x{} ({:.1} MiB)", m.ty, m.tensors, m.bytes as f64 / 1048576.0)).collect();
    println!("quant mix:     {}", mix.join(", "));
    let tk = precis::text::tokenizer::Tokenizer::from_gguf(&g).map_err(|e| format!("{file}: {e}"))?;
    println!(
        "tokenizer:     {} (pre: {}), {} tokens, bos {:?} eos {:?}, add_bos {}",
        tk.model_name,
        tk.pre,
        tk.vocab_size(),
        tk.bos.and_then(|b| tk.token_text(b)),
        tk.eos.and_then(|b| tk.token_text(b)),
        tk.add_bos
    );
    println!("chat template: {}", if g.get("tokenizer.chat_template").is_some() { "from GGUF" } else { "none (Mistral [INST] fallback)" });
    Ok(())
}
