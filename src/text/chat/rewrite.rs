//! Prints a chat template back from minijinja's own syntax tree with every
//! operation that can build a value larger than its inputs routed through a guard
//! (guards.rs) that sizes the value before it is built:
//!
//! | template                     | printed as                                |
//! |------------------------------|-------------------------------------------|
//! | `a ~ b ~ c`                  | `(a\|__cat(b, c))`                        |
//! | `a + b`, `a * b`             | `(a\|__add(b))`, `(a\|__mul(b))`          |
//! | `x\|f(…)`, `f(…)`, `x.m(…)`, `x[i:j]` | `(x\|f(…)\|__chk)`, `(f(…)\|__chk)`, … |
//! | `[…]`, `{…}` (not constant)  | `([…]\|__chk)`, `({…}\|__chk)`            |
//! | `{% set ns.a = v %}`         | `{% set ns.a = (v\|__store([ns])) %}`     |
//! | text between tags            | `{{ i\|__raw }}`                          |
//!
//! (`__chk` sizes a result after minijinja built it: for the filters and methods
//! that can build many times their input, guards.rs sizes it before, too.) The
//! guards are filters because a template can bind any name to a variable or a
//! macro, shadowing a function of that name, but cannot define a filter.
//!
//! Everything else prints as it parsed, fully parenthesized, so the printed template
//! means what the model's did: the same statements, the same calls in the same
//! order, each expression evaluated once. Constants print as their source text.
//!
//! Why print rather than patch the source: minijinja's spans are not the extent of
//! an expression (a filter's span starts at the filter's name; parentheses are not
//! in the tree), so splicing calls into the source at span offsets would cut
//! expressions apart. The tree is minijinja's own (`machinery::parse`, the
//! `unstable_machinery` feature), so the printed template is parsed by the same
//! parser the same way.
//!
//! A chat template has no other template to include, import, extend or fill blocks
//! of (Hugging Face renders it alone, and so does this crate): those statements are
//! refused rather than printed.

use std::fmt::Write;

use minijinja::machinery::ast::{self, CallArg, Expr, Stmt};
use minijinja::machinery::{parse, WhitespaceConfig};
use minijinja::syntax::SyntaxConfig;

/// A template printed with its guards, and its text chunks for `i|__raw`.
pub(super) struct Bounded {
    pub source: String,
    pub raws: Vec<String>,
}

#[derive(Debug)]
pub(super) enum RewriteError {
    /// minijinja's parser refused the template (as it would have compiling it).
    Syntax(minijinja::Error),
    /// A statement a chat template has no use for, named.
    Unsupported(&'static str),
}

/// Parses `src` as minijinja would with this whitespace configuration (the
/// environment's) and the default syntax, the one the printer writes, and prints it
/// back guarded.
pub(super) fn rewrite(src: &str, ws: WhitespaceConfig) -> Result<Bounded, RewriteError> {
    // (A unit struct without minijinja's `custom_syntax` feature, one with fields with it.)
    #[allow(clippy::default_constructed_unit_structs)]
    let syntax = SyntaxConfig::default();
    let tree = parse(src, "chat", syntax, ws).map_err(RewriteError::Syntax)?;
    let mut p = Printer { src, out: String::with_capacity(src.len() * 2), raws: Vec::new(), line: 1 };
    p.stmt(&tree)?;
    Ok(Bounded { source: p.out, raws: p.raws })
}

struct Printer<'s> {
    src: &'s str,
    out: String,
    raws: Vec<String>,
    /// The line `out` has reached, kept at or behind the template's own so that
    /// minijinja's errors name the template's lines.
    line: usize,
}

