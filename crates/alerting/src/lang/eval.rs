//! Evaluation of a compiled expression over one row of a snapshot: a walk of the tree
//! that reads fields through the catalog's getters and allocates nothing.

use super::compile::Expr;
use super::parse::BinOp;
use crate::snapshot::{Clock, Snapshot, Val};

/// The value of `e` for entity row `row` (ignored by device and icmp fields).
pub(crate) fn eval<'a>(e: &'a Expr, snap: &Snapshot<'a>, row: usize, c: &Clock) -> Val<'a> {
    match e {
        Expr::Num(v) => Val::Num(*v),
        Expr::Str(s) => Val::Str(s),
        Expr::Bool(b) => Val::Bool(*b),
        Expr::Null => Val::Null,
        Expr::Now => Val::Num(c.now),
        Expr::Field(kind, idx) => snap.get(*kind, *idx, row, c),
        Expr::Not(a) => match eval(a, snap, row, c) {
            Val::Bool(b) => Val::Bool(!b),
            // A null condition is false, and so is its negation: `!ports.deleted` for a
            // port without the fact does not match either way.
            _ => Val::Null,
        },
        Expr::And(a, b) => Val::Bool(test(a, snap, row, c) && test(b, snap, row, c)),
        Expr::Or(a, b) => Val::Bool(test(a, snap, row, c) || test(b, snap, row, c)),
        Expr::Cmp(op, a, b) => {
            Val::Bool(compare(*op, eval(a, snap, row, c), eval(b, snap, row, c)))
        }
        Expr::Regex { arg, re, negate } => {
            let hit = matches!(eval(arg, snap, row, c), Val::Str(s) if re.is_match(s));
            Val::Bool(hit != *negate)
        }
        Expr::IsNull { arg, negate } => {
            Val::Bool((eval(arg, snap, row, c) == Val::Null) != *negate)
        }
        Expr::Arith(op, a, b) => match (eval(a, snap, row, c), eval(b, snap, row, c)) {
            (Val::Num(x), Val::Num(y)) => {
                let v = match op {
                    BinOp::Add => x + y,
                    BinOp::Sub => x - y,
                    BinOp::Mul => x * y,
                    _ => x / y,
                };
                // Division by zero has no value (a port without a speed has no usage).
                if v.is_finite() {
                    Val::Num(v)
                } else {
                    Val::Null
                }
            }
            _ => Val::Null,
        },
        Expr::Neg(a) => match eval(a, snap, row, c) {
            Val::Num(x) => Val::Num(-x),
            _ => Val::Null,
        },
    }
}

/// `e` as a condition: only `true` is true (null is not).
#[inline]
pub(crate) fn test(e: &Expr, snap: &Snapshot<'_>, row: usize, c: &Clock) -> bool {
    matches!(eval(e, snap, row, c), Val::Bool(true))
}

/// `==` is equality (strings ASCII case-insensitive, null only equals null) and `!=` its
/// negation; ordering compares numbers and is false when either side is null.
fn compare(op: BinOp, a: Val<'_>, b: Val<'_>) -> bool {
    let eq = || match (a, b) {
        (Val::Num(x), Val::Num(y)) => x == y,
        (Val::Str(x), Val::Str(y)) => x.eq_ignore_ascii_case(y),
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Null, Val::Null) => true,
        _ => false,
    };
    match op {
        BinOp::Eq => eq(),
        BinOp::Ne => !eq(),
        _ => match (a, b) {
            (Val::Num(x), Val::Num(y)) => match op {
                BinOp::Lt => x < y,
                BinOp::Le => x <= y,
                BinOp::Gt => x > y,
                _ => x >= y,
            },
            _ => false,
        },
    }
}
