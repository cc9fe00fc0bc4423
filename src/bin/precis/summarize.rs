//! `precis summarize`: one transcript to stdout, or a batch of files (or
//! folders) into an output folder with a progress bar and a closing table.
//! One file's failure is reported and the batch goes on.

use indicatif::{ProgressBar, ProgressStyle};
use precis::summarize::{Pass, Progress, SummarizeOptions, Summarizer, Summary};
use precis::transcript::{parse_transcript, TranscriptError, MAX_TRANSCRIPT_BYTES};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{file}: {source}")]
    Io { file: String, source: std::io::Error },
    #[error("{file}: {source}")]
    Transcript { file: String, source: TranscriptError },
    #[error("{file}: {source}")]
    Summarize { file: String, source: precis::summarize::SummarizeError },
    #[error("{0} inputs: give -o OUT, a folder for one output per input")]
    NeedOutDir(usize),
    #[error("no transcript files found in {0}")]
    NoInputs(String),
    #[error("{out}: the output folder is also an input folder; give another -o, so no transcript is overwritten by a summary")]
    OutIsInput { out: String },
    #[error("{file}: needs about {passes} model passes, over --max-passes {max}")]
    TooManyPasses { file: String, passes: usize, max: usize },
    #[error("{file}: stopped after --timeout {seconds} s")]
    Timeout { file: String, seconds: f64 },
    #[error("{file}: interrupted")]
    Interrupted { file: String },
    #[error("{failed} of {total} files failed")]
    Batch { failed: usize, total: usize },
}

/// Limits on one transcript's work (a 5 MB transcript is hours of passes).
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    pub max_passes: Option<usize>,
    pub timeout_s: Option<f64>,
    /// Redo outputs that are already up to date.
    pub force: bool,
}

/// What the command line named: the files to read, and entries of a named folder
/// that are not read (a subfolder, a link to nothing), reported in the table.
pub struct Inputs {
    pub files: Vec<PathBuf>,
    pub skipped: Vec<(PathBuf, &'static str)>,
}

/// Files named on the command line, folders expanded to their files (sorted,
/// hidden ones left out; anything else in them reported, not silently skipped).
pub fn expand(inputs: &[PathBuf]) -> Result<Inputs, CliError> {
    let mut out = Inputs { files: vec![], skipped: vec![] };
    for p in inputs {
        if !p.is_dir() {
            out.files.push(p.clone());
            continue;
        }
        let rd = std::fs::read_dir(p).map_err(|e| CliError::Io { file: p.display().to_string(), source: e })?;
        let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|f| !f.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))).collect();
        entries.sort();
        let before = out.files.len();
        for f in entries {
            if f.is_file() {
                out.files.push(f);
            } else if f.is_dir() {
                out.skipped.push((f, "a folder: not read (name it to summarize its files)"));
            } else if f.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
                out.skipped.push((f, "a symbolic link to nothing"));
            } else {
                out.skipped.push((f, "not a regular file"));
            }
        }
        if out.files.len() == before {
            return Err(CliError::NoInputs(p.display().to_string()));
        }
    }
    Ok(out)
}

/// One output per input in `out_dir`, named after the whole input name (so `talk.txt`
/// and `talk.srt` do not meet), with `-2`, `-3`… for inputs of one name from
/// different folders, given in the order of their full paths (not of the command
/// line), and names compared without case (one file on macOS and Windows). The folder
/// may not be an input folder, and no output may be an input.
pub fn output_paths(files: &[PathBuf], inputs: &[PathBuf], out_dir: &Path, ext: &str) -> Result<Vec<PathBuf>, CliError> {
    let canon = |p: &Path| std::fs::canonicalize(p).ok();
    let out_canon = canon(out_dir);
    let out_err = || CliError::OutIsInput { out: out_dir.display().to_string() };
    if out_canon.is_some() && inputs.iter().any(|i| i.is_dir() && canon(i) == out_canon) {
        return Err(out_err());
    }
    let input_canon: Vec<_> = files.iter().filter_map(|f| canon(f)).collect();
    let name_of = |f: &Path| f.file_name().map_or_else(|| "transcript".into(), |n| n.to_string_lossy().into_owned());
    let full = |f: &Path| canon(f).unwrap_or_else(|| f.to_path_buf());
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by_key(|&i| full(&files[i]));
    let mut taken = std::collections::HashSet::new();
    let mut out = vec![PathBuf::new(); files.len()];
    for i in order {
        let name = name_of(&files[i]);
        let mut k = 1;
        let dest = loop {
            let suffix = if k == 1 { String::new() } else { format!("-{k}") };
            let d = format!("{name}{suffix}.summary.{ext}");
            if taken.insert(d.to_lowercase()) {
                break out_dir.join(d);
            }
            k += 1;
        };
        if canon(&dest).is_some_and(|d| input_canon.contains(&d)) {
            return Err(out_err());
        }
        out[i] = dest;
    }
    Ok(out)
}

