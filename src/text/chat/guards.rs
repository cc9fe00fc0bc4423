//! The checked operations a bounded chat template calls (see rewrite.rs for where
//! the calls come from), and the filter, method and output hooks that bound what
//! minijinja's own filters and pycompat's string methods build.
//!
//! Every guard sizes what it is about to build first and only then lets minijinja
//! build it, so a template that would build a value over the budget is stopped
//! before the allocation, not after.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use minijinja::value::{Rest, ValueKind};
use minijinja::{filters, AutoEscape, Environment, Error, Expression, State, Value};

use super::budget::{Budget, Trip, NODE};

/// Registers the guards on `env`; `raws` are the template's text chunks, which the
/// rewritten template emits as `i|__raw` (see rewrite.rs).
pub(super) fn install(env: &mut Environment<'_>, b: &Arc<Budget>, raws: Vec<String>) {
    // Text between tags, emitted through the formatter (and so counted) like any
    // `{{ }}`; safe, so that `{% autoescape %}` leaves it as raw text is left.
    // (All guards are filters: a template can shadow a function's name with a
    // variable or a macro, not a filter's.)
    let raws: Vec<Value> = raws.into_iter().map(Value::from_safe_string).collect();
    env.add_filter("__raw", move |i: usize| raws.get(i).cloned().unwrap_or_default());

    // Post-checks: a filter's, a call's or a slice's result, or a list or map literal
    // (the rewrite appends `|__chk`), and a value stored into a namespace.
    let g = b.clone();
    env.add_filter("__chk", move |v: Value| -> Result<Value, Error> { g.measure(&v).map(|_| v) });
    let g = b.clone();
    env.add_filter("__store", move |v: Value, targets: Value| -> Result<Value, Error> {
        for t in targets.try_iter()? {
            if g.reaches(&v, &t)? {
                return Err(g.stop(Trip::Depth));
            }
        }
        g.measure(&v).map(|_| v)
    });

    // `a ~ b ~ …` (the rewrite passes a chain of `~` as one call): exactly
    // minijinja's `ops::string_concat` (`format!("{a}{b}")`, in
    // minijinja-2.24.0/src/value/ops.rs) applied left to right, which is the
    // operands' displays one after another; its length is known before the string is
    // allocated. (The VM's undefined check before it, src/vm/mod.rs
    // `Instruction::StringConcat`, only fails in strict mode, which the chat
    // environment does not use.)
    let g = b.clone();
    env.add_filter("__cat", move |parts: Rest<Value>| -> Result<Value, Error> {
        let mut n = 0usize;
        for p in parts.iter() {
            n = g.admit(n.saturating_add(g.display_len(p, false)?))?;
        }
        let mut s = String::with_capacity(n);
        for p in parts.iter() {
            use std::fmt::Write;
            let _ = write!(s, "{p}");
        }
        Ok(Value::from(s))
    });
    // `a + b + …` and `a * b * …`: each step sized, then computed by minijinja's own
    // operator (see `binop`), numbers included, so the result is the operator's to
    // the bit; left to right, as the chain parses.
    let g = b.clone();
    env.add_filter("__add", move |parts: Rest<Value>| -> Result<Value, Error> { fold(&g, Op::Add, parts.0) });
    let g = b.clone();
    env.add_filter("__mul", move |parts: Rest<Value>| -> Result<Value, Error> { fold(&g, Op::Mul, parts.0) });

    // Everything `{{ }}` writes passes here, into the output or into a capture
    // (`{% set %}…{% endset %}`, a macro's body, a filter block): minijinja captures
    // into plain strings with no limit of their own (src/output.rs), so the captured
    // bytes are bounded by counting everything written. Text between tags is written
    // the same way (`__raw`), so nothing reaches a capture uncounted.
    let g = b.clone();
    env.set_formatter(move |out, state, value| {
        let n = g.display_len(value, false)?;
        g.emit(if escapes(state, value) { n.saturating_mul(6) } else { n })?;
        minijinja::escape_formatter(out, state, value)
    });

    // pycompat's string methods, sized before they run.
    let g = b.clone();
    env.set_unknown_method_callback(move |state, value, method, args| {
        if let Some(n) = method_size(&g, value, method, args)? {
            g.admit(n)?;
        }
        minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
    });

    // Builtin filters whose output can outgrow their input many times over, or which
    // materialize a string as one value per character: replaced by the same filter
    // behind a size check (`add_filter` replaces the builtin of that name, and `map`
    // looks filters up by name, so `map('replace', …)` gets the checked one too).
    let originals: [(&'static str, Value); 26] = [
        ("replace", Value::from_function(filters::replace)),
        ("join", Value::from_function(filters::join)),
        ("indent", Value::from_function(filters::indent)),
        ("format", Value::from_function(filters::format)),
        ("batch", Value::from_function(filters::batch)),
        ("slice", Value::from_function(filters::slice)),
        ("split", Value::from_function(filters::split)),
        ("lines", Value::from_function(filters::lines)),
        ("string", Value::from_function(filters::string)),
        ("safe", Value::from_function(filters::safe)),
        ("pprint", Value::from_function(filters::pprint)),
        ("escape", Value::from_function(filters::escape)),
        ("e", Value::from_function(filters::escape)),
        ("list", Value::from_function(filters::list)),
        ("sort", Value::from_function(filters::sort)),
        ("unique", Value::from_function(filters::unique)),
        ("reverse", Value::from_function(filters::reverse)),
        ("map", Value::from_function(filters::map)),
        ("select", Value::from_function(filters::select)),
        ("reject", Value::from_function(filters::reject)),
        ("selectattr", Value::from_function(filters::selectattr)),
        ("rejectattr", Value::from_function(filters::rejectattr)),
        ("groupby", Value::from_function(filters::groupby)),
        ("dictsort", Value::from_function(filters::dictsort)),
        ("items", Value::from_function(filters::items)),
        ("last", Value::from_function(filters::last)),
    ];
    for (name, orig) in originals {
        let g = b.clone();
        env.add_filter(name, move |state: &State, args: Rest<Value>| -> Result<Value, Error> {
            if let Some(n) = filter_size(&g, state, name, &args)? {
                g.admit(n)?;
            }
            orig.call(state, &args)
        });
    }
    // (`tojson`, whose `indent` amplifies, is not compiled in: minijinja's `json`
    // feature is off. Enabling it needs a check here.)
}

/// Whether the formatter HTML-escapes `value` (up to 6 bytes for one: `&quot;`).
fn escapes(state: &State, value: &Value) -> bool {
    !matches!(state.auto_escape(), AutoEscape::None) && !value.is_safe()
}

#[derive(Clone, Copy)]
enum Op {
    Add,
    Mul,
}

/// `((a op b) op c) …`, each step sized before it is computed.
fn fold(b: &Budget, op: Op, parts: Vec<Value>) -> Result<Value, Error> {
    let mut parts = parts.into_iter();
    let mut acc = parts.next().unwrap_or_default();
    for x in parts {
        match op {
            Op::Add => add_size(b, &acc, &x)?,
            Op::Mul => mul_size(b, &acc, &x)?,
        }
        acc = binop(op, acc, x)?;
    }
    Ok(acc)
}

/// Admits `a + b` where it concatenates.
fn add_size(b: &Budget, a: &Value, c: &Value) -> Result<(), Error> {
    let seq = |v: &Value| matches!(v.kind(), ValueKind::Seq | ValueKind::Iterable);
    if seq(a) && seq(c) {
        // minijinja 2.24 concatenates lazily (`MergeSeq`): the list is small, but
        // what iterating, joining or displaying it builds is its logical size.
        b.admit(b.measure(a)?.saturating_add(b.measure(c)?))?;
    } else if let (Some(x), Some(y)) = (a.as_str(), c.as_str()) {
        b.admit(x.len() + y.len())?;
    }
    Ok(())
}

/// Admits `a * c` where it repeats, in `ops::mul`'s operand order: a string on
/// either side repeats, else a sequence on either side (lazily, so its logical
/// size counts).
fn mul_size(b: &Budget, a: &Value, c: &Value) -> Result<(), Error> {
    let seq = |v: &Value| v.as_object().is_some() && matches!(v.kind(), ValueKind::Seq | ValueKind::Iterable);
    let (item, n) = if a.as_str().is_some() {
        (a, c)
    } else if c.as_str().is_some() {
        (c, a)
    } else if seq(a) {
        (a, c)
    } else {
        (c, a)
    };
    if let Some(n) = n.as_usize() {
        let one = match item.as_str() {
            Some(s) => s.len(),
            None if seq(item) => b.measure(item)?,
            None => return Ok(()),
        };
        b.admit(one.saturating_mul(n))?;
    }
    Ok(())
}

/// `a + b` or `a * b` by minijinja's own operator (`ops::add`/`ops::mul`, private to
/// it), through an expression compiled once in an empty environment: operators do
/// not depend on the environment, and the context's values keep their identity
/// (undefined stays undefined, a lazy sequence stays lazy).
fn binop(op: Op, a: Value, b: Value) -> Result<Value, Error> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    static ADD: OnceLock<Expression<'static, 'static>> = OnceLock::new();
    static MUL: OnceLock<Expression<'static, 'static>> = OnceLock::new();
    let env = ENV.get_or_init(Environment::empty);
    let (cell, src) = match op {
        Op::Add => (&ADD, "a + b"),
        Op::Mul => (&MUL, "a * b"),
    };
    let expr = cell.get_or_init(|| env.compile_expression(src).expect("a constant expression compiles"));
    // The error carries no location, so that the render gives it the template's.
    expr.eval(Value::from_iter([("a", a), ("b", b)]))
        .map_err(|e| Error::new(e.kind(), e.detail().map(str::to_owned).unwrap_or_default()))
}

