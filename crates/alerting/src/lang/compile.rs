//! Resolution and type checks: the syntax tree to a typed [`Expr`] whose fields are
//! catalog indices, whose macros are expanded and whose regexes are compiled.

use regex::Regex;

use super::parse::{parse, Ast, BinOp, Node};
use super::{macros, RuleError};
use crate::snapshot::{Kind, Ty};

/// The compiled form of an expression.
#[derive(Clone, Debug)]
pub(crate) enum Expr {
    Num(f64),
    Str(Box<str>),
    Bool(bool),
    Null,
    Field(Kind, usize),
    /// Unix seconds of the evaluation.
    Now,
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    /// `==`/`!=`/`<`... on operands of one type (or a null literal).
    Cmp(BinOp, Box<Expr>, Box<Expr>),
    Regex {
        arg: Box<Expr>,
        re: Box<Regex>,
        negate: bool,
    },
    IsNull {
        arg: Box<Expr>,
        negate: bool,
    },
    Arith(BinOp, Box<Expr>, Box<Expr>),
    Neg(Box<Expr>),
}

/// The static type of a compiled node: a catalog type, or the `null` literal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum T {
    Ty(Ty),
    Null,
}

impl T {
    fn name(self) -> &'static str {
        match self {
            T::Ty(t) => t.as_str(),
            T::Null => "null",
        }
    }
}

/// What a compilation found besides the expression.
#[derive(Clone, Debug, Default)]
pub(crate) struct Uses {
    /// Fields read, in first-use order, without repeats.
    pub fields: Vec<(Kind, usize)>,
    /// The entity kinds named, with the offset of their first use.
    pub entities: Vec<(Kind, usize)>,
    pub clock: bool,
}

/// Macros may use macros; this bounds it (and catches a cycle).
const MAX_MACRO_DEPTH: usize = 8;

pub(crate) struct Compiler<'s> {
    /// The text being compiled (the rule, or a macro's body).
    src: &'s str,
    pub uses: Uses,
    depth: usize,
    /// Set while compiling a macro body: errors are reported at the macro's use.
    outer: Option<(usize, String)>,
}

impl<'s> Compiler<'s> {
    pub(crate) fn new(src: &'s str) -> Self {
        Compiler {
            src,
            uses: Uses::default(),
            depth: 0,
            outer: None,
        }
    }

    fn err(&self, pos: usize, message: String, known: Vec<String>) -> RuleError {
        RuleError::new(self.src, pos, message, known)
    }

    /// The whole rule: must be a condition.
    pub(crate) fn rule(&mut self) -> Result<Expr, RuleError> {
        let node = parse(self.src)?;
        let (e, t) = self.node(&node)?;
        if t != T::Ty(Ty::Bool) {
            return Err(self.err(
                node.pos,
                format!(
                    "a rule must be a condition (true or false), this is a {}: compare it, e.g. `> 90`",
                    t.name()
                ),
                Vec::new(),
            ));
        }
        Ok(e)
    }

    fn node(&mut self, n: &Node) -> Result<(Expr, T), RuleError> {
        Ok(match &n.ast {
            Ast::Num(v) => (Expr::Num(*v), T::Ty(Ty::Num)),
            Ast::Str(s) => (Expr::Str(s.as_str().into()), T::Ty(Ty::Str)),
            Ast::Bool(b) => (Expr::Bool(*b), T::Ty(Ty::Bool)),
            Ast::Null => (Expr::Null, T::Null),
            Ast::Name(name) => self.name(n.pos, name)?,
            Ast::Not(a) => {
                let e = self.typed(a, Ty::Bool, "`!`")?;
                (Expr::Not(Box::new(e)), T::Ty(Ty::Bool))
            }
            Ast::Neg(a) => {
                let e = self.typed(a, Ty::Num, "`-`")?;
                (Expr::Neg(Box::new(e)), T::Ty(Ty::Num))
            }
            Ast::Bin(op, a, b) => self.binary(n.pos, *op, a, b)?,
        })
    }

