//! A small, safe evaluator for the MVEL subset used in UI specs (`requiredOn`, `visible`) and biometric
//! `validationExpr`s.
//!
//! Grammar (whitespace between tokens is ignored):
//! ```text
//! or      := and ( "||" and )*
//! and     := unary ( "&&" unary )*
//! unary   := "!" unary | cmp
//! cmp     := primary ( ("==" | "!=") primary )?
//! primary := "(" or ")" | string | integer | "true" | "false" | "null"
//!          | "identity.get(" string ")" | identifier
//! ```
//! Strings use single or double quotes without escapes. Expressions are limited to 1024 characters and a
//! nesting depth of 32, so a hostile configuration cannot exhaust the stack.
//!
//! ```
//! use tessera_station::expr::{Expr, Value, Vars};
//! struct V;
//! impl Vars for V {
//!     fn field(&self, name: &str) -> Value { if name == "ageGroup" { Value::Str("INFANT".into()) } else { Value::Null } }
//!     fn ident(&self, _: &str) -> Option<Value> { None }
//! }
//! let e = Expr::parse("identity.get('ageGroup') == 'INFANT' || identity.get('ageGroup') == 'MINOR'").unwrap();
//! assert!(e.eval(&V).unwrap());
//! ```

use crate::error::{Result, StationError};

const MAX_LEN: usize = 1024;
const MAX_DEPTH: usize = 32;

/// A value during evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Absent.
    Null,
    /// Boolean.
    Bool(bool),
    /// Integer.
    Int(i64),
    /// String.
    Str(String),
}

impl Value {
    fn truthy(&self) -> bool {
        match self {
            Self::Null => false,
            Self::Bool(b) => *b,
            Self::Int(i) => *i != 0,
            Self::Str(s) => !s.is_empty(),
        }
    }
}

/// Supplies values to an expression.
pub trait Vars {
    /// The value of `identity.get(name)`.
    fn field(&self, name: &str) -> Value;
    /// The value of a bare identifier, or `None` if the identifier is unknown (an evaluation error).
    fn ident(&self, name: &str) -> Option<Value>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Lit(Value),
    Field(String),
    Ident(String),
    Not(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Eq(Box<Node>, Box<Node>),
    Ne(Box<Node>, Box<Node>),
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    text: String,
    root: Node,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    LParen,
    RParen,
    AndAnd,
    OrOr,
    Bang,
    EqEq,
    NotEq,
    Str(String),
    Int(i64),
    Ident(String),
}

fn err(text: &str, position: usize, detail: impl Into<String>) -> StationError {
    StationError::Expression {
        expr: text.to_owned(),
        position,
        detail: detail.into(),
    }
}

fn lex(text: &str) -> Result<Vec<(usize, Tok)>> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&(pos, c)) = chars.get(i) {
        let next = chars.get(i + 1).map(|&(_, c)| c);
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                out.push((pos, Tok::LParen));
                i += 1;
            }
            ')' => {
                out.push((pos, Tok::RParen));
                i += 1;
            }
            '&' if next == Some('&') => {
                out.push((pos, Tok::AndAnd));
                i += 2;
            }
            '|' if next == Some('|') => {
                out.push((pos, Tok::OrOr));
                i += 2;
            }
            '=' if next == Some('=') => {
                out.push((pos, Tok::EqEq));
                i += 2;
            }
            '!' if next == Some('=') => {
                out.push((pos, Tok::NotEq));
                i += 2;
            }
            '!' => {
                out.push((pos, Tok::Bang));
                i += 1;
            }
            '\'' | '"' => {
                let quote = c;
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(err(text, pos, "unterminated string")),
                        Some(&(_, q)) if q == quote => {
                            i += 1;
                            break;
                        }
                        Some(&(_, ch)) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push((pos, Tok::Str(s)));
            }
            d if d.is_ascii_digit() => {
                let mut s = String::new();
                while let Some(&(_, ch)) = chars.get(i).filter(|(_, ch)| ch.is_ascii_digit()) {
                    s.push(ch);
                    i += 1;
                }
                let n = s.parse().map_err(|_| err(text, pos, "integer too large"))?;
                out.push((pos, Tok::Int(n)));
            }
            a if a.is_ascii_alphabetic() || a == '_' => {
                let mut s = String::new();
                while let Some(&(_, ch)) = chars
                    .get(i)
                    .filter(|(_, ch)| ch.is_ascii_alphanumeric() || *ch == '_' || *ch == '.')
                {
                    s.push(ch);
                    i += 1;
                }
                out.push((pos, Tok::Ident(s)));
            }
            other => return Err(err(text, pos, format!("unexpected character {other:?}"))),
        }
    }
    Ok(out)
}

