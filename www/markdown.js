// The Markdown download of a summary. What the model wrote (and the transcript
// words it quotes) is text: a transcript that says `<b>` or `<br />` must not
// come out bold or broken in a Markdown viewer, which renders raw HTML. So every
// piece of model text is escaped; the Markdown this file adds around it (and the
// notes grammar's own `###`, `1.`, `Quotes:`) uses none of the escaped characters.

// `<` and `>` (HTML tags, autolinks), an `&` that would start a character
// reference (`&lt;`), and the backtick: inside a code span the references
// below would show as written. CommonMark: "Entity and numeric character
// references" and "Backslash escapes".
export function escapeMarkdown(text) {
  return String(text)
    .replace(/&(?=#?[A-Za-z0-9]+;)/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/`/g, "\\`");
}

// `result` ({format, text}) as a Markdown document: the structured JSON laid
// out as headings and lists; the other formats (notes are Markdown already)
// as they were written, escaped.
export function markdown(result) {
  const e = escapeMarkdown;
  if (result.format !== "structured") return e(result.text);
  let d;
  try {
    d = JSON.parse(result.text);
  } catch {
    return e(result.text);
  }
  const lines = ["# Summary", "", e(d.introduction), ""];
  for (const s of d.sections) {
    lines.push(`## ${e(s.title)}`, "", ...s.content.map((c) => `- ${e(c)}`), "", `Topics: ${s.topics.map(e).join(", ")}`, "");
  }
  lines.push("## Topics", "", d.topics.map((t) => `- ${e(t)}`).join("\n"), "", "## General topics", "");
  for (const g of d.generalTopics) lines.push(`- ${e(g.name)}: ${Number(g.complexity).toFixed(2)}`);
  return lines.join("\n") + "\n";
}
