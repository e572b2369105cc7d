//! kubectl-style field paths, for reading and for patching.
//!
//! Accepted syntax (what kubectl users write):
//!
//! - dotted keys: `spec.containers[0].image`, with an optional leading dot (`.spec.replicas`)
//!   and optional JSONPath braces (`{.spec.replicas}`), optionally rooted at `$`;
//! - list indexes: `[0]` (non-negative integers only);
//! - keys containing dots or brackets: `data["haproxy.cfg"]`, `data['haproxy.cfg']`, or
//!   escaped `data.haproxy\.cfg`;
//! - a filter selecting exactly one list element by one of its keys:
//!   `spec.containers[?(@.name=="app")].image`, `status.conditions[?(@.type=='Ready')].status`;
//!   the compared value is a quoted string, or an unquoted number / `true` / `false`.
//!
//! Anything else (wildcards `[*]`, recursive descent `..`, slices `[0:2]`, unions, negative
//! indexes, empty keys, unclosed brackets) is rejected with the byte position of the problem.

use std::fmt;

use serde_json::Value;

/// Longest field path accepted, in bytes; longer input is rejected rather than parsed.
const MAX_PATH_LEN: usize = 4096;

/// One step of a [`FieldPath`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Segment {
    /// An object member.
    Key(String),
    /// A list element by position.
    Index(usize),
    /// The one list element whose `key` member equals `value`.
    Filter { key: String, value: String },
}

/// A parsed field path. `Display` gives the canonical form, which parses back to the same path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldPath {
    segments: Vec<Segment>,
}

/// What went wrong parsing or evaluating a field path.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FieldPathError {
    /// The path text is not valid field-path syntax.
    #[error("invalid fieldPath {input:?} at position {position}: {message}")]
    Parse {
        input: String,
        position: usize,
        message: String,
    },
    /// A segment of the path does not exist in the document.
    #[error("field {missing} not found (evaluating {path})")]
    NotFound { path: String, missing: String },
    /// A segment met a value of the wrong kind (e.g. a key on a list).
    #[error("field {at} is {found}, expected {expected} (evaluating {path})")]
    WrongType {
        path: String,
        at: String,
        expected: &'static str,
        found: &'static str,
    },
    /// A filter matched no element or several elements.
    #[error(
        "{at} has {count} elements with {key} == {value:?}, expected exactly one (evaluating {path})"
    )]
    FilterMatch {
        path: String,
        at: String,
        key: String,
        value: String,
        count: usize,
    },
    /// The path has no segments to set (setting the whole document is not supported).
    #[error("cannot set the whole document through an empty path")]
    EmptyPath,
}

impl FieldPath {
    /// Parse kubectl-style field path syntax.
    pub fn parse(s: &str) -> Result<FieldPath, FieldPathError> {
        Parser::new(s).parse()
    }

    /// A path made of the given segments.
    pub fn from_segments(segments: Vec<Segment>) -> FieldPath {
        FieldPath { segments }
    }

    /// The segments, in order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Whether any segment addresses a list element (an index or a filter).
    pub fn has_array_segment(&self) -> bool {
        self.segments
            .iter()
            .any(|s| matches!(s, Segment::Index(_) | Segment::Filter { .. }))
    }

    /// Whether any segment is a filter (which needs the current object to resolve).
    pub fn has_filter(&self) -> bool {
        self.segments
            .iter()
            .any(|s| matches!(s, Segment::Filter { .. }))
    }

    /// The canonical text of the first `n` segments (used in error messages).
    pub fn prefix_string(&self, n: usize) -> String {
        let mut out = String::new();
        write_segments(&mut out, &self.segments[..n.min(self.segments.len())]);
        out
    }

