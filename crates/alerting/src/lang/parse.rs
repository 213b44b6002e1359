//! Lexer and parser of the rule language: text to an untyped syntax tree with the byte
//! offset of every node (errors point at it). Resolution and type checks are in `compile`.

use super::RuleError;

/// Binary operators, loosest binding first: `||`, `&&`, comparisons, `+ -`, `* /`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Match,
    NotMatch,
    Add,
    Sub,
    Mul,
    Div,
}

impl BinOp {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BinOp::Or => "||",
            BinOp::And => "&&",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Match => "~",
            BinOp::NotMatch => "!~",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
        }
    }

    fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq
                | BinOp::Ne
                | BinOp::Lt
                | BinOp::Le
                | BinOp::Gt
                | BinOp::Ge
                | BinOp::Match
                | BinOp::NotMatch
        )
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    Num(f64),
    Str(String),
    /// A field (`ports.ifName`, `%devices.status`) or a macro (`macros.port_down`,
    /// `device_down`), `%` stripped.
    Name(String),
    True,
    False,
    Null,
    Op(BinOp),
    Not,
    LParen,
    RParen,
    End,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Ast {
    Num(f64),
    /// A string literal (also the pattern of `~`).
    Str(String),
    Bool(bool),
    Null,
    Name(String),
    Not(Box<Node>),
    Neg(Box<Node>),
    Bin(BinOp, Box<Node>, Box<Node>),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Node {
    /// Byte offset in the source.
    pub pos: usize,
    pub ast: Ast,
}

/// Deeper nesting than this is refused (a rule is a line or two; this bounds recursion).
const MAX_DEPTH: usize = 64;

fn err(src: &str, pos: usize, message: impl Into<String>) -> RuleError {
    RuleError::new(src, pos, message.into(), Vec::new())
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The source as tokens with their byte offsets; the last is [`Tok::End`].
pub(crate) fn lex(src: &str) -> Result<Vec<(usize, Tok)>, RuleError> {
    let mut out = Vec::new();
    let b = src.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let two = src.get(i..i + 2).unwrap_or("");
        let op2 = match two {
            "==" => Some(Tok::Op(BinOp::Eq)),
            "!=" | "<>" => Some(Tok::Op(BinOp::Ne)),
            "<=" => Some(Tok::Op(BinOp::Le)),
            ">=" => Some(Tok::Op(BinOp::Ge)),
            "=~" => Some(Tok::Op(BinOp::Match)),
            "!~" => Some(Tok::Op(BinOp::NotMatch)),
            "&&" => Some(Tok::Op(BinOp::And)),
            "||" => Some(Tok::Op(BinOp::Or)),
            _ => None,
        };
        if let Some(t) = op2 {
            out.push((start, t));
            i += 2;
            continue;
        }
        let op1 = match c {
            '=' => Some(Tok::Op(BinOp::Eq)),
            '<' => Some(Tok::Op(BinOp::Lt)),
            '>' => Some(Tok::Op(BinOp::Gt)),
            '~' => Some(Tok::Op(BinOp::Match)),
            '+' => Some(Tok::Op(BinOp::Add)),
            '-' => Some(Tok::Op(BinOp::Sub)),
            '*' => Some(Tok::Op(BinOp::Mul)),
            '/' => Some(Tok::Op(BinOp::Div)),
            '!' => Some(Tok::Not),
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            _ => None,
        };
        if let Some(t) = op1 {
            out.push((start, t));
            i += 1;
            continue;
        }
        if c == '"' || c == '\'' {
            let (s, next) = lex_string(src, i)?;
            out.push((start, Tok::Str(s)));
            i = next;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let (n, next) = lex_number(src, i)?;
            out.push((start, Tok::Num(n)));
            i = next;
            continue;
        }
        if c == '%' || is_name_start(c) {
            let (tok, next) = lex_name(src, i)?;
            out.push((start, tok));
            i = next;
            continue;
        }
        let ch = src[i..].chars().next().unwrap_or(c);
        return Err(err(src, i, format!("unexpected character {ch:?}")));
    }
    out.push((src.len(), Tok::End));
    Ok(out)
}

/// A quoted string from `i` (at the quote): `\"`, `\'` and `\\` are escapes, any other
/// backslash stays (regexes keep `\d`, `\.`).
fn lex_string(src: &str, i: usize) -> Result<(String, usize), RuleError> {
    let quote = src[i..].chars().next().unwrap_or('"');
    let mut s = String::new();
    let mut chars = src[i + 1..].char_indices();
    while let Some((off, ch)) = chars.next() {
        if ch == quote {
            return Ok((s, i + 1 + off + 1));
        }
        if ch == '\\' {
            match chars.next() {
                Some((_, e)) if e == quote || e == '\\' => s.push(e),
                Some((_, e)) => {
                    s.push('\\');
                    s.push(e);
                }
                None => break,
            }
        } else {
            s.push(ch);
        }
    }
    Err(err(src, i, "string not closed"))
}

fn lex_number(src: &str, i: usize) -> Result<(f64, usize), RuleError> {
    let b = src.as_bytes();
    let mut j = i;
    while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'.') {
        j += 1;
    }
    if j < b.len() && (b[j] == b'e' || b[j] == b'E') {
        let mut k = j + 1;
        if k < b.len() && (b[k] == b'+' || b[k] == b'-') {
            k += 1;
        }
        if k < b.len() && b[k].is_ascii_digit() {
            j = k;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
        }
    }
    if j < b.len() && is_name_char(b[j] as char) {
        return Err(err(
            src,
            i,
            "a number must not run into a name (write `5 * 60`, not `5m`)",
        ));
    }
    src[i..j]
        .parse::<f64>()
        .map(|n| (n, j))
        .map_err(|_| err(src, i, format!("bad number {:?}", &src[i..j])))
}