struct Parser<'a> {
    text: &'a str,
    toks: Vec<(usize, Tok)>,
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|(_, t)| t)
    }
    fn pos(&self) -> usize {
        self.toks.get(self.i).map_or(self.text.len(), |(p, _)| *p)
    }
    fn bump(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.i).map(|(_, t)| t.clone());
        self.i += 1;
        t
    }
    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(err(
                self.text,
                self.pos(),
                format!("nested deeper than {MAX_DEPTH}"),
            ));
        }
        Ok(())
    }
    fn or(&mut self) -> Result<Node> {
        self.enter()?;
        let mut l = self.and()?;
        while self.peek() == Some(&Tok::OrOr) {
            self.bump();
            let r = self.and()?;
            l = Node::Or(Box::new(l), Box::new(r));
        }
        self.depth -= 1;
        Ok(l)
    }
    fn and(&mut self) -> Result<Node> {
        let mut l = self.unary()?;
        while self.peek() == Some(&Tok::AndAnd) {
            self.bump();
            let r = self.unary()?;
            l = Node::And(Box::new(l), Box::new(r));
        }
        Ok(l)
    }
    fn unary(&mut self) -> Result<Node> {
        if self.peek() == Some(&Tok::Bang) {
            self.bump();
            self.enter()?;
            let n = self.unary()?;
            self.depth -= 1;
            return Ok(Node::Not(Box::new(n)));
        }
        self.cmp()
    }
    fn cmp(&mut self) -> Result<Node> {
        let l = self.primary()?;
        match self.peek() {
            Some(Tok::EqEq) => {
                self.bump();
                Ok(Node::Eq(Box::new(l), Box::new(self.primary()?)))
            }
            Some(Tok::NotEq) => {
                self.bump();
                Ok(Node::Ne(Box::new(l), Box::new(self.primary()?)))
            }
            _ => Ok(l),
        }
    }
    fn primary(&mut self) -> Result<Node> {
        let pos = self.pos();
        match self.bump() {
            Some(Tok::LParen) => {
                let n = self.or()?;
                match self.bump() {
                    Some(Tok::RParen) => Ok(n),
                    _ => Err(err(self.text, pos, "missing closing parenthesis")),
                }
            }
            Some(Tok::Str(s)) => Ok(Node::Lit(Value::Str(s))),
            Some(Tok::Int(n)) => Ok(Node::Lit(Value::Int(n))),
            Some(Tok::Ident(id)) => match id.as_str() {
                "true" => Ok(Node::Lit(Value::Bool(true))),
                "false" => Ok(Node::Lit(Value::Bool(false))),
                "null" => Ok(Node::Lit(Value::Null)),
                "identity.get" => {
                    let ok_open = self.bump() == Some(Tok::LParen);
                    let name = self.bump();
                    let ok_close = self.bump() == Some(Tok::RParen);
                    match (ok_open, name, ok_close) {
                        (true, Some(Tok::Str(n)), true) => Ok(Node::Field(n)),
                        _ => Err(err(self.text, pos, "expected identity.get('fieldName')")),
                    }
                }
                other if other.contains('.') => Err(err(
                    self.text,
                    pos,
                    format!("{other} is not supported; only identity.get('name') is"),
                )),
                _ => Ok(Node::Ident(id)),
            },
            Some(t) => Err(err(self.text, pos, format!("unexpected {t:?}"))),
            None => Err(err(self.text, pos, "unexpected end of expression")),
        }
    }
}

impl Expr {
    /// Parses an expression.
    pub fn parse(text: &str) -> Result<Self> {
        if text.len() > MAX_LEN {
            return Err(err(
                &text.chars().take(64).collect::<String>(),
                MAX_LEN,
                "longer than 1024 characters",
            ));
        }
        let toks = lex(text)?;
        let mut p = Parser {
            text,
            toks,
            i: 0,
            depth: 0,
        };
        let root = p.or()?;
        if p.i < p.toks.len() {
            return Err(err(text, p.pos(), "unexpected text after the expression"));
        }
        Ok(Self {
            text: text.to_owned(),
            root,
        })
    }