/// `v` as the text a `StringInput` argument would see.
fn text<'v>(b: &Budget, v: &'v Value) -> Result<Cow<'v, str>, Error> {
    match v.as_str() {
        Some(s) => Ok(Cow::Borrowed(s)),
        None => {
            b.display_len(v, false)?;
            Ok(Cow::Owned(v.to_string()))
        }
    }
}

/// How many times `s.replace(from, …)` substitutes (an empty `from` matches between
/// every two characters and at both ends).
fn occurrences(s: &str, from: &str) -> usize {
    if from.is_empty() {
        s.chars().count() + 1
    } else {
        s.matches(from).count()
    }
}

/// What a filter that iterates `v` holds at once: a string becomes one value per
/// character. (A sequence was sized when it was built.)
fn iterated(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.len() + s.chars().count() * NODE)
}

/// Positional arguments, without a trailing keyword-argument map.
fn positional(args: &[Value]) -> &[Value] {
    match args.last() {
        Some(k) if k.is_kwargs() => &args[..args.len() - 1],
        _ => args,
    }
}

fn kwarg(args: &[Value], name: &str) -> Option<Value> {
    args.last().filter(|k| k.is_kwargs()).and_then(|k| k.get_item(&Value::from(name)).ok()).filter(|v| !v.is_undefined())
}