/// What made each output in a batch folder (`OUT/.precis-batch.json`): the input's
/// full path and the model and options, so a rerun skips an output only when it was
/// made from this input in this way — not one of the same name, nor another length.
struct Made {
    path: PathBuf,
    entries: BTreeMap<String, String>,
}

impl Made {
    fn open(out_dir: &Path) -> Self {
        let path = out_dir.join(".precis-batch.json");
        let entries = std::fs::read_to_string(&path).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
        Made { path, entries }
    }
    fn key(dest: &Path) -> String {
        dest.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    }
    fn recipe(input: &Path, how: &str) -> String {
        format!("{} · {how}", std::fs::canonicalize(input).unwrap_or_else(|_| input.to_path_buf()).display())
    }
    /// `dest` exists, is newer than `input`, and was made from it in this way (outputs
    /// are written whole or not at all, so one that exists is complete).
    fn up_to_date(&self, input: &Path, dest: &Path, how: &str) -> bool {
        let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        self.entries.get(&Self::key(dest)) == Some(&Self::recipe(input, how)) && matches!((mtime(input), mtime(dest)), (Some(i), Some(d)) if d >= i)
    }
    fn record(&mut self, input: &Path, dest: &Path, how: &str) -> Result<(), CliError> {
        self.entries.insert(Self::key(dest), Self::recipe(input, how));
        write_atomic(&self.path, &serde_json::to_string_pretty(&self.entries).unwrap_or_default())
    }
}

/// Writes `text` to `dest` through a temporary file in the same folder and a rename,
/// so a crash or Ctrl-C never leaves half an output behind.
fn write_atomic(dest: &Path, text: &str) -> Result<(), CliError> {
    let io = |e| CliError::Io { file: dest.display().to_string(), source: e };
    let tmp = dest.with_file_name(format!(".{}.partial-{}", dest.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()), std::process::id()));
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        // On disk before the rename: a power loss must not leave a short output that
        // a rerun would take for a finished one.
        f.write_all(text.as_bytes()).and_then(|_| f.sync_all()).map_err(io)?;
    }
    std::fs::rename(&tmp, dest).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}