fn lex_name(src: &str, i: usize) -> Result<(Tok, usize), RuleError> {
    let b = src.as_bytes();
    let mut j = i;
    if b[j] == b'%' {
        j += 1;
    }
    let name_start = j;
    loop {
        if j >= b.len() || !is_name_start(b[j] as char) {
            return Err(err(src, j, "expected a name"));
        }
        while j < b.len() && is_name_char(b[j] as char) {
            j += 1;
        }
        if j + 1 < b.len() && b[j] == b'.' && is_name_start(b[j + 1] as char) {
            j += 1;
            continue;
        }
        break;
    }
    let name = &src[name_start..j];
    let tok = if b[i] == b'%' || name.contains('.') {
        Tok::Name(name.to_string())
    } else {
        match name.to_ascii_lowercase().as_str() {
            "and" => Tok::Op(BinOp::And),
            "or" => Tok::Op(BinOp::Or),
            "not" => Tok::Not,
            "true" => Tok::True,
            "false" => Tok::False,
            "null" => Tok::Null,
            _ => Tok::Name(name.to_string()),
        }
    };
    Ok((tok, j))
}

/// Parses a whole expression.
pub(crate) fn parse(src: &str) -> Result<Node, RuleError> {
    let toks = lex(src)?;
    let mut p = Parser {
        src,
        toks,
        at: 0,
        depth: 0,
    };
    let node = p.expr(0)?;
    match p.peek() {
        (_, Tok::End) => Ok(node),
        (pos, Tok::RParen) => Err(err(src, pos, "`)` without its `(`")),
        (pos, _) => Err(err(
            src,
            pos,
            "expected an operator (&&, ||, ==, ...) or the end",
        )),
    }
}

struct Parser<'s> {
    src: &'s str,
    toks: Vec<(usize, Tok)>,
    at: usize,
    depth: usize,
}

fn precedence(op: BinOp) -> u8 {
    match op {
        BinOp::Or => 1,
        BinOp::And => 2,
        BinOp::Add | BinOp::Sub => 4,
        BinOp::Mul | BinOp::Div => 5,
        _ => 3,
    }
}

