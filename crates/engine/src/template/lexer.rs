//! Lexing a template into tokens.

#[allow(unused_imports)]
use super::*;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum TokKind {
    Field(Root, Vec<String>),
    Ident(String),
    Lit(Value),
    Pipe,
    LParen,
    RParen,
}

#[derive(Debug, Clone)]
pub(super) struct Tok {
    pub(super) kind: TokKind,
    pub(super) pos: usize,
}

pub(super) enum Item {
    Text(String),
    Action { pos: usize, toks: Vec<Tok> },
}

pub(super) struct Lexer<'a> {
    pub(super) src: &'a str,
    pub(super) bytes: &'a [u8],
}

pub(super) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

impl<'a> Lexer<'a> {
    pub(super) fn err(&self, pos: usize, message: impl Into<String>) -> TemplateError {
        parse_error(self.src, pos, message)
    }

    pub(super) fn items(&self) -> Result<Vec<Item>, TemplateError> {
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
    pub(super) fn action(
        &self,
        open: usize,
        mut k: usize,
    ) -> Result<(Vec<Tok>, usize, bool), TemplateError> {
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
    pub(super) fn field_chain(&self, mut k: usize) -> Result<(Vec<String>, usize), TemplateError> {
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

    pub(super) fn string(&self, k: usize) -> Result<(String, usize), TemplateError> {
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

    pub(super) fn number(&self, k: usize) -> Result<(Value, usize), TemplateError> {
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

pub(super) fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}