pub fn read(path: &Path) -> Result<precis::transcript::Transcript, CliError> {
    let file = path.display().to_string();
    let io = |e| CliError::Io { file: file.clone(), source: e };
    // Refuse a huge file before reading it into memory.
    let size = std::fs::metadata(path).map_err(io)?.len() as usize;
    if size > MAX_TRANSCRIPT_BYTES {
        return Err(CliError::Transcript { file, source: TranscriptError::TooLarge { bytes: size, limit: MAX_TRANSCRIPT_BYTES } });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    parse_transcript(&bytes).map_err(|e| CliError::Transcript { file, source: e })
}

fn pass_label(pass: Pass) -> String {
    match pass {
        Pass::Chunk { round: 1, index, of } => format!("chunk {}/{of}", index + 1),
        Pass::Chunk { round, index, of } => format!("round {round}, notes {}/{of}", index + 1),
        Pass::Section { index, of } => format!("section {}/{of}", index + 1),
        Pass::Final => "writing".into(),
    }
}

enum Outcome {
    Done(Summary),
    Skipped(String),
    Failed(String),
}

struct Row {
    file: String,
    outcome: Outcome,
    seconds: f64,
    /// Seconds from the start to the first generated text (what a reader waits).
    first_text: Option<f64>,
}

/// This machine's speed with this model, measured on first use (not at all when every
/// output is up to date): (prefill, decode) tokens/s.
#[derive(Default)]
struct Speed(Option<Option<(f64, f64)>>);

impl Speed {
    fn get(&mut self, summarizer: &Summarizer) -> Option<(f64, f64)> {
        *self.0.get_or_insert_with(|| probe(summarizer))
    }
}

fn probe(summarizer: &Summarizer) -> Option<(f64, f64)> {
    let e = &summarizer.engine;
    let prompt: Vec<u32> = e.tokenizer.encode(&"the quick brown fox jumps over the lazy dog ".repeat(8), true, false);
    let opts = precis::GenerateOptions { max_tokens: 8, ignore_eos: true, ..Default::default() };
    let g = e.generate(&prompt, &opts, &mut |_| true).ok()?;
    Some((g.stats.prefill_tps(), g.stats.decode_tps()))
}

/// "about N model passes, ~M s on this machine", from the plan and the probe.
fn estimate(plan: &precis::summarize::PassPlan, speed: Option<(f64, f64)>) -> String {
    let passes = plan.passes.max(1);
    let Some((prefill, decode)) = speed.filter(|(p, d)| *p > 0.0 && *d > 0.0) else {
        return format!("about {}", plural(passes));
    };
    let seconds = plan.prompt_tokens as f64 / prefill + (passes * plan.answer_tokens) as f64 / decode;
    let time = if seconds < 90.0 { format!("~{:.0} s", seconds.max(1.0)) } else { format!("~{:.0} min", seconds / 60.0) };
    format!("about {}, {time} on this machine", plural(passes))
}

/// Summarizes `t` within `limits`, `interrupted` ending it early; `on_progress` sees
/// every event (a message line, the bar).
#[allow(clippy::too_many_arguments)]
fn summarize_one(summarizer: &Summarizer, t: &precis::transcript::Transcript, file: &str, opts: &SummarizeOptions, limits: Limits, speed: &mut Speed, interrupted: &AtomicBool, on_progress: &mut dyn FnMut(&Progress, Option<&str>)) -> Result<Summary, CliError> {
    let plan = summarizer.plan(t, opts);
    if let Some(max) = limits.max_passes.filter(|&m| plan.passes > m) {
        return Err(CliError::TooManyPasses { file: file.into(), passes: plan.passes, max });
    }
    let mut note = Some(estimate(&plan, speed.get(summarizer)));
    let t0 = precis::platform::clock::now();
    let mut stop: Option<CliError> = None;
    let r = summarizer.summarize_until(t, opts, &mut |p| {
        // The estimate goes out with the first event, above the bar's first message.
        let note = note.take();
        on_progress(p, note.as_deref());
        if interrupted.load(Ordering::Relaxed) {
            stop = Some(CliError::Interrupted { file: file.into() });
            return false;
        }
        if let Some(seconds) = limits.timeout_s.filter(|&s| precis::platform::clock::now() - t0 > s) {
            stop = Some(CliError::Timeout { file: file.into(), seconds });
            return false;
        }
        true
    });
    match (r, stop) {
        // A summary that finished as the limit or Ctrl-C arrived is kept.
        (Ok(s), _) => Ok(s),
        (Err(_), Some(e)) => Err(e),
        (Err(e), None) => Err(CliError::Summarize { file: file.into(), source: e }),
    }
}

pub fn run(summarizer: &Summarizer, inputs: &[PathBuf], out_dir: Option<&Path>, opts: &SummarizeOptions, limits: Limits) -> Result<(), CliError> {
    let Inputs { files, skipped } = expand(inputs)?;
    let mut speed = Speed::default();
    let interrupted = Arc::new(AtomicBool::new(false));
    let single = files.len() == 1 && out_dir.is_none() && !inputs[0].is_dir();
    if single {
        let bar = spinner();
        let t = read(&files[0])?;
        let name = files[0].display().to_string();
        let s = summarize_one(summarizer, &t, &name, opts, limits, &mut speed, &interrupted, &mut |p, note| {
            if let Some(n) = note {
                say(&bar, &format!("{name}: {n}"));
            }
            report(&bar, p)
        })?;
        bar.finish_and_clear();
        println!("{}", s.text);
        let st = &s.stats;
        eprintln!(
            "{}: {} passes, {} prompt + {} generated tokens in {:.1}s ({:.1} tok/s decode); mask {:.2} ms/step vs decode {:.2} ms/token; {} tokens forced by the grammar; a repeated field refused at {} steps, let through at {}",
            files[0].display(),
            st.passes,
            st.prompt_tokens,
            st.generated_tokens,
            st.seconds(),
            st.decode_tps(),
            1e3 * st.mask.mask_s / st.mask.steps.max(1) as f64,
            1e3 * st.decode_s / st.generated_tokens.max(1) as f64,
            st.mask.forced_tokens,
            st.mask.repeats_refused,
            st.mask.repeats_unavoidable,
        );
        return Ok(());
    }
    let out_dir = out_dir.ok_or(CliError::NeedOutDir(files.len()))?;
    let dests = output_paths(&files, inputs, out_dir, opts.format.extension())?;
    std::fs::create_dir_all(out_dir).map_err(|e| CliError::Io { file: out_dir.display().to_string(), source: e })?;
    // Ctrl-C finishes the batch with the table of what was done (a second one ends
    // the process as usual).
    {
        let flag = interrupted.clone();
        let _ = ctrlc::set_handler(move || {
            if flag.swap(true, Ordering::Relaxed) {
                std::process::exit(130);
            }
        });
    }
    let mut made = Made::open(out_dir);
    let how = format!("{} · {:?}", summarizer.engine.file, opts);
    let bar = ProgressBar::new(files.len() as u64);
    bar.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}").expect("the template is valid"));
    bar.enable_steady_tick(Duration::from_millis(200));
    let mut rows: Vec<Row> = skipped.iter().map(|(f, why)| Row { file: f.display().to_string(), outcome: Outcome::Skipped((*why).into()), seconds: 0.0, first_text: None }).collect();
    for (f, dest) in files.iter().zip(&dests) {
        let name = f.display().to_string();
        if interrupted.load(Ordering::Relaxed) {
            rows.push(Row { file: name, outcome: Outcome::Skipped("not started (interrupted)".into()), seconds: 0.0, first_text: None });
            continue;
        }
        if !limits.force && made.up_to_date(f, dest, &how) {
            rows.push(Row { file: name, outcome: Outcome::Skipped(format!("up to date: {} (--force redoes it)", dest.display())), seconds: 0.0, first_text: None });
            bar.inc(1);
            continue;
        }
        bar.set_message(name.clone());
        let t0 = precis::platform::clock::now();
        let mut first_text = None;
        let outcome = read(f).and_then(|t| {
            let fb = bar.clone();
            let s = summarize_one(summarizer, &t, &name, opts, limits, &mut speed, &interrupted, &mut |p, note| {
                if let Progress::Text { .. } = p {
                    first_text.get_or_insert_with(|| precis::platform::clock::now() - t0);
                }
                if let Some(n) = note {
                    say(&fb, &format!("{name}: {n}"));
                }
                if let Progress::Started { pass } = p {
                    fb.set_message(format!("{name}: {}", pass_label(*pass)));
                }
                if let Some(line) = reading(p) {
                    fb.set_message(format!("{name}: {line}"));
                }
            })?;
            write_atomic(dest, &format!("{}\n", s.text))?;
            made.record(f, dest, &how)?;
            Ok(s)
        });
        let outcome = match outcome {
            Ok(s) => Outcome::Done(s),
            Err(e) => {
                say(&bar, &format!("error: {e}"));
                Outcome::Failed(e.to_string())
            }
        };
        rows.push(Row { file: name, outcome, seconds: precis::platform::clock::now() - t0, first_text });
        bar.inc(1);
    }
    bar.finish_and_clear();
    print_table(&rows, out_dir);
    let failed = rows.iter().filter(|r| matches!(r.outcome, Outcome::Failed(_))).count();
    if interrupted.load(Ordering::Relaxed) {
        return Err(CliError::Interrupted { file: "the batch".into() });
    }
    if failed > 0 {
        return Err(CliError::Batch { failed, total: files.len() });
    }
    Ok(())
}

