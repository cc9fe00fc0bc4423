//! SentencePiece-style BPE as llama.cpp runs it for `tokenizer.ggml.model = "llama"`
//! (Llama, Mistral, Mixtral): start from UTF-8 characters, repeatedly merge the
//! adjacent pair whose concatenation is the vocabulary entry with the highest score
//! (ties: leftmost pair first), then map each final piece to its id, falling back to
//! `<0xXX>` byte tokens for characters the vocabulary lacks.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

pub struct Spm<'a> {
    pub token_to_id: &'a HashMap<String, u32>,
    pub scores: &'a [f32],
    pub byte_tokens: &'a [Option<u32>; 256],
    pub unk: u32,
}

struct Symbol {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

struct Bigram {
    score: f32,
    left: usize,
    right: usize,
    len: usize,
}

impl Ord for Bigram {
    fn cmp(&self, o: &Self) -> Ordering {
        // Max-heap: higher score first; equal scores pop the leftmost pair first.
        self.score.total_cmp(&o.score).then_with(|| o.left.cmp(&self.left))
    }
}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl PartialEq for Bigram {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Bigram {}

impl Spm<'_> {
    /// Tokenizes `text` (spaces already escaped to U+2581) and appends ids to `out`.
    pub fn encode(&self, text: &str, out: &mut Vec<u32>) {
        let mut syms: Vec<Symbol> = Vec::with_capacity(text.len());
        for (start, ch) in text.char_indices() {
            let i = syms.len();
            syms.push(Symbol {
                start,
                len: ch.len_utf8(),
                prev: i.checked_sub(1),
                next: Some(i + 1),
            });
        }
        let Some(last) = syms.last_mut() else { return };
        last.next = None;

        let mut heap = BinaryHeap::new();
        let push = |heap: &mut BinaryHeap<Bigram>, syms: &[Symbol], l: Option<usize>, r: Option<usize>| {
            let (Some(l), Some(r)) = (l, r) else { return };
            let (s, len) = (syms[l].start, syms[l].len + syms[r].len);
            if let Some(&id) = self.token_to_id.get(&text[s..s + len]) {
                let score = self.scores.get(id as usize).copied().unwrap_or(0.0);
                heap.push(Bigram { score, left: l, right: r, len });
            }
        };
        for i in 1..syms.len() {
            push(&mut heap, &syms, Some(i - 1), Some(i));
        }
        while let Some(b) = heap.pop() {
            let (l, r) = (&syms[b.left], &syms[b.right]);
            // Stale entry: one side was merged away or grew since it was queued.
            if l.len == 0 || r.len == 0 || l.len + r.len != b.len {
                continue;
            }
            let next = syms[b.right].next;
            syms[b.left].len = b.len;
            syms[b.right].len = 0;
            syms[b.left].next = next;
            if let Some(n) = next {
                syms[n].prev = Some(b.left);
            }
            let prev = syms[b.left].prev;
            push(&mut heap, &syms, prev, Some(b.left));
            push(&mut heap, &syms, Some(b.left), next);
        }

        let mut i = Some(0);
        while let Some(k) = i {
            let piece = &text[syms[k].start..syms[k].start + syms[k].len];
            match self.token_to_id.get(piece) {
                Some(&id) => out.push(id),
                // Every merged piece is in the vocabulary, so only single characters
                // land here: spell them as UTF-8 byte tokens.
                None => out.extend(piece.bytes().map(|b| self.byte_tokens[b as usize].unwrap_or(self.unk))),
            }
            i = syms[k].next;
        }
    }
}