/// The most bytes `split(sep)` (a string separator, or whitespace for none) builds.
fn split_size(s: &str, sep: Option<&Value>) -> usize {
    let pieces = match sep.and_then(Value::as_str) {
        Some(sep) if !sep.is_empty() => s.matches(sep).count() + 1,
        _ => s.split_whitespace().count() + 1,
    };
    s.len() + pieces * NODE
}

/// An upper bound on what printf-style (`%`) or `str.format` (`{}`) formatting of
/// `fmt` with `args` writes: each field at most the widest argument plus the widest
/// width or precision it could ask for (a number in the format, or, where widths
/// come from arguments — `*`, nested `{}` — any numeric argument).
fn format_size(b: &Budget, fmt: &str, args: &[Value], brace: bool) -> Result<usize, Error> {
    let fields = fmt.matches(if brace { '{' } else { '%' }).count();
    let mut widest = fmt
        .split(|c: char| !c.is_ascii_digit())
        .filter(|d| !d.is_empty())
        .map(|d| d.parse::<usize>().unwrap_or(usize::MAX))
        .max()
        .unwrap_or(0);
    let widths_from_args = if brace { nested_braces(fmt) } else { fmt.contains('*') };
    let mut arg = 0usize;
    for a in args {
        if widths_from_args {
            if let Some(n) = a.as_usize() {
                widest = widest.max(n);
            }
        }
        arg = arg.max(b.display_len(a, false)?);
    }
    // 512: a float's longest plain rendering (`%f` of 1e308 is 316 bytes) and signs.
    Ok(fmt.len().saturating_add(fields.saturating_mul(arg.saturating_add(widest).saturating_add(512))))
}