/// A line above the bar; on stderr directly when the bar is hidden (not a terminal),
/// so a log still gets it.
fn say(bar: &ProgressBar, line: &str) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

fn spinner() -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}").expect("the template is valid"));
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn report(bar: &ProgressBar, p: &Progress) {
    match p {
        Progress::Plan { chunks: 0, passes: 1, prompt_tokens, .. } => bar.set_message(format!("{prompt_tokens} prompt tokens, one pass")),
        Progress::Plan { chunks: 0, passes, prompt_tokens, .. } => bar.set_message(format!("{prompt_tokens} prompt tokens in {passes} passes")),
        Progress::Plan { chunks, prompt_tokens, context, .. } => bar.set_message(format!("{prompt_tokens} transcript tokens > {context}-token context: {chunks} chunks")),
        Progress::Started { pass } => bar.set_message(pass_label(*pass)),
        Progress::Prefill { .. } => {
            if let Some(line) = reading(p) {
                // A line per chunk in a log; the bar's message on a terminal.
                if bar.is_hidden() {
                    eprintln!("{line}");
                } else {
                    bar.set_message(line);
                }
            }
        }
        Progress::Finished { .. } | Progress::Text { .. } | Progress::Busy => {}
    }
}

/// "chunk 2/5: reading 1024/3620 tokens (300 from the prefix cache) · 212 tok/s · about 12 s left".
pub fn reading(p: &Progress) -> Option<String> {
    let Progress::Prefill { pass, done, total, cached, seconds } = *p else { return None };
    let read = done - cached;
    let mut line = match pass {
        Pass::Final => format!("reading {done}/{total} tokens"),
        chunk => format!("{}: reading {done}/{total} tokens", pass_label(chunk)),
    };
    if cached > 0 {
        line += &format!(" ({cached} from the prefix cache)");
    }
    if read > 0 && seconds > 0.0 {
        let rate = read as f64 / seconds;
        line += &format!(" · {rate:.0} tok/s · about {:.0} s left", (total - done) as f64 / rate);
    }
    Some(line)
}