impl Printer<'_> {
    fn push(&mut self, s: &str) {
        self.line += s.matches('\n').count();
        self.out.push_str(s);
    }

    /// Newlines up to the template's line `to` (inside a tag, where they are only
    /// whitespace), so errors point where the model's template has the statement.
    fn sync(&mut self, to: u16) {
        let to = usize::from(to);
        if to > self.line && to - self.line < 10_000 {
            self.out.extend(std::iter::repeat_n('\n', to - self.line));
            self.line = to;
        }
    }

    /// Opens a `{% … %}` tag for a statement starting on line `line`.
    fn tag(&mut self, line: u16) {
        self.push("{%");
        self.sync(line);
        self.push(" ");
    }

    fn body(&mut self, stmts: &[Stmt]) -> Result<(), RewriteError> {
        stmts.iter().try_for_each(|s| self.stmt(s))
    }

    fn stmt(&mut self, s: &Stmt) -> Result<(), RewriteError> {
        match s {
            Stmt::Template(t) => self.body(&t.children)?,
            Stmt::EmitRaw(r) => {
                let i = self.raws.len();
                self.raws.push(r.raw.to_string());
                self.push("{{");
                self.sync(r.span().start_line);
                let _ = write!(self.out, " {i}|__raw");
                self.sync(r.span().end_line);
                self.push(" }}");
            }
            Stmt::EmitExpr(e) => {
                self.push("{{");
                self.sync(e.span().start_line);
                self.push(" ");
                match &e.expr {
                    // minijinja renders `{{ loop(x) }}` (a recursive loop) and
                    // `{{ super() }}` straight into the output (FastRecurse, FastSuper in
                    // codegen.rs): printed bare, they keep doing so.
                    Expr::Call(c) if fast_call(c) => self.call(c),
                    expr => self.expr(expr),
                }
                self.push(" }}");
            }
            Stmt::ForLoop(f) => {
                self.tag(f.span().start_line);
                self.push("for ");
                self.target(&f.target);
                self.push(" in ");
                self.expr(&f.iter);
                if let Some(cond) = &f.filter_expr {
                    self.push(" if ");
                    self.expr(cond);
                }
                if f.recursive {
                    self.push(" recursive");
                }
                self.push(" %}");
                self.body(&f.body)?;
                if !f.else_body.is_empty() {
                    self.push("{% else %}");
                    self.body(&f.else_body)?;
                }
                self.push("{% endfor %}");
            }
            Stmt::IfCond(i) => {
                self.tag(i.span().start_line);
                self.push("if ");
                self.expr(&i.expr);
                self.push(" %}");
                self.body(&i.true_body)?;
                if !i.false_body.is_empty() {
                    self.push("{% else %}");
                    self.body(&i.false_body)?;
                }
                self.push("{% endif %}");
            }
            Stmt::WithBlock(w) => {
                self.tag(w.span().start_line);
                self.push("with ");
                for (n, (target, value)) in w.assignments.iter().enumerate() {
                    if n > 0 {
                        self.push(", ");
                    }
                    self.target(target);
                    self.push(" = ");
                    self.expr(value);
                }
                self.push(" %}");
                self.body(&w.body)?;
                self.push("{% endwith %}");
            }
            Stmt::Set(set) => {
                self.tag(set.span().start_line);
                self.push("set ");
                self.target(&set.target);
                self.push(" = ");
                // An attribute set (only namespaces take them) is the one way to make
                // a value contain itself: `__store` refuses that.
                let owners = attribute_owners(&set.target);
                if owners.is_empty() {
                    self.expr(&set.expr);
                } else {
                    self.push("(");
                    self.expr(&set.expr);
                    self.push("|__store([");
                    for (n, owner) in owners.into_iter().enumerate() {
                        if n > 0 {
                            self.push(", ");
                        }
                        self.expr(owner);
                    }
                    self.push("]))");
                }
                self.push(" %}");
            }
            Stmt::SetBlock(set) => {
                self.tag(set.span().start_line);
                self.push("set ");
                self.target(&set.target);
                if let Some(f) = &set.filter {
                    self.push(" | ");
                    self.chain(f);
                }
                self.push(" %}");
                self.body(&set.body)?;
                self.push("{% endset %}");
            }
            Stmt::AutoEscape(a) => {
                self.tag(a.span().start_line);
                self.push("autoescape ");
                self.expr(&a.enabled);
                self.push(" %}");
                self.body(&a.body)?;
                self.push("{% endautoescape %}");
            }
            Stmt::FilterBlock(f) => {
                self.tag(f.span().start_line);
                self.push("filter ");
                self.chain(&f.filter);
                self.push(" %}");
                self.body(&f.body)?;
                self.push("{% endfilter %}");
            }
            Stmt::Macro(m) => {
                self.tag(m.span().start_line);
                let _ = write!(self.out, "macro {}(", m.name);
                self.params(&m.args, &m.defaults);
                self.push(") %}");
                self.body(&m.body)?;
                self.push("{% endmacro %}");
            }
            Stmt::CallBlock(c) => {
                self.tag(c.span().start_line);
                self.push("call");
                if !c.macro_decl.args.is_empty() {
                    self.push("(");
                    self.params(&c.macro_decl.args, &c.macro_decl.defaults);
                    self.push(")");
                }
                self.push(" ");
                self.call(&c.call);
                self.push(" %}");
                self.body(&c.macro_decl.body)?;
                self.push("{% endcall %}");
            }
            Stmt::Continue(c) => {
                self.tag(c.span().start_line);
                self.push("continue %}");
            }
            Stmt::Break(c) => {
                self.tag(c.span().start_line);
                self.push("break %}");
            }
            Stmt::Do(d) => {
                self.tag(d.span().start_line);
                self.push("do ");
                self.call(&d.call);
                self.push(" %}");
            }
            Stmt::Block(_) => return Err(RewriteError::Unsupported("`{% block %}`")),
            Stmt::Extends(_) => return Err(RewriteError::Unsupported("`{% extends %}`")),
            Stmt::Include(_) => return Err(RewriteError::Unsupported("`{% include %}`")),
            Stmt::Import(_) => return Err(RewriteError::Unsupported("`{% import %}`")),
            Stmt::FromImport(_) => return Err(RewriteError::Unsupported("`{% from … import %}`")),
        }
        Ok(())
    }

    /// An assignment target: names, attributes of names, tuples of those.
    fn target(&mut self, t: &Expr) {
        match t {
            Expr::Var(v) => self.push(v.id),
            Expr::GetAttr(a) => {
                self.target(&a.expr);
                self.push(".");
                self.push(a.name);
            }
            Expr::List(l) => {
                self.push("(");
                for (n, item) in l.items.iter().enumerate() {
                    if n > 0 {
                        self.push(", ");
                    }
                    self.target(item);
                }
                // `(a,)` is a one-item tuple; `(a)` would be `a`.
                self.push(if l.items.len() == 1 { ",)" } else { ")" });
            }
            // The parser makes targets of nothing else; print it as an expression.
            other => self.expr(other),
        }
    }

    /// A macro's or call block's parameters; the defaults belong to the last ones.
    fn params(&mut self, args: &[Expr], defaults: &[Expr]) {
        let first_default = args.len().saturating_sub(defaults.len());
        for (n, a) in args.iter().enumerate() {
            if n > 0 {
                self.push(", ");
            }
            self.target(a);
            if n >= first_default {
                self.push("=");
                self.expr(&defaults[n - first_default]);
            }
        }
    }

    /// A filter chain (`{% filter a|b %}`, `{% set x | a %}`): each filter checked.
    fn chain(&mut self, f: &Expr) {
        match f {
            Expr::Filter(f) => {
                if let Some(inner) = &f.expr {
                    self.chain(inner);
                    self.push("|");
                }
                self.push(f.name);
                if !f.args.is_empty() {
                    self.args(&f.args);
                }
                self.push("|__chk");
            }
            other => self.expr(other),
        }
    }

    /// `x|a|b` as `x|a|__chk|b|__chk`, flat: a filter chain parses left to right,
    /// so printing it without parentheses keeps it as shallow as the model's.
    fn filters(&mut self, e: &Expr) {
        match e {
            Expr::Filter(f) if f.expr.is_some() => {
                if let Some(x) = &f.expr {
                    self.filters(x);
                }
                self.push("|");
                self.push(f.name);
                if !f.args.is_empty() {
                    self.args(&f.args);
                }
                self.push("|__chk");
            }
            other => self.expr(other),
        }
    }

    fn args(&mut self, args: &[CallArg]) {
        self.push("(");
        for (n, a) in args.iter().enumerate() {
            if n > 0 {
                self.push(", ");
            }
            match a {
                CallArg::Pos(e) => self.expr(e),
                CallArg::Kwarg(name, e) => {
                    self.push(name);
                    self.push("=");
                    self.expr(e);
                }
                CallArg::PosSplat(e) => {
                    self.push("*");
                    self.expr(e);
                }
                CallArg::KwargSplat(e) => {
                    self.push("**");
                    self.expr(e);
                }
            }
        }
        self.push(")");
    }

    /// A call as the grammar needs it where only a call may stand (`{% call %}`,
    /// `{% do %}`), unchecked: a method call stays a method call (`x.m(…)`), a name
    /// call a name call.
    fn call(&mut self, c: &ast::Call) {
        match &c.expr {
            Expr::Var(v) => self.push(v.id),
            Expr::GetAttr(a) => {
                self.expr(&a.expr);
                self.push(".");
                self.push(a.name);
            }
            other => self.expr(other),
        }
        self.args(&c.args);
    }

    /// `a op b op c` as `(a|guard(b, c))`: a left-nested chain of one operator (as
    /// the parser builds `a ~ b ~ c`) becomes one call, so that a long chain does
    /// not nest calls past the parser's depth limit (150) when printed back.
    fn guarded(&mut self, guard: &str, e: &ast::BinOp) {
        self.push("(");
        for (n, operand) in spine(e).into_iter().enumerate() {
            match n {
                0 => {}
                1 => {
                    self.push("|");
                    self.push(guard);
                    self.push("(");
                }
                _ => self.push(", "),
            }
            self.expr(operand);
        }
        self.push("))");
    }

    /// An expression, printed so that it stands on its own wherever it is put (a
    /// name, a constant in parentheses, a call, a literal, or parenthesized).
    fn expr(&mut self, e: &Expr) {
        match e {
            Expr::Var(v) => self.push(v.id),
            Expr::Const(c) => {
                let span = c.span();
                let text = self.src.get(span.start_offset as usize..span.end_offset as usize).unwrap_or("");
                self.push("(");
                self.push(text);
                self.push(")");
            }
            Expr::Slice(s) => {
                // A slice copies: checked, so every value a render allocates counts.
                self.push("(");
                self.expr(&s.expr);
                self.push("[");
                if let Some(x) = &s.start {
                    self.expr(x);
                }
                self.push(":");
                if let Some(x) = &s.stop {
                    self.expr(x);
                }
                if let Some(x) = &s.step {
                    self.push(":");
                    self.expr(x);
                }
                self.push("]|__chk)");
            }
            Expr::UnaryOp(u) => {
                self.push(match u.op {
                    ast::UnaryOpKind::Not => "(not ",
                    ast::UnaryOpKind::Neg => "(-",
                });
                self.expr(&u.expr);
                self.push(")");
            }
            Expr::BinOp(b) => {
                use ast::BinOpKind::*;
                let op = match b.op {
                    Concat => return self.guarded("__cat", b),
                    Add => return self.guarded("__add", b),
                    Mul => return self.guarded("__mul", b),
                    Eq => "==",
                    Ne => "!=",
                    Lt => "<",
                    Lte => "<=",
                    Gt => ">",
                    Gte => ">=",
                    ScAnd => "and",
                    ScOr => "or",
                    Sub => "-",
                    Div => "/",
                    FloorDiv => "//",
                    Rem => "%",
                    Pow => "**",
                    In => "in",
                };
                self.push("(");
                // A comparison compares once (`a == b == c` would be a chain); the
                // others parse left to right, so a left-nested chain of one of them
                // prints flat (`(a and b and c)`), as deep as the model's.
                let operands = if matches!(b.op, Eq | Ne | Lt | Lte | Gt | Gte | In) { vec![&b.left, &b.right] } else { spine(b) };
                for (n, operand) in operands.into_iter().enumerate() {
                    if n > 0 {
                        let _ = write!(self.out, " {op} ");
                    }
                    self.expr(operand);
                }
                self.push(")");
            }
            Expr::Compare(c) => {
                self.push("(");
                self.expr(&c.expr);
                for op in &c.ops {
                    use ast::CompareOpKind::*;
                    self.push(match op.op {
                        Eq => " == ",
                        Ne => " != ",
                        Lt => " < ",
                        Lte => " <= ",
                        Gt => " > ",
                        Gte => " >= ",
                        In => " in ",
                        NotIn => " not in ",
                    });
                    self.expr(&op.expr);
                }
                self.push(")");
            }
            Expr::IfExpr(i) => {
                self.push("(");
                self.expr(&i.true_expr);
                self.push(" if ");
                self.expr(&i.test_expr);
                if let Some(f) = &i.false_expr {
                    self.push(" else ");
                    self.expr(f);
                }
                self.push(")");
            }
            Expr::Filter(_) => {
                self.push("(");
                self.filters(e);
                self.push(")");
            }
            Expr::Test(t) => {
                self.push("(");
                self.expr(&t.expr);
                self.push(" is ");
                self.push(t.name);
                if !t.args.is_empty() {
                    self.args(&t.args);
                }
                self.push(")");
            }
            Expr::GetAttr(a) => {
                self.expr(&a.expr);
                self.push(".");
                self.push(a.name);
            }
            Expr::GetItem(g) => {
                self.expr(&g.expr);
                self.push("[");
                self.expr(&g.subscript_expr);
                self.push("]");
            }
            Expr::Call(c) => {
                self.push("(");
                self.call(c);
                self.push("|__chk)");
            }
            Expr::List(l) => {
                let guard = !l.items.iter().all(|x| matches!(x, Expr::Const(_)));
                self.push(if guard { "([" } else { "[" });
                for (n, item) in l.items.iter().enumerate() {
                    if n > 0 {
                        self.push(", ");
                    }
                    self.expr(item);
                }
                self.push(if guard { "]|__chk)" } else { "]" });
            }
            Expr::Map(m) => {
                let guard = !m.keys.iter().chain(&m.values).all(|x| matches!(x, Expr::Const(_)));
                self.push(if guard { "({" } else { "{" });
                for (n, (k, v)) in m.keys.iter().zip(&m.values).enumerate() {
                    if n > 0 {
                        self.push(", ");
                    }
                    self.expr(k);
                    self.push(": ");
                    self.expr(v);
                }
                self.push(if guard { "}|__chk)" } else { "}" });
            }
        }
    }
}

