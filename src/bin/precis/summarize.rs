//! `precis summarize`: one transcript to stdout, or a batch of files (or
//! folders) into an output folder with a progress bar and a closing table.
//! One file's failure is reported and the batch goes on.

use indicatif::{ProgressBar, ProgressStyle};
use precis::summarize::{Pass, Progress, SummarizeOptions, Summarizer, Summary};
use precis::transcript::{parse_transcript, TranscriptError, MAX_TRANSCRIPT_BYTES};
use std::path::{Path, PathBuf};
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
    #[error("{failed} of {total} files failed")]
    Batch { failed: usize, total: usize },
}

/// Files named on the command line, folders expanded to their files (sorted,
/// hidden ones skipped).
pub fn expand(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, CliError> {
    let mut out = vec![];
    for p in inputs {
        if p.is_dir() {
            let rd = std::fs::read_dir(p).map_err(|e| CliError::Io { file: p.display().to_string(), source: e })?;
            let mut files: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file() && !f.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
                .collect();
            if files.is_empty() {
                return Err(CliError::NoInputs(p.display().to_string()));
            }
            files.sort();
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn read(path: &Path) -> Result<precis::transcript::Transcript, CliError> {
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
        Pass::Final => "writing".into(),
    }
}

struct Row {
    file: String,
    outcome: Result<Summary, String>,
    seconds: f64,
}

pub fn run(summarizer: &Summarizer, inputs: &[PathBuf], out_dir: Option<&Path>, opts: &SummarizeOptions) -> Result<(), CliError> {
    let files = expand(inputs)?;
    let single = files.len() == 1 && out_dir.is_none() && !inputs[0].is_dir();
    if single {
        let bar = spinner();
        let t = read(&files[0])?;
        let s = summarizer
            .summarize(&t, opts, &mut |p| report(&bar, p))
            .map_err(|e| CliError::Summarize { file: files[0].display().to_string(), source: e })?;
        bar.finish_and_clear();
        println!("{}", s.text);
        let st = &s.stats;
        eprintln!(
            "{}: {} passes, {} prompt + {} generated tokens in {:.1}s ({:.1} tok/s decode); mask {:.2} ms/step vs decode {:.2} ms/token; {} tokens forced by the grammar",
            files[0].display(),
            st.passes,
            st.prompt_tokens,
            st.generated_tokens,
            st.seconds(),
            st.decode_tps(),
            1e3 * st.mask.mask_s / st.mask.steps.max(1) as f64,
            1e3 * st.decode_s / st.generated_tokens.max(1) as f64,
            st.mask.forced_tokens,
        );
        return Ok(());
    }
    let out_dir = out_dir.ok_or(CliError::NeedOutDir(files.len()))?;
    std::fs::create_dir_all(out_dir).map_err(|e| CliError::Io { file: out_dir.display().to_string(), source: e })?;
    let bar = ProgressBar::new(files.len() as u64);
    bar.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}").expect("the template is valid"));
    bar.enable_steady_tick(Duration::from_millis(200));
    let mut rows = vec![];
    for f in &files {
        let name = f.display().to_string();
        bar.set_message(name.clone());
        let t0 = precis::platform::clock::now();
        let outcome = read(f).and_then(|t| {
            let fb = bar.clone();
            let s = summarizer
                .summarize(&t, opts, &mut |p| {
                    if let Progress::Started { pass } = p {
                        fb.set_message(format!("{name}: {}", pass_label(*pass)));
                    }
                })
                .map_err(|e| CliError::Summarize { file: name.clone(), source: e })?;
            let stem = f.file_stem().map_or_else(|| "summary".into(), |s| s.to_string_lossy().into_owned());
            let dest = out_dir.join(format!("{stem}.{}", opts.format.extension()));
            std::fs::write(&dest, format!("{}\n", s.text)).map_err(|e| CliError::Io { file: dest.display().to_string(), source: e })?;
            Ok(s)
        });
        if let Err(e) = &outcome {
            bar.println(format!("error: {e}"));
        }
        rows.push(Row { file: name, outcome: outcome.map_err(|e| e.to_string()), seconds: precis::platform::clock::now() - t0 });
        bar.inc(1);
    }
    bar.finish_and_clear();
    print_table(&rows, out_dir);
    let failed = rows.iter().filter(|r| r.outcome.is_err()).count();
    if failed > 0 {
        return Err(CliError::Batch { failed, total: rows.len() });
    }
    Ok(())
}

fn spinner() -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}").expect("the template is valid"));
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn report(bar: &ProgressBar, p: &Progress) {
    match p {
        Progress::Plan { chunks: 0, prompt_tokens, .. } => bar.set_message(format!("{prompt_tokens} prompt tokens, one pass")),
        Progress::Plan { chunks, prompt_tokens, context } => bar.set_message(format!("{prompt_tokens} transcript tokens > {context}-token context: {chunks} chunks")),
        Progress::Started { pass } => bar.set_message(pass_label(*pass)),
        Progress::Finished { .. } | Progress::Text { .. } => {}
    }
}

fn print_table(rows: &[Row], out_dir: &Path) {
    let w = rows.iter().map(|r| r.file.len()).max().unwrap_or(4).max(4);
    eprintln!("{:<w$}  {:>8}  {:>6}  {:>9}  {:>7}  result", "file", "time (s)", "passes", "generated", "tok/s");
    for r in rows {
        match &r.outcome {
            Ok(s) => eprintln!(
                "{:<w$}  {:>8.1}  {:>6}  {:>9}  {:>7.1}  ok",
                r.file,
                r.seconds,
                s.stats.passes,
                s.stats.generated_tokens,
                s.stats.decode_tps()
            ),
            Err(e) => eprintln!("{:<w$}  {:>8.1}  {:>6}  {:>9}  {:>7}  {e}", r.file, r.seconds, "-", "-", "-"),
        }
    }
    eprintln!("outputs in {}", out_dir.display());
}