    /// The value at the path; the error names the first missing segment and the path.
    pub fn get<'a>(&self, doc: &'a Value) -> Result<&'a Value, FieldPathError> {
        let mut cur = doc;
        for (i, seg) in self.segments.iter().enumerate() {
            cur = self.step(cur, seg, i)?;
        }
        Ok(cur)
    }

    /// Set the value at the path: missing object keys are created, an index must exist and a
    /// filter must match exactly one element.
    pub fn set(&self, doc: &mut Value, value: Value) -> Result<(), FieldPathError> {
        if self.segments.is_empty() {
            return Err(FieldPathError::EmptyPath);
        }
        let mut cur = doc;
        let last = self.segments.len() - 1;
        for (i, seg) in self.segments.iter().enumerate() {
            if i == last {
                return self.set_last(cur, seg, i, value);
            }
            cur = self.step_mut(cur, seg, i)?;
        }
        Ok(())
    }

    /// RFC 6901 JSON pointer for this path in `doc`, filters resolved to the matching index.
    /// Keys and indexes need not exist (so the pointer can be used for `add`); a filter
    /// must match exactly one element.
    pub fn to_json_pointer(&self, doc: &Value) -> Result<String, FieldPathError> {
        let mut out = String::new();
        let mut cur = Some(doc);
        for (i, seg) in self.segments.iter().enumerate() {
            match seg {
                Segment::Key(k) => {
                    out.push('/');
                    out.push_str(&escape_pointer(k));
                    cur = cur.and_then(|v| v.get(k.as_str()));
                }
                Segment::Index(n) => {
                    out.push('/');
                    out.push_str(&n.to_string());
                    cur = cur.and_then(|v| v.get(*n));
                }
                Segment::Filter { .. } => {
                    let Some(v) = cur else {
                        return Err(FieldPathError::NotFound {
                            path: self.to_string(),
                            missing: self.prefix_string(i),
                        });
                    };
                    let idx = self.resolve_filter(v, seg, i)?;
                    out.push('/');
                    out.push_str(&idx.to_string());
                    cur = v.get(idx);
                }
            }
        }
        Ok(out)
    }

    /// The index a filter segment selects in `list` (exactly one element must match).
    pub fn resolve_filter(
        &self,
        list: &Value,
        seg: &Segment,
        i: usize,
    ) -> Result<usize, FieldPathError> {
        let Segment::Filter { key, value } = seg else {
            return match seg {
                Segment::Index(n) => Ok(*n),
                _ => Err(self.wrong_type(i, "a list", list)),
            };
        };
        let Value::Array(items) = list else {
            return Err(self.wrong_type(i, "a list", list));
        };
        let mut found = None;
        let mut count = 0;
        for (idx, item) in items.iter().enumerate() {
            if item.get(key.as_str()).is_some_and(|v| filter_eq(v, value)) {
                count += 1;
                found.get_or_insert(idx);
            }
        }
        match (found, count) {
            (Some(idx), 1) => Ok(idx),
            _ => Err(FieldPathError::FilterMatch {
                path: self.to_string(),
                at: self.prefix_string(i),
                key: key.clone(),
                value: value.clone(),
                count,
            }),
        }
    }

    fn step<'a>(
        &self,
        cur: &'a Value,
        seg: &Segment,
        i: usize,
    ) -> Result<&'a Value, FieldPathError> {
        match seg {
            Segment::Key(k) => match cur {
                Value::Object(m) => m.get(k).ok_or_else(|| self.not_found(i)),
                _ => Err(self.wrong_type(i, "an object", cur)),
            },
            Segment::Index(n) => match cur {
                Value::Array(a) => a.get(*n).ok_or_else(|| self.not_found(i)),
                _ => Err(self.wrong_type(i, "a list", cur)),
            },
            Segment::Filter { .. } => {
                let idx = self.resolve_filter(cur, seg, i)?;
                cur.get(idx).ok_or_else(|| self.not_found(i))
            }
        }
    }

    fn step_mut<'a>(
        &self,
        cur: &'a mut Value,
        seg: &Segment,
        i: usize,
    ) -> Result<&'a mut Value, FieldPathError> {
        match seg {
            Segment::Key(k) => {
                if cur.is_null() {
                    *cur = Value::Object(Default::default());
                }
                match cur {
                    Value::Object(m) => Ok(m.entry(k.clone()).or_insert(Value::Null)),
                    other => Err(self.wrong_type(i, "an object", other)),
                }
            }
            Segment::Index(n) => {
                if !cur.is_array() {
                    return Err(self.wrong_type(i, "a list", cur));
                }
                let missing = self.not_found(i);
                cur.get_mut(*n).ok_or(missing)
            }
            Segment::Filter { .. } => {
                let idx = self.resolve_filter(cur, seg, i)?;
                let missing = self.not_found(i);
                cur.get_mut(idx).ok_or(missing)
            }
        }
    }

    fn set_last(
        &self,
        cur: &mut Value,
        seg: &Segment,
        i: usize,
        value: Value,
    ) -> Result<(), FieldPathError> {
        match seg {
            Segment::Key(k) => {
                if cur.is_null() {
                    *cur = Value::Object(Default::default());
                }
                match cur {
                    Value::Object(m) => {
                        m.insert(k.clone(), value);
                        Ok(())
                    }
                    other => Err(self.wrong_type(i, "an object", other)),
                }
            }
            Segment::Index(_) | Segment::Filter { .. } => {
                let slot = self.step_mut(cur, seg, i)?;
                *slot = value;
                Ok(())
            }
        }
    }

    fn not_found(&self, i: usize) -> FieldPathError {
        FieldPathError::NotFound {
            path: self.to_string(),
            missing: self.prefix_string(i + 1),
        }
    }

    fn wrong_type(&self, i: usize, expected: &'static str, found: &Value) -> FieldPathError {
        if found.is_null() {
            return FieldPathError::NotFound {
                path: self.to_string(),
                missing: self.prefix_string(i + 1),
            };
        }
        FieldPathError::WrongType {
            path: self.to_string(),
            at: if i == 0 {
                "the document".to_string()
            } else {
                self.prefix_string(i)
            },
            expected,
            found: kind_of(found),
        }
    }
}

