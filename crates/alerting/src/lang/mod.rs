//! The rule expression language (docs/alerting.md has the user's reference).
//!
//! ```text
//! ports.ifOperStatus == "down" && ports.ifAdminStatus == "up"
//! storage.usage_perc > 90
//! macros.device_down                     (also %macros.device_down = 1, or device_down)
//! device.last_polled_age > 3 * device.poll_interval
//! ```
//!
//! - Grammar, loosest first: `||` (`or`), `&&` (`and`), `!` (`not`), comparisons
//!   (`==`/`=`, `!=`/`<>`, `<`, `<=`, `>`, `>=`, `~`/`=~` regex match, `!~`), `+ -`, `* /`,
//!   unary `-`, parentheses. Values: numbers, `"strings"`/`'strings'`, `true`, `false`,
//!   `null`, `now` (Unix seconds), fields `entity.field` (an optional `%` as LibreNMS
//!   writes them), macros [`macros::MACROS`].
//! - Types are checked when compiling: a rule that does not parse, names an unknown
//!   field, or compares a string with a number is refused with a [`RuleError`] (column,
//!   message, the names that are known).
//! - A rule names fields of at most one entity kind besides `device` and `icmp`; it is
//!   evaluated per row of that kind (each matching row is a fault), else once per device.
//!
//! Entry point: [`CompiledExpr::compile`]; evaluation is [`crate::rule::evaluate`].

mod compile;
mod eval;
pub mod macros;
mod parse;

use std::fmt;

use crate::snapshot::{Clock, Kind, Snapshot, Val};

/// Why a rule was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct RuleError {
    /// Byte offset of the error in the rule text.
    pub offset: usize,
    /// 1-based column (characters).
    pub column: usize,
    pub message: String,
    /// The names that would have been accepted there (fields, entities or macros).
    pub known: Vec<String>,
}

impl RuleError {
    pub(crate) fn new(src: &str, offset: usize, message: String, known: Vec<String>) -> Self {
        let offset = offset.min(src.len());
        let column = src.get(..offset).map_or(offset, |s| s.chars().count()) + 1;
        RuleError {
            offset,
            column,
            message,
            known,
        }
    }

    /// The rule with a caret under the error, then the message (for a CLI or an API).
    pub fn render(&self, src: &str) -> String {
        format!(
            "{src}\n{}^\n{self}",
            " ".repeat(self.column.saturating_sub(1))
        )
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)?;
        if !self.known.is_empty() {
            write!(f, "; known: {}", self.known.join(", "))?;
        }
        Ok(())
    }
}

/// A rule expression, compiled once and evaluated many times.
#[derive(Clone, Debug)]
pub struct CompiledExpr {
    source: String,
    expr: compile::Expr,
    fields: Vec<(Kind, usize)>,
    entity: Option<Kind>,
    clock: bool,
}

impl CompiledExpr {
    /// Parses, resolves and type-checks `src`.
    pub fn compile(src: &str) -> Result<CompiledExpr, RuleError> {
        let mut c = compile::Compiler::new(src);
        let expr = c.rule()?;
        let uses = c.uses;
        if let [(a, _), (b, pos), ..] = uses.entities.as_slice() {
            return Err(RuleError::new(
                src,
                *pos,
                format!(
                    "a rule looks at one kind of entity (besides device and icmp): it names {} and {}; write two rules",
                    a.as_str(),
                    b.as_str()
                ),
                Vec::new(),
            ));
        }
        Ok(CompiledExpr {
            source: src.to_string(),
            expr,
            fields: uses.fields,
            entity: uses.entities.first().map(|(k, _)| *k),
            clock: uses.clock,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The entity kind the rule is evaluated over; `None`: once per device.
    pub fn entity_kind(&self) -> Option<Kind> {
        self.entity
    }

    /// True when the result depends on the time of evaluation (`now`, `past_5m`,
    /// `device.last_polled_age`): the master's time pass evaluates such rules.
    pub fn uses_clock(&self) -> bool {
        self.clock
    }

    /// The fields the rule reads, as `entity.field`, in first-use order.
    pub fn field_names(&self) -> Vec<String> {
        self.fields
            .iter()
            .map(|(k, i)| {
                let name = k.field(*i).map_or("?", |f| f.name);
                format!("{}.{name}", k.as_str())
            })
            .collect()
    }

    pub(crate) fn fields(&self) -> &[(Kind, usize)] {
        &self.fields
    }

    /// Whether the rule holds for entity row `row` (device rules: any row).
    #[inline]
    pub(crate) fn test(&self, snap: &Snapshot<'_>, row: usize, c: &Clock) -> bool {
        eval::test(&self.expr, snap, row, c)
    }

    /// The value of a field for row `row` (for a match's details).
    pub(crate) fn value<'a>(
        &self,
        snap: &Snapshot<'a>,
        field: (Kind, usize),
        row: usize,
        c: &Clock,
    ) -> Val<'a> {
        snap.get(field.0, field.1, row, c)
    }
}

#[cfg(test)]
mod tests;