    /// A node that must have type `want`.
    fn typed(&mut self, n: &Node, want: Ty, what: &str) -> Result<Expr, RuleError> {
        let (e, t) = self.node(n)?;
        if t != T::Ty(want) {
            return Err(self.err(
                n.pos,
                format!(
                    "{what} needs a {}, this is {}",
                    want.as_str(),
                    describe(n, t)
                ),
                Vec::new(),
            ));
        }
        Ok(e)
    }

    fn binary(
        &mut self,
        pos: usize,
        op: BinOp,
        a: &Node,
        b: &Node,
    ) -> Result<(Expr, T), RuleError> {
        let what = format!("`{}`", op.as_str());
        let bool_t = T::Ty(Ty::Bool);
        Ok(match op {
            BinOp::And | BinOp::Or => {
                let l = Box::new(self.typed(a, Ty::Bool, &what)?);
                let r = Box::new(self.typed(b, Ty::Bool, &what)?);
                let e = if op == BinOp::And {
                    Expr::And(l, r)
                } else {
                    Expr::Or(l, r)
                };
                (e, bool_t)
            }
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => {
                let l = self.typed(a, Ty::Num, &what)?;
                let r = self.typed(b, Ty::Num, &what)?;
                (Expr::Arith(op, Box::new(l), Box::new(r)), T::Ty(Ty::Num))
            }
            BinOp::Match | BinOp::NotMatch => {
                let l = self.typed(a, Ty::Str, &what)?;
                let Ast::Str(pattern) = &b.ast else {
                    return Err(self.err(
                        b.pos,
                        format!("{what} needs a quoted regular expression on its right"),
                        Vec::new(),
                    ));
                };
                // Case-insensitive like LibreNMS's REGEXP on MySQL; `(?-i)` turns it off.
                let re = Regex::new(&format!("(?i){pattern}")).map_err(|e| {
                    self.err(
                        b.pos,
                        format!("bad regular expression: {}", one_line(&e.to_string())),
                        Vec::new(),
                    )
                })?;
                let e = Expr::Regex {
                    arg: Box::new(l),
                    re: Box::new(re),
                    negate: op == BinOp::NotMatch,
                };
                (e, bool_t)
            }
            _ => self.comparison(pos, op, a, b)?,
        })
    }

    fn comparison(
        &mut self,
        pos: usize,
        op: BinOp,
        a: &Node,
        b: &Node,
    ) -> Result<(Expr, T), RuleError> {
        let (mut l, mut lt) = self.node(a)?;
        let (mut r, mut rt) = self.node(b)?;
        let bool_t = T::Ty(Ty::Bool);
        let equality = matches!(op, BinOp::Eq | BinOp::Ne);
        if equality && (lt == T::Null || rt == T::Null) {
            let arg = if lt == T::Null { r } else { l };
            let e = Expr::IsNull {
                arg: Box::new(arg),
                negate: op == BinOp::Ne,
            };
            return Ok((e, bool_t));
        }
        // LibreNMS writes `%macros.device_down = 1` and `>= "90"`: a literal 0/1 against a
        // boolean, and a quoted number against a number, take the other side's type.
        coerce(&mut l, &mut lt, rt);
        coerce(&mut r, &mut rt, lt);
        if lt == T::Null || rt == T::Null {
            return Err(self.err(
                pos,
                format!("`{}` with null: use `== null` or `!= null`", op.as_str()),
                Vec::new(),
            ));
        }
        if lt != rt {
            return Err(self.err(
                pos,
                format!(
                    "cannot compare {} with {}",
                    describe(a, lt),
                    describe(b, rt)
                ),
                Vec::new(),
            ));
        }
        if !equality && lt != T::Ty(Ty::Num) {
            return Err(self.err(
                pos,
                format!(
                    "`{}` needs numbers, this is {}",
                    op.as_str(),
                    describe(a, lt)
                ),
                Vec::new(),
            ));
        }
        Ok((Expr::Cmp(op, Box::new(l), Box::new(r)), bool_t))
    }

