// Study notes (the `notes` format) shown as headings, lists and quotes. The
// model writes Markdown, but only the little of it that the notes grammar
// allows (src/summarize/grammar.rs `notes`; quote lines fixed by
// src/summarize/notes.rs), sections joined by a blank line:
//
//   ### Title (m:ss - m:ss)        the time range only for a timestamped transcript
//   1. One sentence.
//   2. Another.
//   Quotes:
//   1. "words from the transcript"
//
// That grammar is all this reads, so no general Markdown parser (and no HTML
// from the model) is needed: each line either is one of those forms or is
// shown as the plain text it is. Model text only ever goes in by textContent.

const QUOTE_MARKS = "\"\u201C\u201D\u201E\u201F\u00AB\u00BB"; // grammar.rs DOUBLE_QUOTES
const HEADER = /^### (.*\S.*)$/;
// format_timestamp writes m:ss under an hour, h:mm:ss from an hour on. The
// title may end in spaces of its own (the grammar's title allows them).
const RANGE = /^(.*\S)\s+\((\d+(?::\d\d){1,2}) - (\d+(?::\d\d){1,2})\)$/;
const NUMBERED = /^(\d+)\. (.*\S.*)$/;
const QUOTE = new RegExp(`^[${QUOTE_MARKS}]([^${QUOTE_MARKS}]*\\S[^${QUOTE_MARKS}]*)[${QUOTE_MARKS}]$`);

function node(doc, tag, cls, text) {
  const e = doc.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// The notes Markdown `text` as a fragment of cards: one <article> per section
// with an <h3> (its time range in a <span class="range">), the points in an
// <ol>, and the quotes as <blockquote>s in an <ol class="quotes">. Lines before
// the first section, or that fit none of the forms, become <p class="plain">.
export function renderNotes(text, doc = document) {
  const out = doc.createDocumentFragment();
  let section = null; // the <article> lines go into; null outside a section
  let loose = null; // the card for plain lines outside any section
  let points = null, quotes = null; // the section's lists; quotes after `Quotes:`
  const plain = (line) => {
    if (!section && !loose) out.append((loose = node(doc, "div", "card notes-plain")));
    (section || loose).append(node(doc, "p", "plain", line));
  };
  for (const line of String(text).split(/\r?\n/)) {
    let m;
    if (!line.trim()) {
      // Sections are separated by a blank line; what follows one is outside them.
      section = points = quotes = null;
    } else if ((m = HEADER.exec(line))) {
      section = node(doc, "article", "card notes-section");
      loose = points = quotes = null;
      const h = node(doc, "h3");
      const r = RANGE.exec(m[1]);
      h.append(r ? r[1] : m[1]);
      if (r) h.append(" ", node(doc, "span", "range", `${r[2]} - ${r[3]}`));
      section.append(h);
      out.append(section);
    } else if (section && line === "Quotes:" && !quotes) {
      quotes = node(doc, "ol", "quotes");
      quotes.setAttribute("aria-label", "Quotes");
      section.append(node(doc, "h4", null, "Quotes"), quotes);
    } else if (section && (m = NUMBERED.exec(line)) && (!quotes || QUOTE.test(m[2]))) {
      // The number as written: a list that skips or restarts shows it.
      const li = node(doc, "li");
      li.value = Number(m[1]);
      if (quotes) {
        li.append(node(doc, "blockquote", null, QUOTE.exec(m[2])[1]));
        quotes.append(li);
      } else {
        if (!points) section.append((points = node(doc, "ol", "points")));
        li.textContent = m[2];
        points.append(li);
      }
    } else {
      plain(line);
    }
  }
  return out;
}
