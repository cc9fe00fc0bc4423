//! `precis summarize` as a user runs it: a batch where one input is bad still
//! writes the others and names the bad file; a single file goes to stdout; a batch
//! never overwrites an input or another output, and a rerun skips what is done.

mod common;
use common::default_model;
use std::process::Command;

fn precis() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_precis"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

const TALK: &str = "0:00 today we look at b-trees and why databases use them for indexes\n\
0:07 a b-tree keeps keys sorted in wide nodes so a lookup touches only a few disk pages\n\
0:15 when a node overflows it splits and the middle key moves up to the parent\n\
0:24 deletes merge or borrow from siblings so every leaf stays at the same depth\n";

#[test]
fn a_bad_file_is_named_and_the_batch_goes_on() {
    let dir = std::env::temp_dir().join(format!("precis-cli-{}", std::process::id()));
    let inputs = dir.join("in");
    let out = dir.join("out");
    std::fs::create_dir_all(&inputs).unwrap();
    std::fs::write(inputs.join("a-btrees.txt"), TALK).unwrap();
    std::fs::write(inputs.join("b-broken.txt"), b"\x00\x01\x02 not text at all \xff\xfe\x00").unwrap();
    std::fs::write(inputs.join("c-empty.txt"), "   \n\n ").unwrap();

    let run = precis()
        .args(["summarize", "--format", "headline", "--length", "short", "--model", &default_model(), "-o"])
        .arg(&out)
        .arg(&inputs)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "two inputs failed, so the batch must fail:\n{stderr}");
    assert!(stderr.contains("b-broken.txt") && stderr.contains("binary"), "{stderr}");
    assert!(stderr.contains("c-empty.txt") && stderr.contains("empty"), "{stderr}");
    assert!(stderr.contains("2 of 3 files failed"), "{stderr}");
    assert!(stderr.contains("tok/s"), "the closing table: {stderr}");
    let headline = std::fs::read_to_string(out.join("a-btrees.txt.summary.txt")).expect("the good file's summary was written");
    let words = headline.split_whitespace().count();
    assert!((3..=12).contains(&words), "{headline:?}");
    assert!(!out.join("b-broken.txt.summary.txt").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 22's run, as a new user types it: every quote printed is a line `N. "…"`
/// and in the transcript, and nothing else in the notes is quoted.
#[test]
fn notes_printed_by_the_cli_quote_only_the_transcript() {
    let file = common::shared("corpus/transcripts/intro-to-llms-timestamped.txt");
    let run = precis().args(["summarize", &file, "--format", "notes"]).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let notes = String::from_utf8(run.stdout).unwrap();
    let transcript = precis::transcript::parse_transcript(&std::fs::read(&file).unwrap()).unwrap();
    let (problems, quotes) = common::quote_problems(&notes, &transcript.text());
    assert!(problems.is_empty(), "{problems:#?}\n{notes}");
    assert!(quotes >= 5, "{quotes} quotes:\n{notes}");
}

#[test]
fn one_file_goes_to_stdout_and_several_need_an_out_folder() {
    let dir = std::env::temp_dir().join(format!("precis-cli1-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("talk.txt");
    std::fs::write(&f, TALK).unwrap();
    let run = precis().args(["summarize", "--format", "tldr", "--length", "short", "--model", &default_model()]).arg(&f).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let text = String::from_utf8(run.stdout).unwrap();
    let text = text.trim_end();
    assert!(text.lines().count() == 1 && text.ends_with(['.', '!', '?']), "one sentence: {text:?}");
    // Not a terminal: the reading progress is a line per chunk, up to the whole prompt.
    let stderr = String::from_utf8_lossy(&run.stderr);
    let reading: Vec<&str> = stderr.lines().filter(|l| l.starts_with("reading ")).collect();
    let last = reading.last().unwrap_or_else(|| panic!("no reading progress:\n{stderr}"));
    let (done, total) = last["reading ".len()..].split(" tokens").next().unwrap().split_once('/').unwrap();
    assert!(reading[0].starts_with("reading 0/") && done == total, "progress from 0 to the total: {reading:?}");

    let run = precis().args(["summarize", "--model", &default_model()]).arg(&f).arg(&f).output().unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("-o OUT"));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn tiny() -> String {
    common::fixture("tiny-smollm2.gguf")
}

#[test]
fn a_batch_never_overwrites_and_a_rerun_skips_what_is_done() {
    let dir = std::env::temp_dir().join(format!("precis-cli-batch-{}", std::process::id()));
    let inputs = dir.join("in");
    let out = dir.join("out");
    std::fs::create_dir_all(inputs.join("sub")).unwrap();
    std::fs::write(inputs.join("talk.txt"), TALK).unwrap();
    std::fs::write(inputs.join("talk.srt"), "1\n00:00:00,000 --> 00:00:05,000\nb-trees keep keys sorted in wide nodes\n").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.join("nowhere"), inputs.join("dangling.txt")).unwrap();
    let summarize = |out: &std::path::Path, extra: &[&str]| {
        let run = precis().args(["summarize", "--format", "tldr", "--length", "short", "--model", &tiny(), "-o"]).arg(out).args(extra).arg(&inputs).output().unwrap();
        (run.status.success(), String::from_utf8_lossy(&run.stderr).into_owned())
    };

    // The output folder may not be the input folder: nothing is written, the inputs stay.
    let (ok, stderr) = summarize(&inputs, &[]);
    assert!(!ok && stderr.contains("also an input folder"), "{stderr}");
    assert_eq!(std::fs::read_to_string(inputs.join("talk.txt")).unwrap(), TALK);

    // talk.txt and talk.srt get an output each; the subfolder and the dangling link are
    // reported in the table, not skipped silently.
    let (ok, stderr) = summarize(&out, &[]);
    assert!(ok, "{stderr}");
    let (txt, srt) = (out.join("talk.txt.summary.txt"), out.join("talk.srt.summary.txt"));
    assert!(txt.exists() && srt.exists(), "{stderr}");
    assert!(stderr.contains("sub") && stderr.contains("a folder: not read"), "{stderr}");
    #[cfg(unix)]
    assert!(stderr.contains("dangling.txt") && stderr.contains("a symbolic link to nothing"), "{stderr}");
    assert!(stderr.contains("model pass"), "the estimate before the run: {stderr}");
    let leftovers: Vec<_> = std::fs::read_dir(&out).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().contains("partial")).collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    // A rerun skips both (they are newer than their inputs); --force redoes them.
    let before = std::fs::metadata(&txt).unwrap().modified().unwrap();
    let (ok, stderr) = summarize(&out, &[]);
    assert!(ok && stderr.matches("skipped: up to date").count() == 2, "{stderr}");
    assert_eq!(std::fs::metadata(&txt).unwrap().modified().unwrap(), before);
    let (ok, stderr) = summarize(&out, &["--force"]);
    assert!(ok && !stderr.contains("up to date"), "{stderr}");
    // Another length is another summary: not up to date.
    let run = precis().args(["summarize", "--format", "tldr", "--length", "long", "--model", &tiny(), "-o"]).arg(&out).arg(&inputs).output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success() && !stderr.contains("up to date"), "{stderr}");

    // --max-passes refuses a transcript that needs more, naming it.
    let long = common::shared("corpus/transcripts/consistent-hashing.txt");
    let run = precis().args(["summarize", "--format", "tldr", "--model", &tiny(), "--context", "1024", "--max-passes", "2", &long]).output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success() && stderr.contains("consistent-hashing.txt") && stderr.contains("over --max-passes 2"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A reader that leaves early (`precis info f.gguf | head -1`) ends the CLI quietly,
/// as SIGPIPE ends other Unix tools, instead of a panic at the next print.
#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_info_without_a_panic() {
    use std::io::Read;
    let mut child = precis().args(["info", &tiny()]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take()); // the reader is gone before the first line
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = child.wait().unwrap();
    assert!(!err.contains("panicked"), "{err}");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(13), "ended by SIGPIPE: {status:?}, stderr {err}");
}

/// `precis parts` prints the five parts a structured summary's sections are written
/// from (bench/quality.py scores section order against them): the transcript's words,
/// all of them, in order, each part a fair share.
#[test]
fn parts_are_the_transcript_in_five_ordered_shares() {
    let file = common::shared("corpus/transcripts/consistent-hashing.txt");
    let run = precis().args(["parts", &file, "--model", &default_model()]).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let parts: Vec<String> = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(parts.len(), 5, "{parts:?}");
    let transcript = precis::transcript::parse_transcript(&std::fs::read(&file).unwrap()).unwrap();
    let words = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    let joined: Vec<String> = parts.iter().flat_map(|p| words(p)).collect();
    assert_eq!(joined, words(&transcript.text()), "the parts, joined, are the transcript");
    let total: usize = parts.iter().map(String::len).sum();
    for (k, p) in parts.iter().enumerate() {
        assert!(p.len() * 10 >= total, "part {} has {} of {total} characters", k + 1, p.len());
    }
}
