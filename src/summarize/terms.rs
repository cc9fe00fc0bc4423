//! The words that set one part of a talk apart from the others (issue 16: sections
//! in the talk's order). A section pass reads only its part, but a small model still
//! writes what the whole talk is about: Qwen2.5-Coder-1.5B titled the second part of
//! `hashing` "Distributed Hashing and Consistent Hashing", the talk's subject, where
//! the part is about scaling one database first. Naming the part's own words in the
//! task points the section at what this part adds.
//!
//! A part's words are scored by TF-IDF over the parts: how often the part says a
//! word, times `ln(parts / parts that say it)`. A word every part says (the talk's
//! subject, and every language's function words, in a transcript of some length)
//! weighs nothing; English function words ("your", "always", "heres") are left out
//! as well, as they are not terms however unevenly a speaker uses them.

use std::collections::{HashMap, HashSet};

/// English words that name nothing on their own: articles, conjunctions, pronouns,
/// prepositions, auxiliaries, a speaker's fillers and adverbs, and the contractions
/// as captions spell them without apostrophes ("heres", "ill"). No part's terms are
/// among them, and no topic ends with one (`grammar`). Other languages have
/// their own, which the TF-IDF weight still sets to nothing where every part says them.
pub const FUNCTION_WORDS: &str = "a an the and or but nor so yet of to in on at by for with from as into onto about \
    than then over under after before again once is are was were be been being am do does did has have had can could \
    will would shall should might must i you he she it we they me him her us them my your his its our their this that \
    these those which who whom whose what when where why how if because while also not just very really too there here \
    all some any each much many lot lots always never ever still even only instead ahead actually basically obviously \
    right kind sort thing things stuff uh um yeah okay ok like gonna wanna heres theres thats whats lets ill ive youre \
    dont doesnt didnt isnt cant wont im weve theyre";

/// [`FUNCTION_WORDS`] as a set, for the lookups of a part's words (here and in
/// `grammar::term_topics`).
pub(crate) fn function_words() -> HashSet<&'static str> {
    FUNCTION_WORDS.split_whitespace().collect()
}

/// Shorter words are fillers ("uh", "ok") or parts of numbers more often than terms.
const MIN_CHARS: usize = 3;

/// The words of `text` as the scores count them: runs of letters and digits,
/// lowercased, of at least [`MIN_CHARS`] characters (numbers count: "modulo 360").
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| w.chars().count() >= MIN_CHARS).map(str::to_lowercase)
}

/// For each of `parts`, its `n` most distinctive words, best first (ties: the one the
/// part says first). A word said in every part is never one; so with a single part
/// (or parts that say the same words) the lists are empty.
pub fn distinctive(parts: &[&str], n: usize) -> Vec<Vec<String>> {
    let function = function_words();
    let counts: Vec<Vec<(String, usize)>> = parts.iter().map(|p| counted(p).into_iter().filter(|(w, _)| !function.contains(w.as_str())).collect()).collect();
    let mut df: HashMap<&str, usize> = HashMap::new();
    for c in &counts {
        for (w, _) in c {
            *df.entry(w.as_str()).or_default() += 1;
        }
    }
    let total = parts.len() as f64;
    counts
        .iter()
        .map(|c| {
            // `c` is in first-use order, and the sort is stable: ties keep it.
            let mut scored: Vec<(f64, &str)> = c.iter().map(|(w, tf)| (*tf as f64 * (total / df[w.as_str()] as f64).ln(), w.as_str())).filter(|(s, _)| *s > 0.0).collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0));
            scored.into_iter().take(n).map(|(_, w)| w.to_string()).collect()
        })
        .collect()
}

/// Each distinct word of `text` with its count, in the order of first use.
fn counted(text: &str) -> Vec<(String, usize)> {
    let mut at: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<(String, usize)> = vec![];
    for w in words(text) {
        match at.get(&w) {
            Some(&i) => out[i].1 += 1,
            None => {
                at.insert(w.clone(), out.len());
                out.push((w, 1));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_word_every_part_says_is_never_distinctive() {
        let parts = ["the ring of servers and the ring again", "the modulo of keys, modulo four", "the servers fail and the replicas"];
        let d = distinctive(&parts, 3);
        // "the" is in every part: weight 0. "ring", twice in part 1 only, beats
        // "servers" (parts 1 and 3); "again" and "and" are function words.
        assert_eq!(d[0], ["ring", "servers"]);
        assert_eq!(d[1], ["modulo", "keys", "four"]);
        assert_eq!(d[2], ["fail", "replicas", "servers"]);
        assert!(d.iter().flatten().all(|w| w != "the" && w != "and"), "{d:?}");
    }

    #[test]
    fn ties_keep_the_order_the_part_says_them_in_and_short_words_are_left_out() {
        let d = distinctive(&["uh zeta alpha 42 360", "uh other words"], 10);
        assert_eq!(d[0], ["zeta", "alpha", "360"]);
        assert_eq!(d[1], ["other", "words"]);
    }

    #[test]
    fn one_part_or_equal_parts_have_no_distinctive_words() {
        assert_eq!(distinctive(&["any words at all"], 5), [Vec::<String>::new()]);
        assert!(distinctive(&["same words", "Same, words!"], 5).iter().all(Vec::is_empty));
        assert!(distinctive(&[], 5).is_empty());
    }
}
