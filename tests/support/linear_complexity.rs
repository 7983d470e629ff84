//! Linear's complexity score of a GraphQL document, so the fake Linear can refuse what real
//! Linear would refuse (more than [`LIMIT`] points in one query) and tests can print what each
//! of Maestro's documents costs.
//!
//! The model is the one Linear documents: a property costs 0.1, an object 1, and a connection
//! multiplies what it holds by its page size (`first`, else `last`, else Linear's default 50).
//! It is applied conservatively: `pageInfo` is multiplied with the nodes, and the connection
//! object itself adds 1. A field is a connection when its selection has `nodes` or `edges`, so
//! no schema is needed. Only what Maestro's documents use is parsed: one operation, fields with
//! arguments and aliases, no fragments or directives.

use serde_json::Value;

/// Linear refuses a single query above this many points.
pub const LIMIT: f64 = 10_000.0;

/// Linear's page size when a connection names none.
const DEFAULT_PAGE: f64 = 50.0;

/// The score of `document` with these variables, or why it cannot be scored.
pub fn score(document: &str, variables: &Value) -> Result<f64, String> {
    let tokens = tokenize(document)?;
    let mut parser = Parser {
        tokens,
        position: 0,
        variables,
    };
    parser.operation()
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Name(String),
    Int(i64),
    Text,
    Punct(char),
}

fn tokenize(document: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = document.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() || c == ',' {
            chars.next();
        } else if c == '#' {
            while chars.next().is_some_and(|c| c != '\n') {}
        } else if c == '"' {
            chars.next();
            let mut escaped = false;
            loop {
                match chars.next() {
                    None => return Err("unterminated string".into()),
                    Some('\\') if !escaped => escaped = true,
                    Some('"') if !escaped => break,
                    Some(_) => escaped = false,
                }
            }
            tokens.push(Token::Text);
        } else if c.is_ascii_digit() || c == '-' {
            let mut number = String::new();
            while let Some(&d) = chars.peek() {
                if d.is_ascii_digit() || d == '-' {
                    number.push(d);
                    chars.next();
                } else {
                    break;
                }
            }
            tokens.push(Token::Int(
                number
                    .parse()
                    .map_err(|_| format!("bad number `{number}`"))?,
            ));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let mut name = String::new();
            while let Some(&d) = chars.peek() {
                if d.is_ascii_alphanumeric() || d == '_' {
                    name.push(d);
                    chars.next();
                } else {
                    break;
                }
            }
            tokens.push(Token::Name(name));
        } else if "{}()[]:$!=".contains(c) {
            tokens.push(Token::Punct(c));
            chars.next();
        } else {
            return Err(format!("unsupported character `{c}`"));
        }
    }
    Ok(tokens)
}

