//! The record list language of Corteza's compose API, as the fake compose
//! server takes it: `query` (comparisons of `id`, `created_at`,
//! `updated_at` and `deleted_at` with `=`, `!=`, `<`, `<=`, `>`, `>=`, `IS
//! [NOT] NULL`, joined by `AND`, `OR` and parentheses), `sort` (attributes
//! with `ASC`/`DESC`, the id always last, as Corteza's DAL adds the primary
//! key) and keyset `pageCursor`s shaped as Corteza's (base64 of
//! `{"K": sort keys, "V": the last row's values, "D": descending}`).
//!
//! This is a superset of the forms the tests' fake
//! (`tests/integration/common/fake_corteza/`) takes, so whatever list
//! fedsync sends there works here. A comparison of an unset time is false
//! (SQL's NULL); sorted ascending, unset times come last (PostgreSQL's
//! default), descending first. Times compare to the second, as Corteza's.

use std::cmp::Ordering;

use base64::Engine;
use serde_json::{Value, json};

/// A record attribute a query compares or a list sorts by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Column {
    Id,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

impl Column {
    fn parse(name: &str) -> Option<Column> {
        match name {
            "id" | "ID" | "recordID" | "record_id" => Some(Column::Id),
            "created_at" | "createdAt" => Some(Column::CreatedAt),
            "updated_at" | "updatedAt" => Some(Column::UpdatedAt),
            "deleted_at" | "deletedAt" => Some(Column::DeletedAt),
            _ => None,
        }
    }

    /// As Corteza names it in `filter.sort` and in a cursor.
    fn attribute(self) -> &'static str {
        match self {
            Column::Id => "ID",
            Column::CreatedAt => "createdAt",
            Column::UpdatedAt => "updatedAt",
            Column::DeletedAt => "deletedAt",
        }
    }
}

/// A row as queries see it: its id, and its times in seconds (`None`
/// when unset).
pub(super) trait Columns {
    fn column(&self, column: Column) -> Option<i64>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    Lt,
    Le,
    Eq,
    Ne,
    Ge,
    Gt,
}

/// A parsed `query`.
#[derive(Debug)]
pub(super) enum Expr {
    All,
    Compare(Column, Op, i64),
    IsNull(Column, bool),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

impl Expr {
    pub(super) fn matches(&self, row: &impl Columns) -> bool {
        match self {
            Expr::All => true,
            Expr::Compare(column, op, value) => row.column(*column).is_some_and(|v| {
                let o = v.cmp(value);
                match op {
                    Op::Lt => o.is_lt(),
                    Op::Le => o.is_le(),
                    Op::Eq => o.is_eq(),
                    Op::Ne => o.is_ne(),
                    Op::Ge => o.is_ge(),
                    Op::Gt => o.is_gt(),
                }
            }),
            Expr::IsNull(column, null) => row.column(*column).is_none() == *null,
            Expr::And(a, b) => a.matches(row) && b.matches(row),
            Expr::Or(a, b) => a.matches(row) || b.matches(row),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    Word(String),
    Op(Op),
    Text(String),
    Number(i64),
}

fn tokens(query: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = query.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
        match c {
            _ if c.is_whitespace() => i += 1,
            '(' | ')' => {
                out.push(if c == '(' { Token::Open } else { Token::Close });
                i += 1;
            }
            '\'' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '\'')
                    .ok_or("an unterminated string")?;
                out.push(Token::Text(chars[i + 1..i + 1 + end].iter().collect()));
                i += end + 2;
            }
            _ if [">=", "<=", "!=", "<>"].contains(&two.as_str()) => {
                out.push(Token::Op(match two.as_str() {
                    ">=" => Op::Ge,
                    "<=" => Op::Le,
                    _ => Op::Ne,
                }));
                i += 2;
            }
            '=' | '<' | '>' => {
                out.push(Token::Op(match c {
                    '=' => Op::Eq,
                    '<' => Op::Lt,
                    _ => Op::Gt,
                }));
                i += 1;
            }
            _ if c.is_ascii_digit() => {
                let len = chars[i..].iter().take_while(|c| c.is_ascii_digit()).count();
                let digits: String = chars[i..i + len].iter().collect();
                out.push(Token::Number(
                    digits.parse().map_err(|_| "a number too large")?,
                ));
                i += len;
            }
            _ if c.is_ascii_alphabetic() || c == '_' => {
                let len = chars[i..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                    .count();
                out.push(Token::Word(chars[i..i + len].iter().collect()));
                i += len;
            }
            other => return Err(format!("unexpected `{other}`")),
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        self.at += 1;
        self.tokens.get(self.at - 1).cloned()
    }

    fn keyword(&mut self, word: &str) -> bool {
        let found = matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word));
        if found {
            self.at += 1;
        }
        found
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.keyword("OR") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.atom()?;
        while self.keyword("AND") {
            left = Expr::And(Box::new(left), Box::new(self.atom()?));
        }
        Ok(left)
    }