fn print_table(rows: &[Row], out_dir: &Path) {
    let w = rows.iter().map(|r| r.file.len()).max().unwrap_or(4).max(4);
    eprintln!("{:<w$}  {:>8}  {:>10}  {:>6}  {:>6}  {:>9}  {:>7}  result", "file", "time (s)", "first text", "passes", "cached", "generated", "tok/s");
    for r in rows {
        match &r.outcome {
            Outcome::Done(s) => eprintln!(
                "{:<w$}  {:>8.1}  {:>10}  {:>6}  {:>6}  {:>9}  {:>7.1}  ok",
                r.file,
                r.seconds,
                r.first_text.map_or("-".into(), |t| format!("{t:.1}")),
                s.stats.passes,
                s.stats.cached_tokens,
                s.stats.generated_tokens,
                s.stats.decode_tps()
            ),
            Outcome::Skipped(why) => eprintln!("{:<w$}  {:>8}  {:>10}  {:>6}  {:>6}  {:>9}  {:>7}  skipped: {why}", r.file, "-", "-", "-", "-", "-", "-"),
            Outcome::Failed(e) => eprintln!("{:<w$}  {:>8.1}  {:>10}  {:>6}  {:>6}  {:>9}  {:>7}  {e}", r.file, r.seconds, "-", "-", "-", "-", "-"),
        }
    }
    eprintln!("outputs in {}", out_dir.display());
}

fn plural(passes: usize) -> String {
    if passes == 1 { "1 model pass".into() } else { format!("{passes} model passes") }
}