/// Whether a list element's member `v` equals a filter's value text.
fn filter_eq(v: &Value, want: &str) -> bool {
    match v {
        Value::String(s) => s == want,
        Value::Number(n) => {
            n.to_string() == want
                || match (n.as_f64(), want.parse::<f64>()) {
                    (Some(a), Ok(b)) => a == b,
                    _ => false,
                }
        }
        Value::Bool(b) => (if *b { "true" } else { "false" }) == want,
        _ => false,
    }
}

/// A short name for the kind of a JSON value, for messages.
pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Escape one reference token per RFC 6901.
pub fn escape_pointer(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Whether `k` can be written unquoted: exactly the characters [`Parser::plain_key`]
/// accepts (anything else is written `["…"]`).
fn is_plain_key(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '/' | ':' | '$'))
        && !k.starts_with('$')
}

fn write_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

fn write_segments(out: &mut String, segments: &[Segment]) {
    for (i, seg) in segments.iter().enumerate() {
        match seg {
            Segment::Key(k) if is_plain_key(k) => {
                if i > 0 {
                    out.push('.');
                }
                out.push_str(k);
            }
            Segment::Key(k) => {
                out.push('[');
                write_quoted(out, k);
                out.push(']');
            }
            Segment::Index(n) => {
                out.push('[');
                out.push_str(&n.to_string());
                out.push(']');
            }
            Segment::Filter { key, value } => {
                out.push_str("[?(@.");
                out.push_str(key);
                out.push_str("==");
                write_quoted(out, value);
                out.push_str(")]");
            }
        }
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        write_segments(&mut out, &self.segments);
        f.write_str(&out)
    }
}

impl std::str::FromStr for FieldPath {
    type Err = FieldPathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FieldPath::parse(s)
    }
}