/// The operands of a left-nested chain of `e`'s operator, in order: `a`, `b`, `c`
/// for `(a op b) op c`.
fn spine<'a, 's>(e: &'a ast::BinOp<'s>) -> Vec<&'a Expr<'s>> {
    let mut operands = vec![&e.right];
    let mut left = &e.left;
    while let Expr::BinOp(inner) = left {
        if std::mem::discriminant(&inner.op) != std::mem::discriminant(&e.op) {
            break;
        }
        operands.push(&inner.right);
        left = &inner.left;
    }
    operands.push(left);
    operands.reverse();
    operands
}

/// `loop(x)` and `super()`, which minijinja special-cases when emitted directly.
fn fast_call(c: &ast::Call) -> bool {
    match &c.expr {
        Expr::Var(v) => (v.id == "loop" && c.args.len() == 1) || (v.id == "super" && c.args.is_empty()),
        _ => false,
    }
}

/// The objects whose attributes a `{% set %}` target assigns (`ns` in `ns.a`).
fn attribute_owners<'a, 's>(target: &'a Expr<'s>) -> Vec<&'a Expr<'s>> {
    match target {
        Expr::GetAttr(a) => vec![&a.expr],
        Expr::List(l) => l.items.iter().flat_map(attribute_owners).collect(),
        _ => Vec::new(),
    }
}