    fn atom(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Token::Open) => {
                let inner = self.or()?;
                match self.next() {
                    Some(Token::Close) => Ok(inner),
                    _ => Err("a `(` without its `)`".into()),
                }
            }
            Some(Token::Word(name)) => {
                let column =
                    Column::parse(&name).ok_or_else(|| format!("unknown attribute `{name}`"))?;
                if self.keyword("IS") {
                    let not = self.keyword("NOT");
                    return if self.keyword("NULL") {
                        Ok(Expr::IsNull(column, !not))
                    } else {
                        Err("IS without NULL".into())
                    };
                }
                let Some(Token::Op(op)) = self.next() else {
                    return Err(format!("`{name}` is not compared"));
                };
                let value = match (column, self.next()) {
                    (Column::Id, Some(Token::Number(n))) => n,
                    (Column::Id, Some(Token::Text(t))) => t.parse().map_err(|_| "a bad id")?,
                    (_, Some(Token::Text(t))) => chrono::DateTime::parse_from_rfc3339(&t)
                        .map_err(|e| format!("`{t}` is not a time: {e}"))?
                        .timestamp(),
                    _ => return Err(format!("`{name}` is compared with no value")),
                };
                Ok(Expr::Compare(column, op, value))
            }
            other => Err(format!("unexpected {other:?}")),
        }
    }
}

/// A `query` parameter; empty selects everything.
pub(super) fn parse(query: &str) -> Result<Expr, String> {
    if query.trim().is_empty() {
        return Ok(Expr::All);
    }
    let mut parser = Parser {
        tokens: tokens(query)?,
        at: 0,
    };
    let expr = parser.or()?;
    match parser.peek() {
        None => Ok(expr),
        Some(extra) => Err(format!("unexpected {extra:?}")),
    }
}

/// A list's order: attributes, each ascending or descending; the id last.
pub(super) struct Sort(Vec<(Column, bool)>);

impl Sort {
    /// A `sort` parameter (`createdAt`, `updatedAt DESC, id`, empty: by id).
    pub(super) fn parse(sort: &str) -> Result<Sort, String> {
        let mut keys = Vec::new();
        for term in sort.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let mut words = term.split_whitespace();
            let name = words.next().unwrap_or_default();
            let column =
                Column::parse(name).ok_or_else(|| format!("unknown attribute \"{name}\""))?;
            let desc = match words.next() {
                None => false,
                Some(d) if d.eq_ignore_ascii_case("ASC") => false,
                Some(d) if d.eq_ignore_ascii_case("DESC") => true,
                Some(other) => return Err(format!("unknown direction \"{other}\"")),
            };
            keys.push((column, desc));
        }
        if !keys.iter().any(|(c, _)| *c == Column::Id) {
            let desc = keys.last().is_some_and(|(_, d)| *d);
            keys.push((Column::Id, desc));
        }
        Ok(Sort(keys))
    }

    /// As Corteza echoes it in `filter.sort` (`createdAt, ID`).
    pub(super) fn label(&self) -> String {
        let terms: Vec<String> = self
            .0
            .iter()
            .map(|(c, desc)| format!("{}{}", c.attribute(), if *desc { " DESC" } else { "" }))
            .collect();
        terms.join(", ")
    }

    pub(super) fn key(&self, row: &impl Columns) -> Vec<Option<i64>> {
        self.0.iter().map(|(c, _)| row.column(*c)).collect()
    }

    /// The order of two keys: unset last ascending, first descending.
    pub(super) fn compare(&self, a: &[Option<i64>], b: &[Option<i64>]) -> Ordering {
        for ((x, y), (_, desc)) in a.iter().zip(b).zip(&self.0) {
            let o = match (x, y) {
                (Some(x), Some(y)) => x.cmp(y),
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
            };
            let o = if *desc { o.reverse() } else { o };
            if o.is_ne() {
                return o;
            }
        }
        Ordering::Equal
    }

    /// The cursor to the page after the row of `key`.
    pub(super) fn cursor(&self, key: &[Option<i64>]) -> String {
        let values: Vec<Value> = self
            .0
            .iter()
            .zip(key)
            .map(|((c, _), v)| match (c, v) {
                (_, None) => Value::Null,
                (Column::Id, Some(id)) => json!(id),
                (_, Some(t)) => json!(super::world::stamp(*t)),
            })
            .collect();
        let doc = json!({
            "K": self.0.iter().map(|(c, _)| c.attribute()).collect::<Vec<_>>(),
            "V": values,
            "D": self.0.iter().map(|(_, d)| d).collect::<Vec<_>>(),
            "R": false,
            "LT": false,
        });
        base64::engine::general_purpose::STANDARD.encode(doc.to_string())
    }

    /// The row key a cursor of this order stands for.
    pub(super) fn after(&self, cursor: &str) -> Result<Vec<Option<i64>>, String> {
        let bad = || "invalid page cursor".to_owned();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(cursor)
            .map_err(|_| bad())?;
        let doc: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        let keys: Vec<&str> = doc["K"]
            .as_array()
            .ok_or_else(bad)?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        if keys
            != self
                .0
                .iter()
                .map(|(c, _)| c.attribute())
                .collect::<Vec<_>>()
        {
            return Err("the page cursor is of another sort".into());
        }
        let values = doc["V"].as_array().ok_or_else(bad)?;
        values
            .iter()
            .map(|v| match v {
                Value::Null => Ok(None),
                Value::Number(n) => n.as_i64().map(Some).ok_or_else(bad),
                Value::String(t) => chrono::DateTime::parse_from_rfc3339(t)
                    .map(|t| Some(t.timestamp()))
                    .map_err(|_| bad()),
                _ => Err(bad()),
            })
            .collect()
    }
}