    /// The source text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Names of the bare identifiers the expression uses.
    pub fn identifiers(&self) -> Vec<String> {
        fn walk(n: &Node, out: &mut Vec<String>) {
            match n {
                Node::Ident(s) => out.push(s.clone()),
                Node::Not(a) => walk(a, out),
                Node::And(a, b) | Node::Or(a, b) | Node::Eq(a, b) | Node::Ne(a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
                Node::Lit(_) | Node::Field(_) => {}
            }
        }
        let mut v = Vec::new();
        walk(&self.root, &mut v);
        v
    }

    /// Evaluates to a boolean.
    pub fn eval(&self, vars: &dyn Vars) -> Result<bool> {
        Ok(self.value(&self.root, vars)?.truthy())
    }

    fn value(&self, n: &Node, vars: &dyn Vars) -> Result<Value> {
        Ok(match n {
            Node::Lit(v) => v.clone(),
            Node::Field(f) => vars.field(f),
            Node::Ident(id) => vars
                .ident(id)
                .ok_or_else(|| err(&self.text, 0, format!("unknown identifier {id}")))?,
            Node::Not(a) => Value::Bool(!self.value(a, vars)?.truthy()),
            Node::And(a, b) => Value::Bool(self.value(a, vars)?.truthy() && self.value(b, vars)?.truthy()),
            Node::Or(a, b) => Value::Bool(self.value(a, vars)?.truthy() || self.value(b, vars)?.truthy()),
            Node::Eq(a, b) => Value::Bool(self.value(a, vars)? == self.value(b, vars)?),
            Node::Ne(a, b) => Value::Bool(self.value(a, vars)? != self.value(b, vars)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    struct M(BTreeMap<&'static str, Value>);
    impl Vars for M {
        fn field(&self, name: &str) -> Value {
            self.0.get(name).cloned().unwrap_or(Value::Null)
        }
        fn ident(&self, name: &str) -> Option<Value> {
            self.0.get(name).cloned()
        }
    }

    fn vars() -> M {
        M(BTreeMap::from([
            ("ageGroup", Value::Str("MINOR".into())),
            ("face", Value::Bool(true)),
            ("leftEye", Value::Bool(false)),
            ("rightEye", Value::Bool(true)),
        ]))
    }

    #[test]
    fn evaluates_the_subset() {
        let v = vars();
        let t = |s: &str| Expr::parse(s).unwrap().eval(&v).unwrap();
        assert!(t("identity.get('ageGroup') == 'MINOR'"));
        assert!(t("identity.get(\"ageGroup\") != 'ADULT'"));
        assert!(!t("identity.get('ageGroup') == 'INFANT'"));
        assert!(t(
            "identity.get('ageGroup') == 'INFANT' || identity.get('ageGroup') == 'MINOR'"
        ));
        assert!(t("face && (leftEye || rightEye)"));
        assert!(!t("face && leftEye"));
        assert!(t("!leftEye"));
        assert!(t("identity.get('missing') == null"));
        assert!(t("true && !false"));
        assert!(t("1 == 1"));
    }

    #[test]
    fn rejects_what_it_does_not_support_with_a_position() {
        for (s, pos) in [
            ("identity.isNew", 0),
            ("a &", 2),
            ("(a", 0),
            ("a b", 2),
            ("'open", 0),
            ("a = b", 2),
            ("identity.get(ageGroup)", 0),
            ("", 0),
        ] {
            match Expr::parse(s) {
                Err(StationError::Expression { position, .. }) => assert_eq!(position, pos, "{s}"),
                other => panic!("{s}: {other:?}"),
            }
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let s = format!("{}a{}", "(".repeat(200), ")".repeat(200));
        assert!(Expr::parse(&s).is_err());
        let s = format!("{}a", "!".repeat(200));
        assert!(Expr::parse(&s).is_err());
    }

    #[test]
    fn unknown_identifier_is_an_error_at_evaluation() {
        let e = Expr::parse("nose").unwrap();
        assert!(e.eval(&vars()).is_err());
        assert_eq!(e.identifiers(), vec!["nose".to_string()]);
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC{0,200}") {
            let _ = Expr::parse(&s);
        }

        #[test]
        fn parser_never_panics_on_expression_like_input(s in "[a-z()!&|=' ]{0,120}") {
            if let Ok(e) = Expr::parse(&s) {
                let _ = e.eval(&vars());
            }
        }
    }
}