/// Whether a `str.format` string has a field inside a field (`{:{}}`), whose width
/// then comes from an argument.
fn nested_braces(fmt: &str) -> bool {
    let mut depth = 0usize;
    for c in fmt.chars() {
        match c {
            '{' => {
                depth += 1;
                if depth > 1 {
                    return true;
                }
            }
            '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The most bytes filter `name` builds for `args` (its input first), where it can
/// build more than a small multiple of what it is given; `None` for the others,
/// whose results the rewrite checks afterwards (`|__chk`).
fn filter_size(b: &Budget, state: &State, name: &str, args: &[Value]) -> Result<Option<usize>, Error> {
    let Some(v) = args.first() else { return Ok(None) };
    let pos = positional(args);
    let arg = |i: usize| pos.get(i);
    let escaping = |n: usize| if escapes(state, v) { n.saturating_mul(6) } else { n };
    Ok(Some(match name {
        "replace" => {
            let (Some(from), Some(to)) = (arg(1), arg(2)) else { return Ok(None) };
            let (s, from, to) = (text(b, v)?, text(b, from)?, text(b, to)?);
            b.charge(s.len())?;
            escaping(s.len().saturating_add(occurrences(&s, &from).saturating_mul(to.len())))
        }
        "join" => {
            let sep = match arg(1) {
                Some(j) => text(b, j)?.len(),
                None => 0,
            };
            let Ok(items) = v.try_iter() else { return Ok(None) };
            let mut n = 0usize;
            for (i, item) in items.enumerate() {
                n = n.saturating_add(b.display_len(&item, false)?).saturating_add(if i > 0 { sep } else { 0 });
                b.admit(n)?;
            }
            escaping(n)
        }
        "indent" => {
            let width = arg(1).or(kwarg(args, "width").as_ref()).and_then(Value::as_usize).unwrap_or(4);
            let s = text(b, v)?;
            s.len().saturating_add((s.matches('\n').count() + 1).saturating_mul(width))
        }
        "format" => {
            let Some(fmt) = v.as_str() else { return Ok(None) };
            format_size(b, fmt, &args[1..], false)?
        }
        "batch" | "slice" => {
            let Some(count) = arg(1).and_then(Value::as_usize) else { return Ok(None) };
            let fill = match arg(2) {
                Some(f) => b.measure(f)?,
                None => 0,
            };
            // Both reserve `count` slots up front (`Vec::with_capacity(count)`), and
            // may pad with `count` fill values.
            iterated(v).saturating_add(count.saturating_mul(2 * NODE + fill))
        }
        "split" => split_size(&text(b, v)?, arg(1)),
        "lines" => {
            let s = text(b, v)?;
            s.len() + (s.matches('\n').count() + 1) * NODE
        }
        "string" | "safe" => b.display_len(v, false)?,
        "pprint" => b.display_len(v, true)?,
        "escape" | "e" => b.display_len(v, false)?.saturating_mul(6),
        "map" => {
            // Mapping through a filter by name: what each call builds, all together.
            let mut n = iterated(v);
            if let (Some(inner), Ok(items)) = (arg(1).and_then(Value::as_str), v.try_iter()) {
                for item in items {
                    let call: Vec<Value> = std::iter::once(item).chain(pos[2..].iter().cloned()).collect();
                    if let Some(k) = filter_size(b, state, inner, &call)? {
                        n = b.admit(n.saturating_add(k))?;
                    }
                }
            }
            n
        }
        "list" | "sort" | "unique" | "reverse" | "select" | "reject" | "selectattr" | "rejectattr" | "groupby"
        | "dictsort" | "items" | "last" => iterated(v),
        _ => return Ok(None),
    }))
}

/// The most bytes pycompat's `value.method(args)` builds, for the string methods
/// that can build more than a small multiple of the string.
fn method_size(b: &Budget, value: &Value, method: &str, args: &[Value]) -> Result<Option<usize>, Error> {
    let Some(s) = value.as_str() else { return Ok(None) };
    Ok(Some(match method {
        "replace" => {
            let (Some(old), Some(new)) = (args.first(), args.get(1)) else { return Ok(None) };
            let (Some(old), Some(new)) = (old.as_str(), new.as_str()) else { return Ok(None) };
            b.charge(s.len())?;
            let mut times = occurrences(s, old);
            if let Some(count) = args.get(2).and_then(Value::as_i64).filter(|&c| c >= 0) {
                times = times.min(count as usize);
            }
            s.len().saturating_add(times.saturating_mul(new.len()))
        }
        "split" => split_size(s, args.first()),
        "splitlines" => s.len() + (s.matches('\n').count() + 1) * NODE,
        "join" => {
            let Some(Ok(items)) = args.first().map(Value::try_iter) else { return Ok(None) };
            let mut n = 0usize;
            for (i, item) in items.enumerate() {
                n = n.saturating_add(b.display_len(&item, false)?).saturating_add(if i > 0 { s.len() } else { 0 });
                b.admit(n)?;
            }
            n
        }
        "format" => format_size(b, s, args, true)?,
        _ => return Ok(None),
    }))
}
