//! The Go `text/template` subset used in step values: `"{{ .Values.podImage }}"`.
//!
//! Why not an existing crate: the maintained Go-template crate on crates.io (`gtmpl`)
//! returns an empty "no value" for a missing map key with no option to make that an error,
//! and it ships a fixed set of built-in functions that cannot be narrowed. Both are exactly
//! what lifeboat must not do (a `<no value>` patched into a load balancer config during an
//! outage is the worst possible failure), so this module implements the subset itself.
//!
//! Supported:
//! - actions `{{ pipeline }}`, trim markers `{{- ` / ` -}}`, comments `{{/* … */}}`;
//! - data: `.Values.<key>` (step outputs), `.Alert.Name`, `.Alert.Labels.<k>`,
//!   `.Alert.Annotations.<k>`, `.Run.Name`, `.Run.Namespace`; `.` is the current value,
//!   `$` the root; field chains descend into objects (`.Values.svc.ip`);
//! - literals: strings (`"…"` with Go escapes, and raw `` `…` ``), integers, floats,
//!   `true`, `false`, `nil`; parenthesised pipelines; `|` pipes (the piped value is the
//!   last argument);
//! - `if` / `else if` / `else` / `end`, `with … [else] … end`, `range … [else] … end` over
//!   lists and maps (maps in key order; the dot is the element);
//! - functions, and only these (none touches the environment, files or the network):
//!   `default`, `quote`, `upper`, `lower`, `trim`, `replace OLD NEW S`, `b64enc`, `b64dec`,
//!   `toJson`, `index`, `printf` (verbs `%s %d %v %q %%`), `eq`, `ne`, `and`, `or`, `not`.
//!
//! Strictness: a missing key is an error naming the key, never `<no value>` or an empty
//! string, and so is printing `null`. The one exception is the value given to `default`
//! (`{{ .Values.x | default "a" }}` or `{{ default "a" .Values.x }}`): a missing key there
//! is empty, so `default` applies. Unknown functions and variables (`$x`) are parse errors.
//! Non-string values print as Go prints them (numbers plain, booleans `true`/`false`);
//! lists and objects print as compact JSON.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use serde_json::Value;

use crate::fieldpath::{FieldPath, Segment};

/// Deepest nesting of parentheses and control structures accepted.
const MAX_DEPTH: usize = 64;
/// Evaluation steps one render may take (bounds nested `range` blow-ups).
const MAX_STEPS: usize = 1_000_000;
/// Largest output one render may produce.
const MAX_OUTPUT: usize = 1 << 20;

/// A template error, naming the position (line and column, from 1) in the template text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    /// The template text is not valid.
    #[error("template parse error at line {line}, column {column}: {message}")]
    Parse {
        line: usize,
        column: usize,
        message: String,
    },
    /// A key the template reads does not exist.
    #[error("missing key {key} at line {line}, column {column}{hint}")]
    MissingKey {
        key: String,
        line: usize,
        column: usize,
        hint: String,
    },
    /// Evaluation failed (wrong type, bad base64, null printed…).
    #[error("template error at line {line}, column {column}: {message}")]
    Exec {
        line: usize,
        column: usize,
        message: String,
    },
    /// An error in one string leaf of a JSON document.
    #[error("{location}: {source}")]
    AtLeaf {
        location: String,
        source: Box<TemplateError>,
    },
}

