//! `precis summarize` as a user runs it: a batch where one input is bad still
//! writes the others and names the bad file; a single file goes to stdout.

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
    let headline = std::fs::read_to_string(out.join("a-btrees.txt")).expect("the good file's summary was written");
    let words = headline.split_whitespace().count();
    assert!((3..=12).contains(&words), "{headline:?}");
    assert!(!out.join("b-broken.txt").exists());
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

    let run = precis().args(["summarize", "--model", &default_model()]).arg(&f).arg(&f).output().unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("-o OUT"));
    std::fs::remove_dir_all(&dir).unwrap();
}
