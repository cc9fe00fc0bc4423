// What a summary run's status line and progress bar say, from the engine's
// events (plan, start, prefill, text, finish). No DOM and no clock of its own:
// the page passes performance.now() in seconds, the tests a fixed timeline.

// Tokens per second over the last `window` seconds (at least the last two
// samples): the speed now, not an average since the click, which on a long
// prompt would count the reading in the writing speed.
export class RateMeter {
  constructor(window = 3) {
    this.window = window;
    this.samples = []; // [seconds, cumulative count]
  }
  add(t, count) {
    this.samples.push([t, count]);
    // Keep one sample older than the window, so that sparse events (a prefill
    // chunk every few seconds) still give a rate.
    while (this.samples.length > 2 && this.samples[1][0] <= t - this.window) this.samples.shift();
  }
  rate() {
    if (this.samples.length < 2) return null;
    const [t0, c0] = this.samples[0];
    const [t1, c1] = this.samples[this.samples.length - 1];
    // Under half a second of samples says more about jitter than speed.
    return t1 - t0 >= 0.5 ? (c1 - c0) / (t1 - t0) : null;
  }
}

const int = (n) => Math.round(n).toLocaleString("en-US");

// "about 40 s", "about 3 min": a time left is a guess, so it is never given to
// the second past a minute.
export function about(seconds) {
  if (!isFinite(seconds) || seconds < 0) return null;
  if (seconds < 60) return `about ${Math.max(1, Math.round(seconds))} s`;
  return `about ${Math.round(seconds / 60)} min`;
}

// One run: `passes` model passes (chunks of a map-reduce and the final pass),
// each reading its prompt and then writing. `answerTokens` is the most a pass
// writes (from the plan) and `speed` this device's {prefill, decode} tokens/s
// when known: with them the bar weighs reading against writing by time.
export class RunProgress {
  constructor({ answerTokens = 256, speed = null, format = null } = {}) {
    this.answerTokens = answerTokens;
    this.speed = speed;
    this.format = format;
    this.passes = 1;
    this.passesDone = 0;
    this.phase = "starting"; // starting | reading | writing | done | stopping | stopped
    this.label = "the summary";
    this.final = true; // the pass under way writes the answer (not a chunk's notes)
    this.read = { done: 0, total: 0, cached: 0 };
    this.written = 0;
    this.readMeter = new RateMeter(5);
    this.writeMeter = new RateMeter(3);
  }

  // Feeds one engine event seen at `t` seconds.
  event(ev, t) {
    if (ev.type === "plan") {
      this.passes = ev.passes || (ev.chunks ? ev.chunks + (this.format === "notes" ? 0 : 1) : 1);
    } else if (ev.type === "start") {
      this.phase = "reading";
      this.final = ev.pass.kind === "final";
      this.label = ev.pass.kind === "chunk" ? `chunk ${ev.pass.index + 1} of ${ev.pass.of}${ev.pass.round > 1 ? ` (round ${ev.pass.round})` : ""}`
        : ev.pass.kind === "section" ? `section ${ev.pass.index + 1} of ${ev.pass.of}`
        : this.format === "structured" && this.passes > 1 ? "the overview from the sections"
        : this.passes > 1 ? "the summary from the notes" : "the summary";
      this.read = { done: 0, total: 0, cached: 0 };
      this.written = 0;
      this.readMeter = new RateMeter(5);
      this.writeMeter = new RateMeter(3);
    } else if (ev.type === "prefill") {
      this.phase = "reading";
      this.read = { done: ev.done, total: ev.total, cached: ev.cached };
      // Tokens from the prefix cache cost nothing: the speed counts the rest.
      this.readMeter.add(t, ev.done - ev.cached);
    } else if (ev.type === "text") {
      if (this.phase !== "writing") {
        this.phase = "writing";
        this.writeMeter.add(t, 0);
      }
      this.written++;
      this.writeMeter.add(t, this.written);
    } else if (ev.type === "finish") {
      this.passesDone++;
      this.phase = this.passesDone >= this.passes ? "done" : "starting";
    } else if (ev.type === "fallback") {
      this.passesDone = 0;
      this.phase = "starting";
    }
  }

  stopping() {
    this.phase = "stopping";
  }

  stopped() {
    this.phase = "stopped";
  }

  // 0..1 over all passes; within a pass, reading and writing weighed by their
  // expected time on this device (half each until a speed is known).
  fraction() {
    let within = 0;
    if (this.phase === "reading" || this.phase === "writing") {
      const r = this.read.total ? this.read.done / this.read.total : 0;
      const w = this.phase === "writing" ? Math.min(1, this.written / this.answerTokens) : 0;
      let readShare = 0.5;
      if (this.speed && this.read.total) {
        const readS = (this.read.total - this.read.cached) / this.speed.prefill, writeS = this.answerTokens / this.speed.decode;
        if (readS + writeS > 0) readShare = readS / (readS + writeS);
      }
      within = this.phase === "writing" ? readShare + (1 - readShare) * w : readShare * r;
    }
    return Math.min(1, (this.passesDone + within) / this.passes);
  }

  // The status line, e.g. "reading 1,024 / 5,800 tokens · 60 tok/s · about 1 min
  // left · 512 from the prefix cache" or "writing the summary · 9.5 tok/s".
  text() {
    const pass = this.passes > 1 && this.label !== "the summary" ? ` (${this.label})` : "";
    if (this.phase === "stopping") return "stopping…";
    if (this.phase === "stopped") {
      if (this.read.total && this.read.done < this.read.total) return `stopped while reading${pass}: ${int(this.read.done)} of ${int(this.read.total)} tokens read`;
      return `stopped while writing${pass}: ${int(this.written)} tokens written`;
    }
    if (this.phase === "reading") {
      if (!this.read.total) return `reading the transcript${pass}…`;
      const parts = [`reading${pass} ${int(this.read.done)} / ${int(this.read.total)} tokens`];
      const rate = this.readMeter.rate();
      if (rate) {
        parts.push(`${int(rate)} tok/s`);
        const left = about((this.read.total - this.read.done) / rate);
        if (left) parts.push(`${left} left`);
      }
      if (this.read.cached > 0) parts.push(`${int(this.read.cached)} from the prefix cache`);
      return parts.join(" · ");
    }
    if (this.phase === "writing") {
      const rate = this.writeMeter.rate();
      const parts = [`writing ${this.label} · ${int(this.written)} tokens`];
      if (rate) {
        parts.push(`${rate.toFixed(1)} tok/s`);
        // The answer may end sooner: its token budget is only an upper bound
        // (and it is the final answer's: a chunk's notes have their own).
        const left = about(Math.max(0, this.answerTokens - this.written) / rate);
        if (left && this.final && this.written < this.answerTokens) parts.push(`at most ${left} left`);
      }
      return parts.join(" · ");
    }
    return this.phase === "done" ? "finishing…" : "starting…";
  }
}
