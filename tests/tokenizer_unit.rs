//! Tokenizer rules on a hand-built SentencePiece vocabulary: merge order by score,
//! leftmost tie-break, byte fallback, space prefix, special-token partition.

mod common;
use common::{GgufWriter, Kv};
use precis::format::gguf::Gguf;
use precis::text::tokenizer::{StreamDecoder, Tokenizer};

fn spm(pieces: &[(&str, f32, u32)]) -> Tokenizer {
    let mut toks = vec![("<unk>".to_string(), 0.0, 2u32), ("<s>".into(), 0.0, 3), ("</s>".into(), 0.0, 3)];
    toks.extend((0..=255u8).map(|b| (format!("<0x{b:02X}>"), 0.0, 6)));
    toks.extend(pieces.iter().map(|(p, s, t)| (p.to_string(), *s, *t)));
    let b = GgufWriter::new()
        .kv("tokenizer.ggml.model", Kv::Str("llama".into()))
        .kv("tokenizer.ggml.tokens", Kv::StrArr(toks.iter().map(|t| t.0.clone()).collect()))
        .kv("tokenizer.ggml.scores", Kv::F32Arr(toks.iter().map(|t| t.1).collect()))
        .kv("tokenizer.ggml.token_type", Kv::I32Arr(toks.iter().map(|t| t.2 as i32).collect()))
        .kv("tokenizer.ggml.bos_token_id", Kv::U32(1))
        .kv("tokenizer.ggml.eos_token_id", Kv::U32(2))
        .bytes();
    let g = Gguf::parse(&b, b.len() as u64).unwrap();
    Tokenizer::from_gguf(&g).unwrap()
}

fn pieces(t: &Tokenizer, ids: &[u32]) -> Vec<String> {
    ids.iter().map(|&i| t.token_text(i).unwrap().to_string()).collect()
}

#[test]
fn merges_follow_scores_not_order() {
    // "▁ab" scores higher than "ab" alone; "bc" beats "ab" when both are possible.
    let t = spm(&[("▁", -1.0, 1), ("a", -1.0, 1), ("b", -1.0, 1), ("c", -1.0, 1), ("ab", -2.0, 1), ("bc", -1.5, 1), ("▁a", -3.0, 1), ("▁abc", -0.5, 1)]);
    // ▁ a b c: best first pair is bc (-1.5) > ab (-2) > ▁a (-3): ▁ a [bc]; then no
    // "abc"/"▁abc" reachable through pairs except ▁a then ▁a+bc = ▁abc.
    assert_eq!(pieces(&t, &t.encode("abc", false, false)), ["▁abc"]);
    assert_eq!(pieces(&t, &t.encode("cab", false, false)), ["▁", "c", "ab"]);
}

#[test]
fn equal_scores_merge_leftmost_first() {
    let t = spm(&[("▁", -1.0, 1), ("a", -1.0, 1), ("aa", -2.0, 1)]);
    assert_eq!(pieces(&t, &t.encode("aaa", false, false)), ["▁", "aa", "a"]);
}

#[test]
fn unknown_characters_fall_back_to_utf8_bytes() {
    let t = spm(&[("▁", -1.0, 1), ("x", -1.0, 1)]);
    assert_eq!(pieces(&t, &t.encode("xé", false, false)), ["▁", "x", "<0xC3>", "<0xA9>"]);
    let ids = t.encode("xé", false, false);
    assert_eq!(t.decode(&ids), " xé");
    let mut d = StreamDecoder::default();
    let streamed: String = ids.iter().map(|&i| d.push(&t.token_bytes(i))).collect();
    assert_eq!(streamed, " xé");
}

#[test]
fn bos_and_special_partition() {
    let t = spm(&[("▁", -1.0, 1), ("h", -1.0, 1), ("i", -1.0, 1), ("hi", -0.5, 1), ("▁hi", -0.1, 1), ("[X]", 0.0, 4)]);
    let ids = t.encode("hi</s>hi[X]hi", true, true);
    // BOS, then each text fragment after a special token gets the space prefix again;
    // the user-defined [X] splits even though it is not a control token.
    assert_eq!(pieces(&t, &ids), ["<s>", "▁hi", "</s>", "▁hi", "[X]", "▁hi"]);
    // Without parse_special, control tokens stay text but user-defined ones still split.
    let ids = t.encode("hi</s>[X]", false, false);
    assert!(!ids.contains(&2) && ids.contains(&t.token_id("[X]").unwrap()), "{:?}", pieces(&t, &ids));
    assert_eq!(t.encode("", true, true), vec![1], "empty text with specials is just BOS");
    assert!(t.encode("", false, false).is_empty());
}