struct Parser<'a> {
    tokens: Vec<Token>,
    position: usize,
    variables: &'a Value,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn next(&mut self) -> Result<Token, String> {
        let token = self
            .tokens
            .get(self.position)
            .cloned()
            .ok_or("unexpected end of document")?;
        self.position += 1;
        Ok(token)
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        match self.next()? {
            Token::Punct(found) if found == c => Ok(()),
            other => Err(format!("expected `{c}`, found {other:?}")),
        }
    }

    /// `query Name(...) { ... }` or `mutation Name(...) { ... }`.
    fn operation(&mut self) -> Result<f64, String> {
        match self.next()? {
            Token::Name(kind) if kind == "query" || kind == "mutation" => {}
            other => return Err(format!("expected an operation, found {other:?}")),
        }
        if matches!(self.peek(), Some(Token::Name(_))) {
            self.next()?;
        }
        if self.peek() == Some(&Token::Punct('(')) {
            self.skip_balanced('(', ')')?;
        }
        let score = self.selection_set()?;
        if self.position != self.tokens.len() {
            return Err("more than one operation".into());
        }
        Ok(score)
    }

    fn skip_balanced(&mut self, open: char, close: char) -> Result<(), String> {
        self.expect(open)?;
        let mut depth = 1;
        while depth > 0 {
            match self.next()? {
                Token::Punct(c) if c == open => depth += 1,
                Token::Punct(c) if c == close => depth -= 1,
                _ => {}
            }
        }
        Ok(())
    }

    fn selection_set(&mut self) -> Result<f64, String> {
        self.expect('{')?;
        let mut total = 0.0;
        while self.peek() != Some(&Token::Punct('}')) {
            total += self.field()?.0;
        }
        self.expect('}')?;
        Ok(total)
    }

    /// One field: its score and its name.
    fn field(&mut self) -> Result<(f64, String), String> {
        let Token::Name(mut name) = self.next()? else {
            return Err("expected a field name".into());
        };
        if self.peek() == Some(&Token::Punct(':')) {
            self.next()?;
            let Token::Name(real) = self.next()? else {
                return Err("expected a field name after an alias".into());
            };
            name = real;
        }
        let mut page = None;
        if self.peek() == Some(&Token::Punct('(')) {
            page = self.arguments()?;
        }
        if self.peek() != Some(&Token::Punct('{')) {
            return Ok((0.1, name));
        }
        // Children are scored one by one so `nodes`/`edges` mark the field as a connection.
        self.expect('{')?;
        let mut children = 0.0;
        let mut connection = false;
        while self.peek() != Some(&Token::Punct('}')) {
            let (score, child) = self.field()?;
            connection |= child == "nodes" || child == "edges";
            children += score;
        }
        self.expect('}')?;
        if connection {
            Ok((1.0 + page.unwrap_or(DEFAULT_PAGE) * children, name))
        } else {
            Ok((1.0 + children, name))
        }
    }

    /// Skips the arguments, returning the page size `first` (or `last`) asks for.
    fn arguments(&mut self) -> Result<Option<f64>, String> {
        self.expect('(')?;
        let mut page = None;
        while self.peek() != Some(&Token::Punct(')')) {
            let Token::Name(argument) = self.next()? else {
                return Err("expected an argument name".into());
            };
            self.expect(':')?;
            let value = self.value()?;
            if argument == "first" || argument == "last" {
                page = value;
            }
        }
        self.expect(')')?;
        Ok(page)
    }

    /// Skips one value, returning it when it is a number (literal or variable).
    fn value(&mut self) -> Result<Option<f64>, String> {
        match self.peek().cloned() {
            Some(Token::Punct('{')) => self.skip_balanced('{', '}').map(|()| None),
            Some(Token::Punct('[')) => self.skip_balanced('[', ']').map(|()| None),
            Some(Token::Punct('$')) => {
                self.next()?;
                let Token::Name(variable) = self.next()? else {
                    return Err("expected a variable name".into());
                };
                Ok(self.variables[variable.as_str()].as_f64())
            }
            Some(Token::Int(number)) => {
                self.next()?;
                Ok(Some(number as f64))
            }
            Some(_) => self.next().map(|_| None),
            None => Err("unexpected end of arguments".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn properties_objects_and_pages() {
        let document = "query Q($first: Int!) { issues(first: $first, filter: { a: { eq: \"x\" } }) { pageInfo { hasNextPage } nodes { id state { name } } } }";
        // 1 + 10 × (pageInfo 1.1 + nodes (1 + 0.1 + state 1.1)).
        let score = score(document, &json!({"first": 10})).unwrap();
        assert!((score - 34.0).abs() < 1e-9, "{score}");
        let unpaged = score_of("query Q { team { labels { nodes { name } } } }");
        assert!(
            (unpaged - (1.0 + 1.0 + 50.0 * 1.1)).abs() < 1e-9,
            "{unpaged}"
        );
    }

    fn score_of(document: &str) -> f64 {
        score(document, &json!({})).unwrap()
    }
}