struct Parser<'a> {
    input: &'a str,
    chars: Vec<(usize, char)>,
    pos: usize,
    end: usize,
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Self {
        let chars: Vec<(usize, char)> = input.char_indices().collect();
        let end = chars.len();
        Parser {
            input,
            chars,
            pos: 0,
            end,
        }
    }

    fn err(&self, at: usize, message: impl Into<String>) -> FieldPathError {
        let position = self
            .chars
            .get(at)
            .map(|(b, _)| *b)
            .unwrap_or(self.input.len());
        FieldPathError::Parse {
            input: self.input.to_string(),
            position,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<char> {
        if self.pos < self.end {
            self.chars.get(self.pos).map(|(_, c)| *c)
        } else {
            None
        }
    }

    /// Narrows the unread input to exclude whitespace at both ends.
    fn trim_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
        while self.end > self.pos
            && self
                .chars
                .get(self.end - 1)
                .is_some_and(|(_, c)| c.is_whitespace())
        {
            self.end -= 1;
        }
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        let p = self.pos + offset;
        if p < self.end {
            self.chars.get(p).map(|(_, c)| *c)
        } else {
            None
        }
    }

    fn parse(mut self) -> Result<FieldPath, FieldPathError> {
        if self.input.len() > MAX_PATH_LEN {
            return Err(self.err(0, format!("longer than {MAX_PATH_LEN} bytes")));
        }
        self.trim_whitespace();
        if self.pos == self.end {
            return Err(self.err(self.pos, "empty path"));
        }
        // Optional JSONPath braces.
        if self.peek() == Some('{') {
            let open = self.pos;
            if self.chars.get(self.end - 1).map(|(_, c)| *c) != Some('}') || self.end - 1 == open {
                return Err(self.err(open, "unclosed '{'"));
            }
            self.pos += 1;
            self.end -= 1;
            self.trim_whitespace();
            if self.pos == self.end {
                return Err(self.err(self.pos, "empty path inside braces"));
            }
        }
        // Optional `$` root.
        if self.peek() == Some('$') && matches!(self.peek_at(1), None | Some('.') | Some('[')) {
            self.pos += 1;
            if self.peek().is_none() {
                return Err(self.err(self.pos, "empty path after '$'"));
            }
        }
        let mut segments = Vec::new();
        let mut first = true;
        loop {
            match self.peek() {
                None => break,
                Some('.') => {
                    let dot = self.pos;
                    self.pos += 1;
                    match self.peek() {
                        None => return Err(self.err(dot, "path ends with '.'")),
                        Some('.') => {
                            return Err(self.err(dot, "recursive descent '..' is not supported"));
                        }
                        Some('[') if first => {
                            // `.[0]` / `.["a"]`: a leading dot before a bracket.
                        }
                        Some('[') => return Err(self.err(self.pos, "'.' followed by '['")),
                        Some(_) => segments.push(Segment::Key(self.plain_key()?)),
                    }
                }
                Some('[') => segments.push(self.bracket()?),
                Some(_) if first => segments.push(Segment::Key(self.plain_key()?)),
                Some(c) => {
                    return Err(
                        self.err(self.pos, format!("unexpected {c:?}; expected '.' or '['"))
                    );
                }
            }
            first = false;
        }
        if segments.is_empty() {
            return Err(self.err(self.pos, "empty path"));
        }
        Ok(FieldPath { segments })
    }

    /// A key up to the next unescaped `.` or `[`.
    fn plain_key(&mut self) -> Result<String, FieldPathError> {
        let start = self.pos;
        let mut key = String::new();
        while let Some(c) = self.peek() {
            match c {
                '.' | '[' => break,
                '\\' => {
                    match self.peek_at(1) {
                        Some(e @ ('.' | '[' | ']' | '\\')) => key.push(e),
                        _ => {
                            return Err(self
                                .err(self.pos, "'\\' must be followed by '.', '[', ']' or '\\'"));
                        }
                    }
                    self.pos += 2;
                }
                ']' => return Err(self.err(self.pos, "unexpected ']'")),
                '*' => return Err(self.err(self.pos, "wildcards are not supported")),
                c if c.is_whitespace() => {
                    return Err(self.err(self.pos, "whitespace inside a key; quote it: [\"...\"]"));
                }
                '"' | '\'' | '(' | ')' | '?' | '@' | '{' | '}' | ',' | '=' | '!' => {
                    return Err(self.err(self.pos, format!("unexpected {c:?} in a key")));
                }
                c => {
                    key.push(c);
                    self.pos += 1;
                }
            }
        }
        if key.is_empty() {
            return Err(self.err(start, "empty key"));
        }
        Ok(key)
    }

    fn bracket(&mut self) -> Result<Segment, FieldPathError> {
        let open = self.pos;
        self.pos += 1; // '['
        let seg = match self.peek() {
            None => return Err(self.err(open, "unclosed '['")),
            Some('"') | Some('\'') => Segment::Key(self.quoted()?),
            Some('?') => self.filter(open)?,
            Some('*') => return Err(self.err(self.pos, "wildcards are not supported")),
            Some('-') => return Err(self.err(self.pos, "negative indexes are not supported")),
            Some(c) if c.is_ascii_digit() => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.pos += 1;
                }
                let text: String = self.chars[start..self.pos]
                    .iter()
                    .map(|(_, c)| *c)
                    .collect();
                match self.peek() {
                    Some(':') => return Err(self.err(self.pos, "slices are not supported")),
                    Some(',') => return Err(self.err(self.pos, "unions are not supported")),
                    _ => {}
                }
                let n = text
                    .parse::<usize>()
                    .map_err(|_| self.err(start, "index too large"))?;
                Segment::Index(n)
            }
            Some(':') => return Err(self.err(self.pos, "slices are not supported")),
            Some(']') => return Err(self.err(self.pos, "empty brackets")),
            Some(c) => {
                return Err(self.err(
                    self.pos,
                    format!("unexpected {c:?}; expected an index, a quoted key or a filter"),
                ));
            }
        };
        match self.peek() {
            Some(']') => {
                self.pos += 1;
                Ok(seg)
            }
            None => Err(self.err(open, "unclosed '['")),
            Some(c) => Err(self.err(self.pos, format!("unexpected {c:?}; expected ']'"))),
        }
    }

    /// A quoted string starting at the current quote; `\` escapes the next character.
    fn quoted(&mut self) -> Result<String, FieldPathError> {
        let open = self.pos;
        let Some(q) = self.peek() else {
            return Err(self.err(open, "expected a quoted string"));
        };
        self.pos += 1;
        let mut s = String::new();
        loop {
            match self.peek() {
                None => return Err(self.err(open, "unclosed quote")),
                Some('\\') => match self.peek_at(1) {
                    Some(c) => {
                        s.push(c);
                        self.pos += 2;
                    }
                    None => return Err(self.err(open, "unclosed quote")),
                },
                Some(c) if c == q => {
                    self.pos += 1;
                    return Ok(s);
                }
                Some(c) => {
                    s.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, want: char, what: &str) -> Result<(), FieldPathError> {
        match self.peek() {
            Some(c) if c == want => {
                self.pos += 1;
                Ok(())
            }
            _ => Err(self.err(self.pos, format!("expected {what}"))),
        }
    }

    /// `?(@.key=="value")` (the `[` is already consumed).
    fn filter(&mut self, open: usize) -> Result<Segment, FieldPathError> {
        self.pos += 1; // '?'
        self.expect('(', "'(' after '?'")?;
        self.skip_ws();
        self.expect('@', "'@' in a filter")?;
        self.expect('.', "'.' after '@'")?;
        let start = self.pos;
        let mut key = String::new();
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || matches!(c, '_' | '-' | '/') {
                key.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        if key.is_empty() {
            return Err(self.err(start, "expected a key after '@.'"));
        }
        if self.peek() == Some('.') || self.peek() == Some('[') {
            return Err(self.err(
                self.pos,
                "a filter may compare only a direct member (@.key)",
            ));
        }
        self.skip_ws();
        if !(self.peek() == Some('=') && self.peek_at(1) == Some('=')) {
            return Err(self.err(
                self.pos,
                "expected '==' (the only supported filter operator)",
            ));
        }
        self.pos += 2;
        self.skip_ws();
        let value = match self.peek() {
            Some('"') | Some('\'') => self.quoted()?,
            Some(c) if c.is_ascii_digit() || c == '-' || c.is_alphabetic() => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '+'))
                {
                    self.pos += 1;
                }
                let text: String = self.chars[start..self.pos]
                    .iter()
                    .map(|(_, c)| *c)
                    .collect();
                if text != "true" && text != "false" && text.parse::<f64>().is_err() {
                    return Err(self.err(
                        start,
                        "filter value must be quoted, a number, true or false",
                    ));
                }
                text
            }
            None => return Err(self.err(open, "unclosed '['")),
            Some(_) => return Err(self.err(self.pos, "expected a filter value")),
        };
        self.skip_ws();
        match self.peek() {
            Some(')') => {
                self.pos += 1;
                Ok(Segment::Filter { key, value })
            }
            None => Err(self.err(open, "unclosed filter")),
            Some(_) => Err(self.err(self.pos, "expected ')' closing the filter")),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn p(s: &str) -> FieldPath {
        FieldPath::parse(s).unwrap_or_else(|e| panic!("{s} should parse: {e}"))
    }

    fn key(s: &str) -> Segment {
        Segment::Key(s.to_string())
    }

    #[test]
    fn parses_kubectl_forms() {
        let want = vec![
            key("spec"),
            key("containers"),
            Segment::Index(0),
            key("image"),
        ];
        for s in [
            "spec.containers[0].image",
            ".spec.containers[0].image",
            "{.spec.containers[0].image}",
            "{ .spec.containers[0].image }",
            "$.spec.containers[0].image",
            "{$.spec.containers[0].image}",
            "spec[\"containers\"][0]['image']",
        ] {
            assert_eq!(p(s).segments(), want.as_slice(), "{s}");
        }
    }

    #[test]
    fn parses_keys_with_dots() {
        let want = vec![key("data"), key("haproxy.cfg")];
        assert_eq!(p("data[\"haproxy.cfg\"]").segments(), want.as_slice());
        assert_eq!(p("data['haproxy.cfg']").segments(), want.as_slice());
        assert_eq!(p("data.haproxy\\.cfg").segments(), want.as_slice());
        assert_eq!(
            p("data[\"haproxy.cfg\"]").to_string(),
            "data[\"haproxy.cfg\"]"
        );
        assert_eq!(
            p("metadata.annotations.example\\.com/owner").segments(),
            &[
                key("metadata"),
                key("annotations"),
                key("example.com/owner")
            ]
        );
    }

    #[test]
    fn parses_filters() {
        let f = p("spec.containers[?(@.name==\"app\")].image");
        assert_eq!(
            f.segments(),
            &[
                key("spec"),
                key("containers"),
                Segment::Filter {
                    key: "name".into(),
                    value: "app".into()
                },
                key("image")
            ]
        );
        let g = p("status.conditions[?(@.type=='Ready')].status");
        assert_eq!(
            g.to_string(),
            "status.conditions[?(@.type==\"Ready\")].status"
        );
        let h = p("spec.ports[?( @.port == 80 )].targetPort");
        assert!(h.has_filter());
    }

    #[test]
    fn rejects_unsupported_syntax_with_position() {
        for (s, pos, needle) in [
            ("spec.containers[*].image", 16, "wildcard"),
            ("spec..image", 4, "recursive descent"),
            ("spec.containers[0:2]", 17, "slices"),
            ("spec.containers[-1]", 16, "negative"),
            ("spec.containers[0", 15, "unclosed"),
            ("spec.", 4, "ends with"),
            ("", 0, "empty path"),
            ("{}", 1, "empty path"),
            ("{spec", 0, "unclosed '{'"),
            ("spec.containers[]", 16, "empty brackets"),
            ("data[\"x", 5, "unclosed quote"),
            ("a[?(@.name!=\"x\")]", 10, "'=='"),
            ("a b", 1, "whitespace"),
            ("a[0]b", 4, "expected '.' or '['"),
            ("a[?(@.x==\"y\"]", 12, "')'"),
        ] {
            match FieldPath::parse(s) {
                Err(FieldPathError::Parse {
                    position, message, ..
                }) => {
                    assert!(
                        message.contains(needle),
                        "{s}: message {message:?} lacks {needle:?}"
                    );
                    assert_eq!(position, pos, "{s}: position ({message})");
                }
                other => panic!("{s}: expected a parse error, got {other:?}"),
            }
        }
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "spec.containers[0].image",
            "data[\"haproxy.cfg\"]",
            "a[\"we\\\"ird\"].b",
            "status.conditions[?(@.type==\"Ready\")].status",
            "[0].x",
            "metadata.labels[\"app.kubernetes.io/name\"]",
        ] {
            let path = p(s);
            assert_eq!(p(&path.to_string()), path, "{s} -> {path}");
        }
    }

    #[test]
    fn get_reads_values_and_names_missing_segment() {
        let doc = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "app", "image": "y"}]},
                         "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}});
        assert_eq!(p("spec.containers[1].image").get(&doc), Ok(&json!("y")));
        assert_eq!(
            p("spec.containers[?(@.name==\"app\")].image").get(&doc),
            Ok(&json!("y"))
        );
        assert_eq!(
            p("status.loadBalancer.ingress[0].ip").get(&doc),
            Ok(&json!("10.0.0.1"))
        );
        let err = p("spec.containers[2].image").get(&doc).unwrap_err();
        assert_eq!(
            err.to_string(),
            "field spec.containers[2] not found (evaluating spec.containers[2].image)"
        );
        let err = p("spec.template.spec").get(&doc).unwrap_err();
        assert!(
            err.to_string().contains("field spec.template not found"),
            "{err}"
        );
        let err = p("spec.containers.image").get(&doc).unwrap_err();
        assert!(
            matches!(err, FieldPathError::WrongType { ref at, .. } if at == "spec.containers"),
            "{err}"
        );
        let err = p("spec.containers[?(@.name==\"nope\")].image")
            .get(&doc)
            .unwrap_err();
        assert!(
            err.to_string().contains("0 elements with name == \"nope\""),
            "{err}"
        );
    }

    #[test]
    fn set_creates_keys_but_not_indexes() {
        let mut doc = json!({"metadata": {"name": "x"}, "spec": {"containers": [{"name": "app", "image": "a"}]}});
        p("metadata.annotations[\"example.com/x\"]")
            .set(&mut doc, json!("v"))
            .unwrap();
        assert_eq!(doc["metadata"]["annotations"]["example.com/x"], json!("v"));
        p("spec.containers[?(@.name=='app')].image")
            .set(&mut doc, json!("b"))
            .unwrap();
        assert_eq!(doc["spec"]["containers"][0]["image"], json!("b"));
        let err = p("spec.containers[3].image")
            .set(&mut doc, json!("c"))
            .unwrap_err();
        assert!(matches!(err, FieldPathError::NotFound { .. }), "{err}");
        let err = p("spec.list[0]").set(&mut doc, json!("c")).unwrap_err();
        assert!(matches!(err, FieldPathError::NotFound { .. }), "{err}");
    }

    #[test]
    fn json_pointer_resolves_filters_and_escapes() {
        let doc = json!({"spec": {"containers": [{"name": "a"}, {"name": "app"}]}});
        assert_eq!(
            p("spec.containers[?(@.name==\"app\")].image").to_json_pointer(&doc),
            Ok("/spec/containers/1/image".to_string())
        );
        assert_eq!(
            p("metadata.annotations[\"a/b~c\"]").to_json_pointer(&doc),
            Ok("/metadata/annotations/a~1b~0c".to_string())
        );
    }
}
