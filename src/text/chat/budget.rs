//! How much a chat template may build while it renders: the size of any one value,
//! the bytes it writes into captured blocks, and the work its size checks do.
//!
//! minijinja bounds a template's steps (fuel) and its recursion, not the values it
//! builds: `{% set ns.s = ns.s ~ ns.s %}` forty times takes ~200 steps and asks for
//! a terabyte. The guards (guards.rs) measure here, before they allocate, every value
//! an amplifying operation would build; the rewrite (rewrite.rs) routes every such
//! operation through a guard.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use minijinja::value::ValueKind;
use minijinja::{Error, ErrorKind, Value};

/// Bytes charged per value besides its text: a minijinja `Value` is 24 bytes (a test
/// checks), so a list of a million one-character strings costs what it occupies.
pub(super) const NODE: usize = 24;
/// Nesting a value may have. The messages are 3 deep (list, map, string) and real
/// templates add a level or two; minijinja displays, compares and drops values
/// recursively, so a template that wraps a list in a list a million times
/// (`{% set ns.l = [ns.l] %}` in a loop) would overflow the stack.
pub(super) const MAX_DEPTH: usize = 32;

/// Why a render was stopped (the first reason wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Trip {
    /// A value, or the captured output of blocks and macros, over the byte budget.
    Size,
    /// A value nested deeper than [`MAX_DEPTH`], or a namespace stored inside itself.
    Depth,
    /// The size checks themselves visited more than the work budget.
    Work,
}

pub(super) struct Budget {
    /// Bytes any one value may take (measured as [`Budget::measure`] does).
    pub limit: usize,
    /// Bytes all `{{ … }}` output may take, captured or not (see the formatter in guards.rs).
    emit_limit: usize,
    /// Bytes the checks may measure and the guarded operations build, all together.
    pub work_limit: usize,
    emitted: AtomicUsize,
    work: AtomicUsize,
    trip: Mutex<Option<Trip>>,
}

impl Budget {
    pub fn new(limit: usize, emit_limit: usize, work_limit: usize) -> Self {
        Budget { limit, emit_limit, work_limit, emitted: AtomicUsize::new(0), work: AtomicUsize::new(0), trip: Mutex::new(None) }
    }

    /// The reason the render was stopped, if a check stopped it.
    pub fn tripped(&self) -> Option<Trip> {
        *self.trip.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `why` and returns the error that ends the render. (A template cannot
    /// catch an error, so the first trip is the render's outcome.)
    pub fn stop(&self, why: Trip) -> Error {
        let mut t = self.trip.lock().unwrap_or_else(|e| e.into_inner());
        t.get_or_insert(why);
        let what = match why {
            Trip::Size => format!("a value over {} bytes", self.limit),
            Trip::Depth => format!("values nested over {MAX_DEPTH} deep or inside themselves"),
            Trip::Work => format!("over {} bytes of work", self.work_limit),
        };
        Error::new(ErrorKind::InvalidOperation, format!("chat template stopped: {what}"))
    }

    /// Admits a value of `bytes` about to be built: fails past the limit, and counts
    /// the bytes as work.
    pub fn admit(&self, bytes: usize) -> Result<usize, Error> {
        if bytes > self.limit {
            return Err(self.stop(Trip::Size));
        }
        self.charge(bytes)?;
        Ok(bytes)
    }

    /// Counts `bytes` of work: what a check measured or an operation built.
    pub fn charge(&self, bytes: usize) -> Result<(), Error> {
        let before = self.work.fetch_add(bytes, Ordering::Relaxed);
        if before.saturating_add(bytes) > self.work_limit {
            return Err(self.stop(Trip::Work));
        }
        Ok(())
    }

    /// Counts `bytes` written by `{{ … }}`.
    pub fn emit(&self, bytes: usize) -> Result<(), Error> {
        let before = self.emitted.fetch_add(bytes, Ordering::Relaxed);
        if before.saturating_add(bytes) > self.emit_limit {
            return Err(self.stop(Trip::Size));
        }
        Ok(())
    }

    /// The size of `v`: its strings' bytes plus [`NODE`] per value, shared parts
    /// counted each time they occur (as displaying, joining or serializing the value
    /// would). Fails past the limit or past [`MAX_DEPTH`]; the walk stops there, so
    /// it visits at most `limit / NODE` values whatever the value's logical size.
    pub fn measure(&self, v: &Value) -> Result<usize, Error> {
        let mut total = 0;
        let r = self.walk(v, 0, None, &mut total);
        self.charge(total)?;
        r.map(|_| total)
    }

    /// Whether `target` (a namespace) is reachable from `v`; measures `v` on the way.
    /// Storing `v` into `target` would then make a cycle, which minijinja would
    /// display, compare and serialize by recursing for ever.
    pub fn reaches(&self, v: &Value, target: &Value) -> Result<bool, Error> {
        let mut total = 0;
        let r = self.walk(v, 0, Some(target), &mut total);
        self.charge(total)?;
        r
    }

    fn walk(&self, v: &Value, depth: usize, needle: Option<&Value>, total: &mut usize) -> Result<bool, Error> {
        *total += NODE;
        if let Some(n) = needle {
            if v.as_object().is_some() && minijinja::tests::is_sameas(v, n) {
                return Ok(true);
            }
        }
        let mut found = false;
        match v.kind() {
            ValueKind::String => *total += v.as_str().map_or(0, str::len),
            ValueKind::Bytes => *total += v.as_bytes().map_or(0, <[u8]>::len),
            ValueKind::Seq | ValueKind::Iterable | ValueKind::Map => {
                if depth >= MAX_DEPTH {
                    return Err(self.stop(Trip::Depth));
                }
                let pairs = match v.kind() {
                    ValueKind::Map => v.as_object().and_then(|o| o.try_iter_pairs()),
                    _ => None,
                };
                if let Some(pairs) = pairs {
                    for (k, x) in pairs {
                        found |= self.walk(&k, depth + 1, needle, total)?;
                        found |= self.walk(&x, depth + 1, needle, total)?;
                    }
                } else if let Ok(items) = v.try_iter() {
                    for x in items {
                        found |= self.walk(&x, depth + 1, needle, total)?;
                    }
                }
            }
            _ => {}
        }
        if *total > self.limit {
            return Err(self.stop(Trip::Size));
        }
        Ok(found)
    }

    /// The bytes `format!("{v}")` (or `{v:#?}` with `pretty`) would write, counted
    /// without allocating and given up past the limit.
    pub fn display_len(&self, v: &Value, pretty: bool) -> Result<usize, Error> {
        if let (Some(s), false) = (v.as_str(), pretty) {
            self.charge(s.len())?;
            return Ok(s.len());
        }
        // Displaying recurses through the value: bound its depth (and so any cycle) first.
        self.measure(v)?;
        let mut c = Counter { n: 0, cap: self.limit };
        let r = if pretty { write!(c, "{v:#?}") } else { write!(c, "{v}") };
        self.charge(c.n)?;
        match r {
            Ok(()) => Ok(c.n),
            Err(_) => Err(self.stop(Trip::Size)),
        }
    }
}

/// A `fmt::Write` that only counts, and fails once past `cap`.
struct Counter {
    n: usize,
    cap: usize,
}

impl fmt::Write for Counter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.n += s.len();
        if self.n > self.cap {
            return Err(fmt::Error);
        }
        Ok(())
    }
}