    /// A field, `now`, or a macro.
    fn name(&mut self, pos: usize, name: &str) -> Result<(Expr, T), RuleError> {
        let Some((first, rest)) = name.split_once('.') else {
            if name.eq_ignore_ascii_case("now") {
                self.uses.clock = true;
                return Ok((Expr::Now, T::Ty(Ty::Num)));
            }
            return self.macro_use(pos, name, true);
        };
        if first.eq_ignore_ascii_case("macros") {
            return self.macro_use(pos, rest, false);
        }
        let Some(kind) = Kind::parse(first) else {
            let mut known: Vec<String> = Kind::ALL.iter().map(|k| k.as_str().to_string()).collect();
            known.push("macros".into());
            return Err(self.err(pos, format!("unknown entity `{first}` in `{name}`"), known));
        };
        let idx = if rest.contains('.') {
            None
        } else {
            kind.field_index(rest)
        };
        let Some(idx) = idx else {
            let known = kind
                .fields()
                .iter()
                .map(|f| format!("{}.{}", kind.as_str(), f.name))
                .collect();
            return Err(self.err(pos, format!("unknown field `{name}`"), known));
        };
        let info = kind.fields()[idx];
        if !self.uses.fields.contains(&(kind, idx)) {
            self.uses.fields.push((kind, idx));
        }
        if kind.is_entity() && !self.uses.entities.iter().any(|(k, _)| *k == kind) {
            self.uses.entities.push((kind, self.outer_pos(pos)));
        }
        self.uses.clock |= info.clock;
        Ok((Expr::Field(kind, idx), T::Ty(info.ty)))
    }

    fn outer_pos(&self, pos: usize) -> usize {
        self.outer.as_ref().map_or(pos, |(p, _)| *p)
    }

    fn macro_use(&mut self, pos: usize, name: &str, bare: bool) -> Result<(Expr, T), RuleError> {
        let Some(body) = macros::body(name) else {
            let message = if bare {
                format!("unknown name `{name}`: fields are written entity.field (device.uptime), macros macros.name or name")
            } else {
                format!("unknown macro `{name}`")
            };
            return Err(self.err(pos, message, macros::names()));
        };
        if self.depth >= MAX_MACRO_DEPTH {
            return Err(self.err(pos, format!("macro `{name}` nests too deeply"), Vec::new()));
        }
        // The body is compiled with its own text (its offsets are its own) into the
        // same `uses`; an error inside it is reported at this use.
        let mut inner = Compiler {
            src: &body,
            uses: std::mem::take(&mut self.uses),
            depth: self.depth + 1,
            outer: Some((self.outer_pos(pos), name.to_string())),
        };
        let result = parse(&body).and_then(|n| inner.node(&n));
        self.uses = std::mem::take(&mut inner.uses);
        result.map_err(|e| self.err(pos, format!("in macro `{name}`: {}", e.message), e.known))
    }
}

/// What to call a node in a type error: a field by its name, else its type.
fn describe(n: &Node, t: T) -> String {
    match &n.ast {
        Ast::Name(name) => format!("`{name}` ({})", t.name()),
        _ => format!("a {}", t.name()),
    }
}

fn coerce(e: &mut Expr, t: &mut T, other: T) {
    match (&*e, other) {
        (Expr::Num(v), T::Ty(Ty::Bool)) if *v == 0.0 || *v == 1.0 => {
            *e = Expr::Bool(*v == 1.0);
            *t = other;
        }
        (Expr::Str(s), T::Ty(Ty::Num)) => {
            if let Ok(v) = s.trim().parse::<f64>() {
                *e = Expr::Num(v);
                *t = other;
            }
        }
        _ => {}
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