impl Parser<'_> {
    fn peek(&self) -> (usize, Tok) {
        self.toks
            .get(self.at)
            .cloned()
            .unwrap_or((self.src.len(), Tok::End))
    }

    fn bump(&mut self) -> (usize, Tok) {
        let t = self.peek();
        self.at += 1;
        t
    }

    /// Precedence climbing: operators binding tighter than `min`.
    fn expr(&mut self, min: u8) -> Result<Node, RuleError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(err(self.src, self.peek().0, "expression nested too deeply"));
        }
        let mut left = self.unary()?;
        while let (pos, Tok::Op(op)) = self.peek() {
            let prec = precedence(op);
            if prec <= min {
                break;
            }
            self.bump();
            let right = self.expr(prec)?;
            if op.is_comparison() {
                if let (p2, Tok::Op(next)) = self.peek() {
                    if next.is_comparison() {
                        return Err(err(
                            self.src,
                            p2,
                            "comparisons do not chain: join them with && or ||",
                        ));
                    }
                }
            }
            left = Node {
                pos,
                ast: Ast::Bin(op, Box::new(left), Box::new(right)),
            };
        }
        self.depth -= 1;
        Ok(left)
    }

    fn unary(&mut self) -> Result<Node, RuleError> {
        let (pos, tok) = self.bump();
        let ast = match tok {
            Tok::Num(n) => Ast::Num(n),
            Tok::Str(s) => Ast::Str(s),
            Tok::True => Ast::Bool(true),
            Tok::False => Ast::Bool(false),
            Tok::Null => Ast::Null,
            Tok::Name(n) => Ast::Name(n),
            // `!` binds tighter than comparisons (`!a == b` is `(!a) == b`) in C; in rules
            // `!ports.ifName ~ "x"` means the negated match, so `!` takes a comparison.
            Tok::Not => Ast::Not(Box::new(self.expr(2)?)),
            Tok::Op(BinOp::Sub) => Ast::Neg(Box::new(self.expr(5)?)),
            Tok::LParen => {
                let inner = self.expr(0)?;
                match self.bump() {
                    (_, Tok::RParen) => return Ok(inner),
                    (p, _) => return Err(err(self.src, p, "expected `)`")),
                }
            }
            Tok::RParen => return Err(err(self.src, pos, "expected a value before `)`")),
            Tok::End => return Err(err(self.src, pos, "expected a value, found the end")),
            Tok::Op(op) => {
                return Err(err(
                    self.src,
                    pos,
                    format!("expected a value before `{}`", op.as_str()),
                ))
            }
        };
        Ok(Node { pos, ast })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(n: &Node) -> String {
        match &n.ast {
            Ast::Num(v) => format!("{v}"),
            Ast::Str(s) => format!("{s:?}"),
            Ast::Bool(b) => format!("{b}"),
            Ast::Null => "null".into(),
            Ast::Name(s) => s.clone(),
            Ast::Not(a) => format!("!{}", show(a)),
            Ast::Neg(a) => format!("-{}", show(a)),
            Ast::Bin(op, a, b) => format!("({} {} {})", show(a), op.as_str(), show(b)),
        }
    }

    fn p(src: &str) -> String {
        match parse(src) {
            Ok(n) => show(&n),
            Err(e) => format!("error at {}: {}", e.column, e.message),
        }
    }

    #[test]
    fn precedence_and_associativity() {
        assert_eq!(
            p(
                r#"ports.ifOperStatus == "down" && ports.ifAdminStatus == "up" || device.uptime < 300"#
            ),
            r#"(((ports.ifOperStatus == "down") && (ports.ifAdminStatus == "up")) || (device.uptime < 300))"#
        );
        assert_eq!(p("a.b > 3 * c.d + 1"), "(a.b > ((3 * c.d) + 1))");
        assert_eq!(p("1 - 2 - 3"), "((1 - 2) - 3)");
        assert_eq!(
            p("!a.b ~ 'x' and not (c.d or e.f)"),
            r#"(!(a.b ~ "x") && !(c.d || e.f))"#
        );
        assert_eq!(p("%devices.status = 1"), "(devices.status == 1)");
        assert_eq!(p("x.y <> -2.5e1"), "(x.y != -25)");
        assert_eq!(p(r#"x.y !~ "^\d+\.\"q\"""#), r#"(x.y !~ "^\\d+\\.\"q\"")"#);
    }

    #[test]
    fn errors_point_at_the_offending_column() {
        assert_eq!(p("a.b == "), "error at 8: expected a value, found the end");
        assert_eq!(p("(a.b == 1"), "error at 10: expected `)`");
        assert_eq!(p("a.b == 1)"), "error at 9: `)` without its `(`");
        assert_eq!(p("a.b == 'x"), "error at 8: string not closed");
        assert_eq!(p("a.b # 1"), "error at 5: unexpected character '#'");
        assert_eq!(
            p("1 < a.b < 3"),
            "error at 9: comparisons do not chain: join them with && or ||"
        );
        assert_eq!(
            p("a.b == 5m"),
            "error at 8: a number must not run into a name (write `5 * 60`, not `5m`)"
        );
        assert_eq!(
            p("a.b 1"),
            "error at 5: expected an operator (&&, ||, ==, ...) or the end"
        );
        assert_eq!(p("&& a.b"), "error at 1: expected a value before `&&`");
        // Columns count characters, not bytes.
        assert_eq!(p("'é' ==="), "error at 7: expected a value before `==`");
        let deep = format!("{}1{}", "(".repeat(100), ")".repeat(100));
        assert!(p(&deep).contains("nested too deeply"));
    }
}
