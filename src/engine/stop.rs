//! Stop strings: the output is cut before the first one, and a tail that could begin
//! one is held back until the next piece decides it (never shown, then taken back).

/// Accumulates output text, holding back any tail that could begin a stop string.
pub(super) struct StopText {
    stops: Vec<String>,
    pub(super) text: String,
    emitted: usize,
}

impl StopText {
    pub(super) fn new(stops: &[String]) -> Self {
        StopText { stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(), text: String::new(), emitted: 0 }
    }

    /// Appends `piece`; returns the text safe to show now and whether a stop string
    /// completed (the text is then cut before it).
    pub(super) fn push(&mut self, piece: &str) -> (String, bool) {
        self.text.push_str(piece);
        let search_from = self.emitted.saturating_sub(self.stops.iter().map(|s| s.len()).max().unwrap_or(0));
        let search_from = (0..=search_from).rev().find(|&i| self.text.is_char_boundary(i)).unwrap_or(0);
        if let Some(at) = self.stops.iter().filter_map(|s| self.text[search_from..].find(s.as_str()).map(|i| i + search_from)).min() {
            self.text.truncate(at);
            let emit = self.text[self.emitted.min(at)..].to_string();
            self.emitted = at;
            return (emit, true);
        }
        let mut safe = self.text.len();
        for s in &self.stops {
            for k in (1..s.len()).rev() {
                if s.is_char_boundary(k) && self.text.ends_with(&s[..k]) {
                    safe = safe.min(self.text.len() - k);
                    break;
                }
            }
        }
        let safe = safe.max(self.emitted);
        let emit = self.text[self.emitted..safe].to_string();
        self.emitted = safe;
        (emit, false)
    }

    pub(super) fn flush(&mut self) -> String {
        let s = self.text[self.emitted..].to_string();
        self.emitted = self.text.len();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::StopText;

    #[test]
    fn stop_strings_are_cut_and_never_half_shown() {
        let mut s = StopText::new(&["</end>".to_string()]);
        assert_eq!(s.push("hello </"), ("hello ".to_string(), false));
        assert_eq!(s.push("en"), (String::new(), false));
        assert_eq!(s.push("d> tail"), (String::new(), true));
        assert_eq!(s.text, "hello ");
        // "</x" cannot begin "</end>": nothing is held back.
        let mut s = StopText::new(&["</end>".to_string()]);
        assert_eq!(s.push("a </x"), ("a </x".to_string(), false));
        assert_eq!(s.push("y <"), ("y ".to_string(), false));
        assert_eq!(s.flush(), "<");
    }
}