/// The data a template sees.
#[derive(Debug, Clone, Copy)]
pub struct TemplateContext<'a> {
    /// `.Values`: outputs of earlier steps.
    pub values: &'a BTreeMap<String, Value>,
    /// `.Alert.Name`, `.Alert.Labels`, `.Alert.Annotations`.
    pub alert: &'a lifeboat_api::AlertSpec,
    /// `.Run.Name`.
    pub run_name: &'a str,
    /// `.Run.Namespace`.
    pub run_namespace: &'a str,
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    src: String,
    nodes: Vec<Node>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Output(Pipeline),
    If {
        branches: Vec<(Pipeline, Vec<Node>)>,
        otherwise: Vec<Node>,
    },
    With {
        pipe: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
    Range {
        pipe: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

#[derive(Debug, Clone)]
struct Pipeline {
    cmds: Vec<Command>,
}

#[derive(Debug, Clone)]
struct Command {
    pos: usize,
    args: Vec<Arg>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Root {
    /// `.`: the current value.
    Dot,
    /// `$`: the top-level data.
    Dollar,
}

#[derive(Debug, Clone)]
enum Arg {
    Field {
        root: Root,
        path: Vec<String>,
        pos: usize,
    },
    Lit(Value),
    Func {
        name: Func,
        pos: usize,
    },
    Sub(Box<Pipeline>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Default,
    Quote,
    Upper,
    Lower,
    Trim,
    Replace,
    B64Enc,
    B64Dec,
    ToJson,
    Index,
    Printf,
    Eq,
    Ne,
    And,
    Or,
    Not,
}

impl Func {
    fn from_name(s: &str) -> Option<Func> {
        Some(match s {
            "default" => Func::Default,
            "quote" => Func::Quote,
            "upper" => Func::Upper,
            "lower" => Func::Lower,
            "trim" => Func::Trim,
            "replace" => Func::Replace,
            "b64enc" => Func::B64Enc,
            "b64dec" => Func::B64Dec,
            "toJson" => Func::ToJson,
            "index" => Func::Index,
            "printf" => Func::Printf,
            "eq" => Func::Eq,
            "ne" => Func::Ne,
            "and" => Func::And,
            "or" => Func::Or,
            "not" => Func::Not,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Func::Default => "default",
            Func::Quote => "quote",
            Func::Upper => "upper",
            Func::Lower => "lower",
            Func::Trim => "trim",
            Func::Replace => "replace",
            Func::B64Enc => "b64enc",
            Func::B64Dec => "b64dec",
            Func::ToJson => "toJson",
            Func::Index => "index",
            Func::Printf => "printf",
            Func::Eq => "eq",
            Func::Ne => "ne",
            Func::And => "and",
            Func::Or => "or",
            Func::Not => "not",
        }
    }

    /// (minimum, maximum) argument count, including a piped value.
    fn arity(self) -> (usize, usize) {
        match self {
            Func::Default | Func::Ne => (2, 2),
            Func::Upper | Func::Lower | Func::Trim | Func::B64Enc | Func::B64Dec => (1, 1),
            Func::ToJson | Func::Not => (1, 1),
            Func::Replace => (3, 3),
            Func::Quote | Func::Printf | Func::And | Func::Or => (1, usize::MAX),
            Func::Index | Func::Eq => (2, usize::MAX),
        }
    }
}

const FUNC_NAMES: &str = "default, quote, upper, lower, trim, replace, b64enc, b64dec, toJson, index, printf, eq, ne, and, or, not";

/// Line and column (from 1, column in characters) of byte offset `pos` in `src`.
fn line_col(src: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(src.len());
    let mut line = 1;
    let mut col = 1;
    for (i, c) in src.char_indices() {
        if i >= pos {
            break;
        }
        if c == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    (line, col)
}

// ---------------------------------------------------------------------------------------
// Lexing
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum TokKind {
    Field(Root, Vec<String>),
    Ident(String),
    Lit(Value),
    Pipe,
    LParen,
    RParen,
}

#[derive(Debug, Clone)]
struct Tok {
    kind: TokKind,
    pos: usize,
}

enum Item {
    Text(String),
    Action { pos: usize, toks: Vec<Tok> },
}

struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

impl<'a> Lexer<'a> {
    fn err(&self, pos: usize, message: impl Into<String>) -> TemplateError {
        let (line, column) = line_col(self.src, pos);
        TemplateError::Parse {
            line,
            column,
            message: message.into(),
        }
    }

    fn items(&self) -> Result<Vec<Item>, TemplateError> {
        let mut items = Vec::new();
        let mut i = 0;
        let mut trim_next = false;
        let src = self.src;
        loop {
            let rest = &src[i..];
            let Some(off) = rest.find("{{") else {
                let mut text = rest;
                if trim_next {
                    text = text.trim_start_matches([' ', '\t', '\r', '\n']);
                }
                if !text.is_empty() {
                    items.push(Item::Text(text.to_string()));
                }
                return Ok(items);
            };
            let open = i + off;
            let mut text = &src[i..open];
            if trim_next {
                text = text.trim_start_matches([' ', '\t', '\r', '\n']);
            }
            let mut k = open + 2;
            if self.bytes.get(k) == Some(&b'-')
                && self.bytes.get(k + 1).is_some_and(|b| is_space(*b))
            {
                text = text.trim_end_matches([' ', '\t', '\r', '\n']);
                k += 2;
            }
            if !text.is_empty() {
                items.push(Item::Text(text.to_string()));
            }
            // Comment?
            let mut j = k;
            while self.bytes.get(j).is_some_and(|b| is_space(*b)) {
                j += 1;
            }
            if src[j..].starts_with("/*") {
                let Some(end) = src[j + 2..].find("*/") else {
                    return Err(self.err(open, "unclosed comment"));
                };
                let after = j + 2 + end + 2;
                if src[after..].starts_with("}}") {
                    trim_next = false;
                    i = after + 2;
                } else if src[after..].starts_with(" -}}") {
                    trim_next = true;
                    i = after + 4;
                } else {
                    return Err(self.err(after, "comment ends before closing delimiter"));
                }
                continue;
            }
            if !src[k..].contains("}}") {
                return Err(self.err(open, "unclosed action (missing \"}}\")"));
            }
            let (toks, end, trim) = self.action(open, k)?;
            if toks.is_empty() {
                return Err(self.err(open, "missing value for command"));
            }
            items.push(Item::Action { pos: open, toks });
            trim_next = trim;
            i = end;
        }
    }

    /// Lex one action starting at byte `k` (after `{{` and any trim marker). Returns the
    /// tokens, the byte after `}}`, and whether the right trim marker was present.
    fn action(&self, open: usize, mut k: usize) -> Result<(Vec<Tok>, usize, bool), TemplateError> {
        let src = self.src;
        let b = self.bytes;
        let mut toks = Vec::new();
        loop {
            let ws_before = k > 0 && b.get(k - 1).is_some_and(|c| is_space(*c));
            while b.get(k).is_some_and(|c| is_space(*c)) {
                k += 1;
            }
            let ws = ws_before || (k > 0 && b.get(k - 1).is_some_and(|c| is_space(*c)));
            if k >= b.len() {
                return Err(self.err(open, "unclosed action (missing \"}}\")"));
            }
            if src[k..].starts_with("}}") {
                return Ok((toks, k + 2, false));
            }
            if ws && src[k..].starts_with("-}}") {
                return Ok((toks, k + 3, true));
            }
            let start = k;
            let c = b[k];
            let kind = match c {
                b'|' => {
                    k += 1;
                    TokKind::Pipe
                }
                b'(' => {
                    k += 1;
                    TokKind::LParen
                }
                b')' => {
                    k += 1;
                    TokKind::RParen
                }
                b'"' => {
                    let (s, end) = self.string(k)?;
                    k = end;
                    TokKind::Lit(Value::String(s))
                }
                b'`' => {
                    let Some(end) = src[k + 1..].find('`') else {
                        return Err(self.err(k, "unterminated raw string"));
                    };
                    let s = src[k + 1..k + 1 + end].to_string();
                    k = k + 1 + end + 1;
                    TokKind::Lit(Value::String(s))
                }
                b'\'' => {
                    return Err(self.err(k, "character constants are not supported; use a string"));
                }
                b'.' => {
                    let (path, end) = self.field_chain(k)?;
                    k = end;
                    TokKind::Field(Root::Dot, path)
                }
                b'$' => {
                    k += 1;
                    if b.get(k)
                        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                    {
                        return Err(
                            self.err(start, "variables are not supported (only $ for the root)")
                        );
                    }
                    let mut path = Vec::new();
                    if b.get(k) == Some(&b'.') && b.get(k + 1).is_some_and(|c| is_ident_start(*c)) {
                        let (p, end) = self.field_chain(k)?;
                        path = p;
                        k = end;
                    }
                    TokKind::Field(Root::Dollar, path)
                }
                b'0'..=b'9' | b'-' | b'+' => {
                    let (v, end) = self.number(k)?;
                    k = end;
                    TokKind::Lit(v)
                }
                c if is_ident_start(c) => {
                    let mut e = k;
                    while b
                        .get(e)
                        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                    {
                        e += 1;
                    }
                    let word = &src[k..e];
                    k = e;
                    match word {
                        "true" => TokKind::Lit(Value::Bool(true)),
                        "false" => TokKind::Lit(Value::Bool(false)),
                        "nil" => TokKind::Lit(Value::Null),
                        w => TokKind::Ident(w.to_string()),
                    }
                }
                b':' | b'=' => {
                    return Err(self.err(k, "variable declarations are not supported"));
                }
                _ => {
                    let ch = src[k..].chars().next().unwrap_or('?');
                    return Err(self.err(k, format!("unexpected {ch:?} in action")));
                }
            };
            toks.push(Tok { kind, pos: start });
        }
    }

    /// `.a.b.c` starting at the first `.`; `.` alone is the empty chain.
    fn field_chain(&self, mut k: usize) -> Result<(Vec<String>, usize), TemplateError> {
        let b = self.bytes;
        let mut path = Vec::new();
        while b.get(k) == Some(&b'.') {
            let s = k + 1;
            let mut e = s;
            while b
                .get(e)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
            {
                e += 1;
            }
            if e == s {
                if path.is_empty() && b.get(e).is_none_or(|c| *c != b'.') {
                    // `.` alone
                    return Ok((path, e));
                }
                return Err(self.err(k, "bad field name after '.'"));
            }
            if !is_ident_start(b[s]) {
                return Err(self.err(s, "a field name must start with a letter or '_'"));
            }
            path.push(self.src[s..e].to_string());
            k = e;
        }
        Ok((path, k))
    }

    fn string(&self, k: usize) -> Result<(String, usize), TemplateError> {
        let src = self.src;
        let mut out = String::new();
        let mut chars = src[k + 1..].char_indices();
        while let Some((off, c)) = chars.next() {
            match c {
                '"' => return Ok((out, k + 1 + off + 1)),
                '\n' => return Err(self.err(k, "newline in string")),
                '\\' => {
                    let Some((eoff, e)) = chars.next() else { break };
                    let simple = match e {
                        'n' => Some('\n'),
                        't' => Some('\t'),
                        'r' => Some('\r'),
                        '\\' => Some('\\'),
                        '"' => Some('"'),
                        'a' => Some('\u{7}'),
                        'b' => Some('\u{8}'),
                        'f' => Some('\u{c}'),
                        'v' => Some('\u{b}'),
                        '0'..='7' => {
                            let digits: String =
                                src[k + 1 + eoff..].chars().take(3).collect::<String>();
                            let n = u32::from_str_radix(&digits, 8)
                                .ok()
                                .filter(|_| digits.len() == 3)
                                .and_then(char::from_u32);
                            let Some(ch) = n else {
                                return Err(self.err(k + 1 + off, "bad octal escape"));
                            };
                            chars.next();
                            chars.next();
                            Some(ch)
                        }
                        'x' | 'u' | 'U' => {
                            let len = match e {
                                'x' => 2,
                                'u' => 4,
                                _ => 8,
                            };
                            let start = k + 1 + eoff + 1;
                            let hex = src.get(start..start + len).unwrap_or("");
                            let ch =
                                if hex.len() == len && hex.chars().all(|c| c.is_ascii_hexdigit()) {
                                    u32::from_str_radix(hex, 16).ok().and_then(char::from_u32)
                                } else {
                                    None
                                };
                            let Some(ch) = ch else {
                                return Err(self.err(k + 1 + off, "bad escape in string"));
                            };
                            for _ in 0..len {
                                chars.next();
                            }
                            Some(ch)
                        }
                        _ => None,
                    };
                    match simple {
                        Some(ch) => out.push(ch),
                        None => {
                            return Err(
                                self.err(k + 1 + off, format!("unknown escape \\{e} in string"))
                            );
                        }
                    }
                }
                c => out.push(c),
            }
        }
        Err(self.err(k, "unterminated string"))
    }

    fn number(&self, k: usize) -> Result<(Value, usize), TemplateError> {
        let b = self.bytes;
        let mut e = k;
        if matches!(b.get(e), Some(b'-') | Some(b'+')) {
            e += 1;
        }
        if !b.get(e).is_some_and(|c| c.is_ascii_digit()) {
            return Err(self.err(k, "bad number"));
        }
        while let Some(&c) = b.get(e) {
            let exp_sign =
                (c == b'-' || c == b'+') && matches!(b.get(e - 1), Some(b'e') | Some(b'E'));
            if c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || exp_sign {
                e += 1;
            } else {
                break;
            }
        }
        let text = self.src[k..e].replace('_', "");
        let text = text.strip_prefix('+').unwrap_or(&text);
        if let Ok(i) = text.parse::<i64>() {
            return Ok((Value::from(i), e));
        }
        if let Ok(u) = text.parse::<u64>() {
            return Ok((Value::from(u), e));
        }
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok((Value::from(f), e)),
            _ => Err(self.err(k, format!("bad number syntax: {}", &self.src[k..e]))),
        }
    }
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

// ---------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------

enum Terminator {
    Eof,
    End,
    Else(Option<Pipeline>),
}

struct Parser<'a> {
    src: &'a str,
    items: Vec<Item>,
    i: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, pos: usize, message: impl Into<String>) -> TemplateError {
        let (line, column) = line_col(self.src, pos);
        TemplateError::Parse {
            line,
            column,
            message: message.into(),
        }
    }

    fn list(&mut self, depth: usize) -> Result<(Vec<Node>, Terminator, usize), TemplateError> {
        let mut nodes = Vec::new();
        while self.i < self.items.len() {
            let idx = self.i;
            self.i += 1;
            let (pos, toks) = match &self.items[idx] {
                Item::Text(t) => {
                    nodes.push(Node::Text(t.clone()));
                    continue;
                }
                Item::Action { pos, toks } => (*pos, toks.clone()),
            };
            let keyword = match toks.first().map(|t| &t.kind) {
                Some(TokKind::Ident(w)) => Some(w.as_str()),
                _ => None,
            };
            match keyword {
                Some("end") => {
                    if toks.len() > 1 {
                        return Err(self.err(toks[1].pos, "unexpected token after end"));
                    }
                    return Ok((nodes, Terminator::End, pos));
                }
                Some("else") => {
                    if toks.len() == 1 {
                        return Ok((nodes, Terminator::Else(None), pos));
                    }
                    if toks[1].kind == TokKind::Ident("if".into()) {
                        let pipe = self.pipeline_of(&toks[2..], toks[1].pos, depth)?;
                        return Ok((nodes, Terminator::Else(Some(pipe)), pos));
                    }
                    return Err(self.err(toks[1].pos, "expected 'if' or end of action after else"));
                }
                Some(kw @ ("if" | "with" | "range")) => {
                    if depth >= MAX_DEPTH {
                        return Err(self.err(pos, "control structures nested too deeply"));
                    }
                    let pipe = self.pipeline_of(&toks[1..], toks[0].pos, depth)?;
                    let node = self.control(kw, pipe, pos, depth + 1)?;
                    nodes.push(node);
                }
                Some(kw @ ("define" | "template" | "block" | "break" | "continue")) => {
                    return Err(self.err(pos, format!("{{{{{kw}}}}} is not supported")));
                }
                _ => {
                    let pipe = self.pipeline_of(&toks, pos, depth)?;
                    nodes.push(Node::Output(pipe));
                }
            }
        }
        Ok((nodes, Terminator::Eof, self.src.len()))
    }

    fn control(
        &mut self,
        kw: &str,
        pipe: Pipeline,
        pos: usize,
        depth: usize,
    ) -> Result<Node, TemplateError> {
        let mut branches = vec![];
        let mut cond = pipe;
        loop {
            let (body, term, tpos) = self.list(depth)?;
            match term {
                Terminator::Eof => {
                    return Err(
                        self.err(pos, format!("unclosed {{{{{kw}}}}} (missing {{{{end}}}})"))
                    );
                }
                Terminator::End => {
                    branches.push((cond, body));
                    return Ok(make_control(kw, branches, vec![]));
                }
                Terminator::Else(None) => {
                    branches.push((cond, body));
                    let (otherwise, term, epos) = self.list(depth)?;
                    return match term {
                        Terminator::End => Ok(make_control(kw, branches, otherwise)),
                        Terminator::Eof => {
                            Err(self
                                .err(pos, format!("unclosed {{{{{kw}}}}} (missing {{{{end}}}})")))
                        }
                        Terminator::Else(_) => Err(self.err(epos, "unexpected else after else")),
                    };
                }
                Terminator::Else(Some(next)) => {
                    if kw != "if" {
                        return Err(
                            self.err(tpos, format!("else if is not allowed in {{{{{kw}}}}}"))
                        );
                    }
                    branches.push((cond, body));
                    cond = next;
                }
            }
        }
    }

    fn pipeline_of(
        &self,
        toks: &[Tok],
        pos: usize,
        depth: usize,
    ) -> Result<Pipeline, TemplateError> {
        let mut i = 0;
        let p = self.pipeline(toks, &mut i, pos, depth)?;
        if let Some(t) = toks.get(i) {
            return Err(self.err(t.pos, "unexpected ')'"));
        }
        Ok(p)
    }

    fn pipeline(
        &self,
        toks: &[Tok],
        i: &mut usize,
        pos: usize,
        depth: usize,
    ) -> Result<Pipeline, TemplateError> {
        if depth > MAX_DEPTH {
            return Err(self.err(pos, "pipeline nested too deeply"));
        }
        let mut cmds: Vec<Command> = Vec::new();
        loop {
            let cpos = toks
                .get(*i)
                .or_else(|| i.checked_sub(1).and_then(|j| toks.get(j)))
                .map(|t| t.pos)
                .unwrap_or(pos);
            let mut args = Vec::new();
            while let Some(t) = toks.get(*i) {
                match &t.kind {
                    TokKind::Pipe | TokKind::RParen => break,
                    TokKind::LParen => {
                        *i += 1;
                        let sub = self.pipeline(toks, i, t.pos, depth + 1)?;
                        match toks.get(*i) {
                            Some(Tok {
                                kind: TokKind::RParen,
                                ..
                            }) => *i += 1,
                            _ => return Err(self.err(t.pos, "unclosed '('")),
                        }
                        args.push(Arg::Sub(Box::new(sub)));
                    }
                    TokKind::Field(root, path) => {
                        *i += 1;
                        args.push(Arg::Field {
                            root: *root,
                            path: path.clone(),
                            pos: t.pos,
                        });
                    }
                    TokKind::Lit(v) => {
                        *i += 1;
                        args.push(Arg::Lit(v.clone()));
                    }
                    TokKind::Ident(name) => {
                        *i += 1;
                        match Func::from_name(name) {
                            Some(f) => args.push(Arg::Func {
                                name: f,
                                pos: t.pos,
                            }),
                            None if matches!(
                                name.as_str(),
                                "if" | "else" | "end" | "range" | "with"
                            ) =>
                            {
                                return Err(self.err(t.pos, format!("unexpected keyword {name:?}")));
                            }
                            None => {
                                return Err(self.err(
                                    t.pos,
                                    format!(
                                        "function {name:?} not defined (available: {FUNC_NAMES})"
                                    ),
                                ));
                            }
                        }
                    }
                }
            }
            if args.is_empty() {
                return Err(self.err(cpos, "missing value for command"));
            }
            let piped = !cmds.is_empty();
            self.check_command(&args, cpos, piped)?;
            cmds.push(Command { pos: cpos, args });
            match toks.get(*i) {
                Some(Tok {
                    kind: TokKind::Pipe,
                    ..
                }) => *i += 1,
                _ => break,
            }
        }
        Ok(Pipeline { cmds })
    }

    fn check_command(&self, args: &[Arg], pos: usize, piped: bool) -> Result<(), TemplateError> {
        for a in &args[1..] {
            if let Arg::Func { name, pos } = a {
                return Err(self.err(
                    *pos,
                    format!(
                        "function {} used as an argument; wrap its call in parentheses",
                        name.name()
                    ),
                ));
            }
        }
        match &args[0] {
            Arg::Func { name, pos } => {
                let n = args.len() - 1 + usize::from(piped);
                let (min, max) = name.arity();
                if n < min || n > max {
                    let want = if min == max {
                        format!("{min}")
                    } else if max == usize::MAX {
                        format!("at least {min}")
                    } else {
                        format!("{min} to {max}")
                    };
                    return Err(self.err(
                        *pos,
                        format!(
                            "wrong number of arguments for {}: want {want}, got {n}",
                            name.name()
                        ),
                    ));
                }
                if *name == Func::Printf
                    && let Some(Arg::Lit(Value::String(f))) = args.get(1)
                    && let Err(m) = check_printf_format(f, n - 1)
                {
                    return Err(self.err(*pos, m));
                }
                Ok(())
            }
            _ if piped => Err(self.err(pos, "non-function in a pipeline cannot receive input")),
            _ if args.len() > 1 => Err(self.err(pos, "cannot give arguments to a non-function")),
            Arg::Lit(Value::Null) => Err(self.err(pos, "nil is not a command")),
            _ => Ok(()),
        }
    }
}

fn make_control(kw: &str, mut branches: Vec<(Pipeline, Vec<Node>)>, otherwise: Vec<Node>) -> Node {
    match kw {
        "if" => Node::If {
            branches,
            otherwise,
        },
        _ => {
            let (pipe, body) = branches.remove(0);
            if kw == "with" {
                Node::With {
                    pipe,
                    body,
                    otherwise,
                }
            } else {
                Node::Range {
                    pipe,
                    body,
                    otherwise,
                }
            }
        }
    }
}

/// Check a literal printf format: supported verbs and the argument count.
fn check_printf_format(f: &str, nargs: usize) -> Result<(), String> {
    let mut count = 0;
    let mut chars = f.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        match chars.next() {
            Some('%') => {}
            Some('s' | 'd' | 'v' | 'q') => count += 1,
            Some(o) => {
                return Err(format!(
                    "printf: unsupported verb %{o} (supported: %s %d %v %q %%)"
                ));
            }
            None => return Err("printf: format ends with a lone %".to_string()),
        }
    }
    if count != nargs {
        return Err(format!(
            "printf: format has {count} verbs but {nargs} arguments"
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------

impl Template {
    /// Parse a template; the error names the line and column.
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let lexer = Lexer {
            src,
            bytes: src.as_bytes(),
        };
        let items = lexer.items()?;
        let mut parser = Parser { src, items, i: 0 };
        let (nodes, term, pos) = parser.list(0)?;
        match term {
            Terminator::Eof => Ok(Template {
                src: src.to_string(),
                nodes,
            }),
            Terminator::End => Err(parser.err(pos, "unexpected {{end}}")),
            Terminator::Else(_) => Err(parser.err(pos, "unexpected {{else}}")),
        }
    }

    /// The template text.
    pub fn source(&self) -> &str {
        &self.src
    }

    /// Whether the template is plain text (renders to itself).
    pub fn is_literal(&self) -> bool {
        self.nodes.iter().all(|n| matches!(n, Node::Text(_)))
    }

    /// Render with the given data.
    pub fn render(&self, ctx: &TemplateContext) -> Result<String, TemplateError> {
        let mut exec = Exec {
            src: &self.src,
            ctx,
            steps: 0,
            out: String::new(),
            root: None,
        };
        exec.nodes(&self.nodes, &Dot::Root)?;
        Ok(exec.out)
    }

    /// Every `.Values.<key>` the template references.
    pub fn referenced_values(&self) -> BTreeSet<String> {
        let mut refs = Refs::default();
        refs.nodes(&self.nodes, true);
        refs.all
    }

    /// Data the template reads from the root that no run has (`.Foo`, `.Alert.Nmae`,
    /// `.Run.Uid`), as written: rendering would fail on it, mid-run.
    pub fn unknown_data(&self) -> BTreeSet<String> {
        let mut refs = Refs::default();
        refs.nodes(&self.nodes, true);
        refs.unknown
    }

    /// The `.Values.<key>` the template cannot render without: every reference except
    /// those only given to `default`.
    pub fn required_values(&self) -> BTreeSet<String> {
        let mut refs = Refs::default();
        refs.nodes(&self.nodes, true);
        refs.required
    }
}

/// Parse and render `src`.
pub fn render_str(src: &str, ctx: &TemplateContext) -> Result<String, TemplateError> {
    if !src.contains("{{") {
        return Ok(src.to_string());
    }
    Template::parse(src)?.render(ctx)
}

/// Call `f` with the location (canonical field path, empty for the root) and text of every
/// string leaf of `v`. Object keys are not leaves.
pub fn for_each_string_leaf<'v>(v: &'v Value, f: &mut dyn FnMut(&[Segment], &'v str)) {
    fn walk<'v>(v: &'v Value, path: &mut Vec<Segment>, f: &mut dyn FnMut(&[Segment], &'v str)) {
        match v {
            Value::String(s) => f(path, s),
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    path.push(Segment::Index(i));
                    walk(x, path, f);
                    path.pop();
                }
            }
            Value::Object(m) => {
                for (k, x) in m {
                    path.push(Segment::Key(k.clone()));
                    walk(x, path, f);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    walk(v, &mut Vec::new(), f)
}

/// Text of a leaf location (`spec.containers[0].command[2]`).
pub fn location_of(path: &[Segment]) -> String {
    FieldPath::from_segments(path.to_vec()).to_string()
}

fn at_leaf(path: &[Segment], e: TemplateError) -> TemplateError {
    if path.is_empty() {
        e
    } else {
        TemplateError::AtLeaf {
            location: location_of(path),
            source: Box::new(e),
        }
    }
}

/// Render templates in every string leaf of `v` (keys untouched). The output is never
/// re-parsed, so quotes or newlines in values cannot change the document's structure.
pub fn render_leaves(v: &Value, ctx: &TemplateContext) -> Result<Value, TemplateError> {
    fn walk(
        v: &Value,
        path: &mut Vec<Segment>,
        ctx: &TemplateContext,
    ) -> Result<Value, TemplateError> {
        Ok(match v {
            Value::String(s) => Value::String(render_str(s, ctx).map_err(|e| at_leaf(path, e))?),
            Value::Array(a) => {
                let mut out = Vec::with_capacity(a.len());
                for (i, x) in a.iter().enumerate() {
                    path.push(Segment::Index(i));
                    out.push(walk(x, path, ctx)?);
                    path.pop();
                }
                Value::Array(out)
            }
            Value::Object(m) => {
                let mut out = serde_json::Map::with_capacity(m.len());
                for (k, x) in m {
                    path.push(Segment::Key(k.clone()));
                    out.insert(k.clone(), walk(x, path, ctx)?);
                    path.pop();
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }
    walk(v, &mut Vec::new(), ctx)
}

/// All `.Values.<key>` referenced in the string leaves of `v`.
pub fn referenced_values_in(v: &Value) -> Result<BTreeSet<String>, TemplateError> {
    let mut out = BTreeSet::new();
    let mut err = None;
    for_each_string_leaf(v, &mut |path, s| {
        if err.is_some() || !s.contains("{{") {
            return;
        }
        match Template::parse(s) {
            Ok(t) => out.extend(t.referenced_values()),
            Err(e) => err = Some(at_leaf(path, e)),
        }
    });
    match err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

// ---------------------------------------------------------------------------------------
// References
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct Refs {
    all: BTreeSet<String>,
    required: BTreeSet<String>,
    /// Root data that never exists at run time (`.Foo`, `.Alert.Nmae`), as written.
    unknown: BTreeSet<String>,
}

/// Whether a field chain from the root names data a run has: `.Values…`, `.Alert`,
/// `.Alert.Name`, `.Alert.Labels…`, `.Alert.Annotations…`, `.Run`, `.Run.Name`,
/// `.Run.Namespace`.
fn is_known_root_data(path: &[String]) -> bool {
    let first = path.first().map(String::as_str);
    let second = path.get(1).map(String::as_str);
    matches!(
        (first, second, path.len()),
        (None | Some("Values"), _, _)
            | (Some("Alert" | "Run"), None, 1)
            | (Some("Alert"), Some("Labels" | "Annotations"), _)
            | (Some("Alert"), Some("Name"), 2)
            | (Some("Run"), Some("Name" | "Namespace"), 2)
    )
}

impl Refs {
    fn add(&mut self, key: &str, guarded: bool) {
        self.all.insert(key.to_string());
        if !guarded {
            self.required.insert(key.to_string());
        }
    }

    fn nodes(&mut self, nodes: &[Node], dot_is_root: bool) {
        for n in nodes {
            match n {
                Node::Text(_) => {}
                Node::Output(p) => self.pipeline(p, dot_is_root),
                Node::If {
                    branches,
                    otherwise,
                } => {
                    for (c, b) in branches {
                        self.pipeline(c, dot_is_root);
                        self.nodes(b, dot_is_root);
                    }
                    self.nodes(otherwise, dot_is_root);
                }
                Node::With {
                    pipe,
                    body,
                    otherwise,
                }
                | Node::Range {
                    pipe,
                    body,
                    otherwise,
                } => {
                    self.pipeline(pipe, dot_is_root);
                    self.nodes(body, false);
                    self.nodes(otherwise, dot_is_root);
                }
            }
        }
    }

    fn pipeline(&mut self, p: &Pipeline, dot_is_root: bool) {
        for (i, c) in p.cmds.iter().enumerate() {
            let next_is_default = matches!(
                p.cmds.get(i + 1).and_then(|n| n.args.first()),
                Some(Arg::Func {
                    name: Func::Default,
                    ..
                })
            );
            let is_default = matches!(
                c.args.first(),
                Some(Arg::Func {
                    name: Func::Default,
                    ..
                })
            );
            if let (
                Some(Arg::Func {
                    name: Func::Index, ..
                }),
                Some(Arg::Field { root, path, .. }),
                Some(Arg::Lit(Value::String(k))),
            ) = (c.args.first(), c.args.get(1), c.args.get(2))
                && path.len() == 1
                && path[0] == "Values"
                && (*root == Root::Dollar || dot_is_root)
            {
                self.add(k, false);
            }
            for a in &c.args {
                let guarded = is_default || (next_is_default && c.args.len() == 1);
                self.arg(a, dot_is_root, guarded);
            }
        }
    }

    fn arg(&mut self, a: &Arg, dot_is_root: bool, guarded: bool) {
        match a {
            Arg::Field { root, path, .. } => {
                let at_root = *root == Root::Dollar || dot_is_root;
                if at_root && path.len() >= 2 && path[0] == "Values" {
                    self.add(&path[1], guarded);
                }
                if at_root && !is_known_root_data(path) {
                    let prefix = if *root == Root::Dollar { "$" } else { "" };
                    self.unknown.insert(format!("{prefix}.{}", path.join(".")));
                }
            }
            Arg::Sub(p) => self.pipeline(p, dot_is_root),
            Arg::Lit(_) | Arg::Func { .. } => {}
        }
    }
}

// ---------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------

enum Dot {
    Root,
    Val(Value),
}

struct Exec<'t, 'c> {
    src: &'t str,
    ctx: &'t TemplateContext<'c>,
    steps: usize,
    out: String,
    root: Option<Value>,
}

/// The value of an evaluated argument: a missing key is kept apart for `default`.
enum Evaluated {
    Val(Value),
    Missing(TemplateError),
}

impl Exec<'_, '_> {
    fn err(&self, pos: usize, message: impl Into<String>) -> TemplateError {
        let (line, column) = line_col(self.src, pos);
        TemplateError::Exec {
            line,
            column,
            message: message.into(),
        }
    }

    fn missing(&self, pos: usize, key: String, hint: String) -> TemplateError {
        let (line, column) = line_col(self.src, pos);
        TemplateError::MissingKey {
            key,
            line,
            column,
            hint,
        }
    }

    fn tick(&mut self, pos: usize) -> Result<(), TemplateError> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(self.err(pos, "template takes too many steps to evaluate"));
        }
        if self.out.len() > MAX_OUTPUT {
            return Err(self.err(pos, format!("template output exceeds {MAX_OUTPUT} bytes")));
        }
        Ok(())
    }

    fn nodes(&mut self, nodes: &[Node], dot: &Dot) -> Result<(), TemplateError> {
        for n in nodes {
            self.tick(0)?;
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Output(p) => {
                    let v = self.pipeline(p, dot)?;
                    let pos = p.cmds.last().map(|c| c.pos).unwrap_or(0);
                    let text = self.to_text(&v, pos)?;
                    self.out.push_str(&text);
                }
                Node::If {
                    branches,
                    otherwise,
                } => {
                    let mut done = false;
                    for (cond, body) in branches {
                        if truth(&self.pipeline(cond, dot)?) {
                            self.nodes(body, dot)?;
                            done = true;
                            break;
                        }
                    }
                    if !done {
                        self.nodes(otherwise, dot)?;
                    }
                }
                Node::With {
                    pipe,
                    body,
                    otherwise,
                } => {
                    let v = self.pipeline(pipe, dot)?;
                    if truth(&v) {
                        self.nodes(body, &Dot::Val(v))?;
                    } else {
                        self.nodes(otherwise, dot)?;
                    }
                }
                Node::Range {
                    pipe,
                    body,
                    otherwise,
                } => {
                    let v = self.pipeline(pipe, dot)?;
                    let pos = pipe.cmds.first().map(|c| c.pos).unwrap_or(0);
                    let items: Vec<Value> = match v {
                        Value::Array(a) => a,
                        Value::Object(m) => {
                            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
                            entries.sort_by(|a, b| a.0.cmp(&b.0));
                            entries.into_iter().map(|(_, v)| v).collect()
                        }
                        Value::Null => Vec::new(),
                        other => {
                            return Err(self.err(
                                pos,
                                format!(
                                    "range can't iterate over {}",
                                    crate::fieldpath::kind_of(&other)
                                ),
                            ));
                        }
                    };
                    if items.is_empty() {
                        self.nodes(otherwise, dot)?;
                    }
                    for item in items {
                        self.nodes(body, &Dot::Val(item))?;
                    }
                }
            }
        }
        Ok(())
    }

    fn pipeline(&mut self, p: &Pipeline, dot: &Dot) -> Result<Value, TemplateError> {
        let mut piped: Option<Evaluated> = None;
        for (i, c) in p.cmds.iter().enumerate() {
            self.tick(c.pos)?;
            let lenient_next = matches!(
                p.cmds.get(i + 1).and_then(|n| n.args.first()),
                Some(Arg::Func {
                    name: Func::Default,
                    ..
                })
            );
            piped = Some(self.command(c, dot, piped.take(), lenient_next)?);
        }
        match piped {
            Some(Evaluated::Val(v)) => Ok(v),
            Some(Evaluated::Missing(e)) => Err(e),
            None => Err(self.err(0, "empty pipeline")),
        }
    }

    fn command(
        &mut self,
        c: &Command,
        dot: &Dot,
        piped: Option<Evaluated>,
        lenient: bool,
    ) -> Result<Evaluated, TemplateError> {
        match &c.args[0] {
            Arg::Func { name, pos } => self
                .call(*name, *pos, &c.args[1..], dot, piped)
                .map(Evaluated::Val),
            a => {
                let v = self.arg(a, dot)?;
                match v {
                    Evaluated::Missing(e) if !lenient => Err(e),
                    v => Ok(v),
                }
            }
        }
    }

    fn arg(&mut self, a: &Arg, dot: &Dot) -> Result<Evaluated, TemplateError> {
        match a {
            Arg::Lit(v) => Ok(Evaluated::Val(v.clone())),
            Arg::Sub(p) => self.pipeline(p, dot).map(Evaluated::Val),
            Arg::Func { name, pos } => {
                Err(self.err(*pos, format!("function {} needs arguments", name.name())))
            }
            Arg::Field { root, path, pos } => self.field(*root, path, *pos, dot),
        }
    }

    fn strict(&mut self, a: &Arg, dot: &Dot) -> Result<Value, TemplateError> {
        match self.arg(a, dot)? {
            Evaluated::Val(v) => Ok(v),
            Evaluated::Missing(e) => Err(e),
        }
    }

    fn ensure_root(&mut self) {
        if self.root.is_none() {
            let ctx = self.ctx;
            let alert = &ctx.alert;
            self.root = Some(serde_json::json!({
                "Values": ctx.values,
                "Alert": {"Name": alert.name, "Labels": alert.labels, "Annotations": alert.annotations},
                "Run": {"Name": ctx.run_name, "Namespace": ctx.run_namespace},
            }));
        }
    }

    fn field(
        &mut self,
        root: Root,
        path: &[String],
        pos: usize,
        dot: &Dot,
    ) -> Result<Evaluated, TemplateError> {
        let at_root = root == Root::Dollar || matches!(dot, Dot::Root);
        let values_fast = at_root && path.len() >= 2 && path[0] == "Values";
        if at_root && !values_fast {
            self.ensure_root();
        }
        let prefix = if root == Root::Dollar { "$" } else { "" };
        let show = |n: usize| {
            let mut s = prefix.to_string();
            for p in &path[..n] {
                s.push('.');
                s.push_str(p);
            }
            if s.is_empty() {
                s.push('.');
            }
            s
        };
        let null = Value::Null;
        let (start, mut cur): (usize, &Value) = if values_fast {
            // `.Values.<key>…` without building the root object.
            match self.ctx.values.get(&path[1]) {
                Some(v) => (2, v),
                None => {
                    let known: Vec<&str> = self.ctx.values.keys().map(String::as_str).collect();
                    let hint = if known.is_empty() {
                        " (no step has produced a value yet)".to_string()
                    } else {
                        format!(" (known values: {})", known.join(", "))
                    };
                    return Ok(Evaluated::Missing(self.missing(pos, show(2), hint)));
                }
            }
        } else if at_root {
            if let Some(first) = path.first()
                && !matches!(first.as_str(), "Values" | "Alert" | "Run")
            {
                return Ok(Evaluated::Missing(self.missing(
                    pos,
                    show(1),
                    " (available: .Values, .Alert, .Run)".to_string(),
                )));
            }
            (0, self.root.as_ref().unwrap_or(&null))
        } else {
            match dot {
                Dot::Val(v) => (0, v),
                Dot::Root => (0, &null),
            }
        };
        for (i, key) in path.iter().enumerate().skip(start) {
            cur = match cur {
                Value::Object(m) => match m.get(key) {
                    Some(v) => v,
                    None => {
                        let hint = if m.len() <= 20 && !m.is_empty() {
                            let keys: Vec<&str> = m.keys().map(String::as_str).collect();
                            format!(" (available: {})", keys.join(", "))
                        } else {
                            String::new()
                        };
                        return Ok(Evaluated::Missing(self.missing(pos, show(i + 1), hint)));
                    }
                },
                Value::Null => {
                    return Ok(Evaluated::Missing(self.missing(
                        pos,
                        show(i + 1),
                        format!(" ({} is null)", show(i)),
                    )));
                }
                other => {
                    return Err(self.err(
                        pos,
                        format!(
                            "can't read field {key} of {} ({} is {})",
                            show(i + 1),
                            show(i),
                            crate::fieldpath::kind_of(other)
                        ),
                    ));
                }
            };
        }
        Ok(Evaluated::Val(cur.clone()))
    }

    fn call(
        &mut self,
        f: Func,
        pos: usize,
        args: &[Arg],
        dot: &Dot,
        piped: Option<Evaluated>,
    ) -> Result<Value, TemplateError> {
        // Functions with special evaluation first.
        match f {
            Func::Default => {
                let mut vals = Vec::with_capacity(2);
                for a in args {
                    vals.push(self.arg(a, dot)?);
                }
                if let Some(p) = piped {
                    vals.push(p);
                }
                let mut it = vals.into_iter();
                let (Some(d), Some(given)) = (it.next(), it.next()) else {
                    return Err(self.err(pos, "default needs 2 arguments"));
                };
                let d = match d {
                    Evaluated::Val(v) => v,
                    Evaluated::Missing(e) => return Err(e),
                };
                return Ok(match given {
                    Evaluated::Val(v) if truth(&v) => v,
                    _ => d,
                });
            }
            Func::And | Func::Or => {
                let total = args.len() + usize::from(piped.is_some());
                let mut last = Value::Null;
                let mut piped = piped;
                for i in 0..total {
                    let v = match args.get(i) {
                        Some(a) => self.strict(a, dot)?,
                        None => match piped.take() {
                            Some(Evaluated::Val(v)) => v,
                            Some(Evaluated::Missing(e)) => return Err(e),
                            None => Value::Null,
                        },
                    };
                    let t = truth(&v);
                    if (f == Func::And && !t) || (f == Func::Or && t) {
                        return Ok(v);
                    }
                    last = v;
                }
                return Ok(last);
            }
            _ => {}
        }
        let mut vals = Vec::with_capacity(args.len() + 1);
        for a in args {
            vals.push(self.strict(a, dot)?);
        }
        match piped {
            Some(Evaluated::Val(v)) => vals.push(v),
            Some(Evaluated::Missing(e)) => return Err(e),
            None => {}
        }
        let name = f.name();
        let s = |this: &Self, v: &Value| this.to_text(v, pos);
        let value = match f {
            Func::Quote => {
                let mut out = String::new();
                for (i, v) in vals.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(&go_quote(&s(self, v)?));
                    self.check_size(name, out.len(), pos)?;
                }
                Value::String(out)
            }
            Func::Upper => Value::String(s(self, &vals[0])?.to_uppercase()),
            Func::Lower => Value::String(s(self, &vals[0])?.to_lowercase()),
            Func::Trim => Value::String(s(self, &vals[0])?.trim().to_string()),
            Func::Replace => {
                let (old, new, src) = (s(self, &vals[0])?, s(self, &vals[1])?, s(self, &vals[2])?);
                if old.is_empty() {
                    Value::String(src)
                } else {
                    // Size the result before building it: nested replaces multiply.
                    let n = src.matches(old.as_str()).count();
                    let len =
                        (src.len() - n * old.len()).saturating_add(n.saturating_mul(new.len()));
                    self.check_size(name, len, pos)?;
                    Value::String(src.replace(&old, &new))
                }
            }
            Func::B64Enc => {
                let text = s(self, &vals[0])?;
                self.check_size(name, text.len().div_ceil(3).saturating_mul(4), pos)?;
                Value::String(base64::engine::general_purpose::STANDARD.encode(text))
            }
            Func::B64Dec => {
                let text = s(self, &vals[0])?;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(text.trim())
                    .map_err(|e| self.err(pos, format!("b64dec: invalid base64: {e}")))?;
                Value::String(
                    String::from_utf8(bytes)
                        .map_err(|_| self.err(pos, "b64dec: decoded bytes are not UTF-8 text"))?,
                )
            }
            Func::ToJson => Value::String(
                serde_json::to_string(&vals[0])
                    .map_err(|e| self.err(pos, format!("toJson: {e}")))?,
            ),
            Func::Index => {
                let mut it = vals.into_iter();
                let mut cur = it.next().unwrap_or(Value::Null);
                for key in it {
                    cur = match (cur, &key) {
                        (Value::Object(mut m), Value::String(k)) => match m.remove(k) {
                            Some(v) => v,
                            None => {
                                return Err(self.missing(
                                    pos,
                                    format!("{k:?} (index)"),
                                    String::new(),
                                ));
                            }
                        },
                        (Value::Array(mut a), Value::Number(n)) => {
                            let idx = n.as_u64().and_then(|i| usize::try_from(i).ok());
                            match idx {
                                Some(i) if i < a.len() => a.swap_remove(i),
                                _ => return Err(self.err(pos, format!("index out of range: {n}"))),
                            }
                        }
                        (Value::Null, k) => {
                            return Err(self.missing(
                                pos,
                                format!("{k} (index of a missing value)"),
                                String::new(),
                            ));
                        }
                        (c, k) => {
                            return Err(self.err(
                                pos,
                                format!(
                                    "can't index {} with {}",
                                    crate::fieldpath::kind_of(&c),
                                    crate::fieldpath::kind_of(k)
                                ),
                            ));
                        }
                    };
                }
                cur
            }
            Func::Printf => {
                let format = s(self, &vals[0])?;
                Value::String(self.printf(&format, &vals[1..], pos)?)
            }
            Func::Eq => {
                let first = &vals[0];
                let mut any = false;
                for other in &vals[1..] {
                    if self.equal(first, other, pos)? {
                        any = true;
                        break;
                    }
                }
                Value::Bool(any)
            }
            Func::Ne => Value::Bool(!self.equal(&vals[0], &vals[1], pos)?),
            Func::Not => Value::Bool(!truth(&vals[0])),
            Func::Default | Func::And | Func::Or => {
                return Err(self.err(pos, format!("{name}: internal evaluation order")));
            }
        };
        if let Value::String(text) = &value {
            self.check_size(name, text.len(), pos)?;
        }
        Ok(value)
    }

    /// Fails when one function's result would be larger than a whole render may produce.
    fn check_size(&self, name: &str, len: usize, pos: usize) -> Result<(), TemplateError> {
        if len > MAX_OUTPUT {
            return Err(self.err(
                pos,
                format!("the result of {name} exceeds {MAX_OUTPUT} bytes"),
            ));
        }
        Ok(())
    }

    fn equal(&self, a: &Value, b: &Value, pos: usize) -> Result<bool, TemplateError> {
        match (a, b) {
            (Value::Null, Value::Null) => Ok(true),
            (Value::Null, _) | (_, Value::Null) => Ok(false),
            (Value::String(x), Value::String(y)) => Ok(x == y),
            (Value::Bool(x), Value::Bool(y)) => Ok(x == y),
            (Value::Number(x), Value::Number(y)) => Ok(match (x.as_i64(), y.as_i64()) {
                (Some(i), Some(j)) => i == j,
                _ => match (x.as_u64(), y.as_u64()) {
                    (Some(i), Some(j)) => i == j,
                    _ => x.as_f64() == y.as_f64(),
                },
            }),
            (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => {
                Err(self.err(pos, "eq/ne: lists and objects are not comparable"))
            }
            (x, y) => Err(self.err(
                pos,
                format!(
                    "incompatible types for comparison: {} and {}",
                    crate::fieldpath::kind_of(x),
                    crate::fieldpath::kind_of(y)
                ),
            )),
        }
    }

    fn printf(&self, format: &str, args: &[Value], pos: usize) -> Result<String, TemplateError> {
        let mut out = String::new();
        let mut it = args.iter();
        let mut chars = format.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let verb = chars.next();
            if verb == Some('%') {
                out.push('%');
                continue;
            }
            let Some(arg) = it.next() else {
                return Err(self.err(pos, "printf: too few arguments for the format"));
            };
            self.check_size("printf", out.len(), pos)?;
            match verb {
                Some('s') | Some('v') => out.push_str(&self.to_text(arg, pos)?),
                Some('q') => out.push_str(&go_quote(&self.to_text(arg, pos)?)),
                Some('d') => match arg {
                    Value::Number(n) if n.is_i64() || n.is_u64() => out.push_str(&n.to_string()),
                    Value::Number(n)
                        if n.as_f64()
                            .is_some_and(|f| f.fract() == 0.0 && f.abs() < 9e15) =>
                    {
                        out.push_str(&format!("{}", n.as_f64().unwrap_or_default() as i64));
                    }
                    other => {
                        return Err(self.err(
                            pos,
                            format!(
                                "printf: %d needs an integer, got {}",
                                crate::fieldpath::kind_of(other)
                            ),
                        ));
                    }
                },
                Some(o) => {
                    return Err(self.err(
                        pos,
                        format!("printf: unsupported verb %{o} (supported: %s %d %v %q %%)"),
                    ));
                }
                None => return Err(self.err(pos, "printf: format ends with a lone %")),
            }
        }
        if it.next().is_some() {
            return Err(self.err(pos, "printf: more arguments than verbs in the format"));
        }
        Ok(out)
    }

    fn to_text(&self, v: &Value, pos: usize) -> Result<String, TemplateError> {
        Ok(match v {
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => format_number(n),
            Value::Null => {
                return Err(self.err(pos, "value is null; nothing to print (use default)"));
            }
            other => serde_json::to_string(other).map_err(|e| self.err(pos, e.to_string()))?,
        })
    }
}

/// A number as Go's `%v` prints it (integral floats without a fraction).
fn format_number(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e21 => format!("{f:.0}"),
        _ => n.to_string(),
    }
}

/// Go truthiness: false, 0, nil and empty strings, lists and maps are false.
fn truth(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// Quote a string as Go's `strconv.Quote` / `%q` does.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    struct Data {
        values: BTreeMap<String, Value>,
        alert: lifeboat_api::AlertSpec,
    }

    fn data() -> Data {
        let mut values = BTreeMap::new();
        values.insert("podImage".to_string(), json!("example-image:v1"));
        values.insert("replicas".to_string(), json!(3));
        values.insert("ratio".to_string(), json!(1.5));
        values.insert(
            "svc".to_string(),
            json!({"ip": "10.0.0.7", "ports": [80, 443]}),
        );
        values.insert("empty".to_string(), json!(""));
        values.insert("nothing".to_string(), Value::Null);
        values.insert("flag".to_string(), json!(true));
        values.insert("new-primary".to_string(), json!("db-2"));
        let alert = lifeboat_api::AlertSpec {
            name: "critical-alert".into(),
            labels: [("severity", "critical"), ("app", "my-app")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: [("summary".to_string(), "DB \"down\"\nnow".to_string())]
                .into_iter()
                .collect(),
        };
        Data { values, alert }
    }

    fn render(src: &str) -> Result<String, TemplateError> {
        let d = data();
        let ctx = TemplateContext {
            values: &d.values,
            alert: &d.alert,
            run_name: "run-1",
            run_namespace: "ops",
        };
        render_str(src, &ctx)
    }

    fn ok(src: &str) -> String {
        render(src).unwrap_or_else(|e| panic!("{src:?} failed: {e}"))
    }

    #[test]
    fn renders_seed_template() {
        assert_eq!(ok("{{ .Values.podImage }}"), "example-image:v1");
        assert_eq!(
            ok("echo Updating to image {{ .Values.podImage }}"),
            "echo Updating to image example-image:v1"
        );
    }

    #[test]
    fn renders_alert_and_run_data() {
        assert_eq!(
            ok("{{.Alert.Name}}/{{ .Alert.Labels.severity }}"),
            "critical-alert/critical"
        );
        assert_eq!(ok("{{ .Run.Name }}.{{ .Run.Namespace }}"), "run-1.ops");
        assert_eq!(ok("{{ $.Values.svc.ip }}"), "10.0.0.7");
        assert_eq!(ok("{{ index .Values \"new-primary\" }}"), "db-2");
        assert_eq!(ok("{{ index .Values.svc.ports 1 }}"), "443");
    }

    #[test]
    fn non_string_values_print_as_go_does() {
        assert_eq!(ok("{{ .Values.replicas }}"), "3");
        assert_eq!(ok("{{ .Values.ratio }}"), "1.5");
        assert_eq!(ok("{{ .Values.flag }}"), "true");
        assert_eq!(
            ok("{{ .Values.svc }}"),
            r#"{"ip":"10.0.0.7","ports":[80,443]}"#
        );
        assert_eq!(ok("{{ 3.0 }}"), "3");
    }

    #[test]
    fn missing_key_is_an_error_naming_the_key() {
        let e = render("{{ .Values.nope }}").unwrap_err();
        match &e {
            TemplateError::MissingKey {
                key, line, column, ..
            } => {
                assert_eq!(key, ".Values.nope");
                assert_eq!((*line, *column), (1, 4));
            }
            other => panic!("expected MissingKey, got {other:?}"),
        }
        assert!(e.to_string().contains("known values: empty, flag"), "{e}");
        let e = render("{{ .Alert.Labels.team }}").unwrap_err();
        assert!(
            e.to_string().contains("missing key .Alert.Labels.team"),
            "{e}"
        );
        let e = render("{{ .Values.svc.port }}").unwrap_err();
        assert!(e.to_string().contains(".Values.svc.port"), "{e}");
        let e = render("{{ .Nope }}").unwrap_err();
        assert!(
            e.to_string().contains("available: .Values, .Alert, .Run"),
            "{e}"
        );
        let e = render("{{ .Values.nothing }}").unwrap_err();
        assert!(e.to_string().contains("null"), "{e}");
        let e = render("{{ index .Alert.Labels \"team\" }}").unwrap_err();
        assert!(matches!(e, TemplateError::MissingKey { .. }), "{e:?}");
    }

    #[test]
    fn default_applies_to_missing_and_empty() {
        assert_eq!(ok("{{ .Values.nope | default \"x\" }}"), "x");
        assert_eq!(ok("{{ default \"x\" .Values.nope }}"), "x");
        assert_eq!(ok("{{ .Values.empty | default \"x\" }}"), "x");
        assert_eq!(
            ok("{{ .Values.podImage | default \"x\" }}"),
            "example-image:v1"
        );
        let t = Template::parse("{{ .Values.a | default \"x\" }}{{ .Values.b }}").unwrap();
        assert_eq!(
            t.referenced_values(),
            ["a", "b"].into_iter().map(String::from).collect()
        );
        assert_eq!(
            t.required_values(),
            ["b"].into_iter().map(String::from).collect()
        );
    }

    #[test]
    fn functions() {
        assert_eq!(ok("{{ .Alert.Labels.app | upper }}"), "MY-APP");
        assert_eq!(ok("{{ \"ABC\" | lower }}"), "abc");
        assert_eq!(ok("{{ \"  x \" | trim }}"), "x");
        assert_eq!(
            ok("{{ .Values.podImage | replace \":\" \"@\" }}"),
            "example-image@v1"
        );
        assert_eq!(
            ok("{{ .Alert.Annotations.summary | quote }}"),
            r#""DB \"down\"\nnow""#
        );
        assert_eq!(ok("{{ \"hi\" | b64enc }}"), "aGk=");
        assert_eq!(ok("{{ \"aGk=\" | b64dec }}"), "hi");
        assert_eq!(
            ok("{{ .Values.svc | toJson }}"),
            r#"{"ip":"10.0.0.7","ports":[80,443]}"#
        );
        assert_eq!(
            ok("{{ printf \"%s:%d %v %q %%\" .Values.svc.ip 5432 .Values.flag \"a\" }}"),
            "10.0.0.7:5432 true \"a\" %"
        );
        assert_eq!(ok("{{ eq .Alert.Labels.severity \"critical\" }}"), "true");
        assert_eq!(ok("{{ eq .Values.replicas 1 2 3 }}"), "true");
        assert_eq!(ok("{{ ne 1 2 }}"), "true");
        assert_eq!(
            ok("{{ and true 0 }}|{{ or 0 \"\" \"z\" }}|{{ not false }}"),
            "0|z|true"
        );
        assert_eq!(ok("{{ (printf \"%s-%s\" \"a\" \"b\") | upper }}"), "A-B");
        assert!(render("{{ \"!!\" | b64dec }}").is_err());
        assert!(
            render("{{ eq 1 \"1\" }}")
                .unwrap_err()
                .to_string()
                .contains("incompatible")
        );
        // and/or short-circuit: the missing key on the right is never read.
        assert_eq!(ok("{{ and false .Values.nope }}"), "false");
    }

    #[test]
    fn control_structures_and_trim_markers() {
        assert_eq!(
            ok(
                "{{ if eq .Alert.Labels.severity \"warning\" }}w{{ else if .Values.flag }}f{{ else }}e{{ end }}"
            ),
            "f"
        );
        assert_eq!(ok("{{ with .Values.svc }}{{ .ip }}{{ end }}"), "10.0.0.7");
        assert_eq!(
            ok("{{ with .Values.empty }}x{{ else }}none{{ end }}"),
            "none"
        );
        assert_eq!(
            ok("{{ range .Values.svc.ports }}[{{ . }}]{{ end }}"),
            "[80][443]"
        );
        assert_eq!(
            ok("{{ range .Alert.Labels }}{{ . }},{{ end }}"),
            "my-app,critical,"
        );
        assert_eq!(ok("a  {{- \"b\" -}}  \n c"), "abc");
        assert_eq!(ok("a {{/* note */}} b"), "a  b");
        assert_eq!(ok("a {{- /* note */ -}} b"), "ab");
        assert_eq!(ok("{{ `raw \\n` }}"), "raw \\n");
        assert_eq!(ok("no template }} here"), "no template }} here");
    }

    #[test]
    fn parse_errors_name_the_position() {
        for (src, line, col, needle) in [
            ("{{ .Values.x", 1, 1, "unclosed action"),
            (
                "a\n  {{ env \"HOME\" }}",
                2,
                6,
                "function \"env\" not defined",
            ),
            ("{{ if .Values.x }}", 1, 1, "unclosed {{if}}"),
            ("{{ end }}", 1, 1, "unexpected {{end}}"),
            ("{{ $x := 1 }}", 1, 4, "variables"),
            ("{{ .Values.x | }}", 1, 14, "missing value"),
            ("{{ printf \"%x\" 1 }}", 1, 4, "unsupported verb"),
            ("{{ upper }}", 1, 4, "wrong number of arguments"),
            ("{{ \"a }}", 1, 4, "unterminated string"),
            ("{{ template \"x\" }}", 1, 1, "not supported"),
            ("{{ (upper \"a\" }}", 1, 4, "unclosed '('"),
            ("{{ .Values.a .Values.b }}", 1, 4, "non-function"),
            ("{{}}", 1, 1, "missing value"),
            ("{{/* x }}", 1, 1, "unclosed comment"),
            ("{{ 'a' }}", 1, 4, "character constants"),
        ] {
            match Template::parse(src) {
                Err(TemplateError::Parse {
                    line: l,
                    column: c,
                    message,
                }) => {
                    assert!(
                        message.contains(needle),
                        "{src:?}: {message:?} lacks {needle:?}"
                    );
                    assert_eq!((l, c), (line, col), "{src:?}: position of {message:?}");
                }
                other => panic!("{src:?}: expected a parse error, got {other:?}"),
            }
        }
    }

    #[test]
    fn render_leaves_keeps_structure_and_reports_leaf() {
        let v = json!({"a": "{{ .Alert.Annotations.summary }}", "b": [true, 1, "{{ .Values.replicas }}"], "{{ key }}": null});
        let out = {
            let d = data();
            let ctx = TemplateContext {
                values: &d.values,
                alert: &d.alert,
                run_name: "r",
                run_namespace: "n",
            };
            render_leaves(&v, &ctx).unwrap()
        };
        assert_eq!(
            out,
            json!({"a": "DB \"down\"\nnow", "b": [true, 1, "3"], "{{ key }}": null})
        );
        let bad = json!({"spec": {"containers": [{"image": "{{ .Values.zzz }}"}]}});
        let d = data();
        let ctx = TemplateContext {
            values: &d.values,
            alert: &d.alert,
            run_name: "r",
            run_namespace: "n",
        };
        let e = render_leaves(&bad, &ctx).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("spec.containers[0].image: missing key .Values.zzz"),
            "{e}"
        );
        assert_eq!(
            referenced_values_in(&json!({"x": ["{{ .Values.a }}", "{{ index .Values \"b-c\" }}"], "y": "{{ with .Values.d }}{{ .e }}{{ end }}"})).unwrap(),
            ["a", "b-c", "d"].into_iter().map(String::from).collect()
        );
    }
}
