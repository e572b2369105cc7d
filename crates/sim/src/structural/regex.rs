//! A small regular-expression matcher for the `pattern` keyword of CRD schemas.
//!
//! kube-apiserver evaluates `pattern` with Go's RE2 syntax, unanchored. This covers the
//! subset CRD authors write: literals and escapes, `.`, classes (`[a-z0-9-]`, `[^/]`,
//! `\d \w \s` and their negations), anchors `^ $`, groups `( )` and `(?: )`, alternation
//! `|`, and the quantifiers `* + ? {n} {n,} {n,m}` (lazy forms match like greedy ones,
//! which does not change whether a pattern matches). Anything else is a parse error, as
//! unsupported syntax is in RE2. Matching backtracks with a step budget, so a pathological
//! pattern ends with "no match" instead of hanging.

use std::cell::Cell;

/// A compiled pattern.
#[derive(Clone, Debug)]
pub struct Regex {
    alternatives: Vec<Vec<Node>>,
    source: String,
}

#[derive(Clone, Debug)]
enum Node {
    Char(char),
    Any,
    Class {
        ranges: Vec<(char, char)>,
        negated: bool,
    },
    Start,
    End,
    Group(Vec<Vec<Node>>),
    Repeat {
        node: Box<Node>,
        min: usize,
        max: usize,
    },
}

/// Upper bound on matching steps for one `is_match` call.
const STEP_BUDGET: usize = 200_000;

impl Regex {
    /// Compile a pattern, or say why it is not one.
    pub fn new(pattern: &str) -> Result<Regex, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut parser = Parser {
            chars: &chars,
            pos: 0,
        };
        let alternatives = parser.alternation()?;
        if parser.pos != chars.len() {
            return Err(format!("unexpected ) at position {}", parser.pos));
        }
        Ok(Regex {
            alternatives,
            source: pattern.to_string(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the pattern matches anywhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        let chars: Vec<char> = text.chars().collect();
        let m = Matcher {
            text: &chars,
            steps: Cell::new(0),
        };
        let top = [Node::Group(self.alternatives.clone())];
        (0..=chars.len()).any(|start| m.run(&top, start, &mut |_| true))
    }
}

struct Parser<'a> {
    chars: &'a [char],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += 1;
        c
    }

    fn alternation(&mut self) -> Result<Vec<Vec<Node>>, String> {
        let mut alts = vec![self.sequence()?];
        while self.peek() == Some('|') {
            self.pos += 1;
            alts.push(self.sequence()?);
        }
        Ok(alts)
    }

    fn sequence(&mut self) -> Result<Vec<Node>, String> {
        let mut seq = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom()?;
            let atom = self.quantified(atom)?;
            seq.push(atom);
        }
        Ok(seq)
    }

    fn atom(&mut self) -> Result<Node, String> {
        let at = self.pos;
        match self.next() {
            Some('.') => Ok(Node::Any),
            Some('^') => Ok(Node::Start),
            Some('$') => Ok(Node::End),
            Some('(') => {
                if self.peek() == Some('?') {
                    self.pos += 1;
                    if self.next() != Some(':') {
                        return Err(format!("unsupported group syntax at position {at}"));
                    }
                }
                let alts = self.alternation()?;
                if self.next() != Some(')') {
                    return Err("missing closing )".to_string());
                }
                Ok(Node::Group(alts))
            }
            Some('[') => self.class(),
            Some('\\') => self.escape(false).map(|e| match e {
                Escaped::Char(c) => Node::Char(c),
                Escaped::Class(ranges, negated) => Node::Class { ranges, negated },
            }),
            Some(c @ ('*' | '+' | '?')) => {
                Err(format!("missing argument to repetition operator: {c}"))
            }
            Some(c) => Ok(Node::Char(c)),
            None => Err("unexpected end of pattern".to_string()),
        }
    }

    fn quantified(&mut self, atom: Node) -> Result<Node, String> {
        let (min, max) = match self.peek() {
            Some('*') => (0, usize::MAX),
            Some('+') => (1, usize::MAX),
            Some('?') => (0, 1),
            Some('{') => match self.braces()? {
                Some(b) => b,
                None => return Ok(atom),
            },
            _ => return Ok(atom),
        };
        if matches!(self.peek(), Some('*' | '+' | '?')) {
            self.pos += 1;
        }
        // A lazy quantifier matches the same strings as a greedy one.
        if self.peek() == Some('?') {
            self.pos += 1;
        }
        if matches!(self.peek(), Some('*' | '+' | '?' | '{')) {
            return Err("invalid nested repetition operator".to_string());
        }
        if matches!(atom, Node::Start | Node::End) {
            return Ok(atom);
        }
        Ok(Node::Repeat {
            node: Box::new(atom),
            min,
            max,
        })
    }

    /// `{n}`, `{n,}`, `{n,m}`; a `{` that does not start one is a literal (as in RE2).
    fn braces(&mut self) -> Result<Option<(usize, usize)>, String> {
        let start = self.pos;
        let mut end = start + 1;
        while end < self.chars.len() && self.chars[end] != '}' {
            end += 1;
        }
        if end >= self.chars.len() {
            return Ok(None);
        }
        let body: String = self.chars[start + 1..end].iter().collect();
        let parse = |s: &str| s.trim().parse::<usize>().ok();
        let range = match body.split_once(',') {
            None => parse(&body).map(|n| (n, n)),
            Some((a, "")) => parse(a).map(|n| (n, usize::MAX)),
            Some((a, b)) => parse(a).zip(parse(b)),
        };
        match range {
            Some((min, max)) if min <= max && min <= 1000 && (max == usize::MAX || max <= 1000) => {
                self.pos = end + 1;
                Ok(Some((min, max)))
            }
            Some(_) => Err(format!("invalid repeat count {{{body}}}")),
            None => Ok(None),
        }
    }

    fn class(&mut self) -> Result<Node, String> {
        let mut negated = false;
        if self.peek() == Some('^') {
            negated = true;
            self.pos += 1;
        }
        let mut ranges = Vec::new();
        let mut first = true;
        loop {
            let c = self.next().ok_or("missing closing ]")?;
            if c == ']' && !first {
                break;
            }
            first = false;
            let lo = if c == '\\' {
                match self.escape(true)? {
                    Escaped::Char(c) => c,
                    Escaped::Class(r, false) => {
                        ranges.extend(r);
                        continue;
                    }
                    Escaped::Class(..) => {
                        return Err("negated escapes inside a class are not supported".into());
                    }
                }
            } else {
                c
            };
            if self.peek() == Some('-') && self.chars.get(self.pos + 1).is_some_and(|&n| n != ']') {
                self.pos += 1;
                let hi = match self.next() {
                    Some('\\') => match self.escape(true)? {
                        Escaped::Char(c) => c,
                        Escaped::Class(..) => return Err("invalid character class range".into()),
                    },
                    Some(c) => c,
                    None => return Err("missing closing ]".into()),
                };
                if hi < lo {
                    return Err(format!("invalid character class range: {lo}-{hi}"));
                }
                ranges.push((lo, hi));
            } else {
                ranges.push((lo, lo));
            }
        }
        Ok(Node::Class { ranges, negated })
    }

    fn escape(&mut self, _in_class: bool) -> Result<Escaped, String> {
        let c = self
            .next()
            .ok_or("trailing backslash at end of expression")?;
        let digits = vec![('0', '9')];
        let word = vec![('0', '9'), ('A', 'Z'), ('a', 'z'), ('_', '_')];
        let space = vec![
            (' ', ' '),
            ('\t', '\t'),
            ('\n', '\n'),
            ('\r', '\r'),
            ('\x0c', '\x0c'),
        ];
        Ok(match c {
            'd' => Escaped::Class(digits, false),
            'D' => Escaped::Class(digits, true),
            'w' => Escaped::Class(word, false),
            'W' => Escaped::Class(word, true),
            's' => Escaped::Class(space, false),
            'S' => Escaped::Class(space, true),
            'n' => Escaped::Char('\n'),
            't' => Escaped::Char('\t'),
            'r' => Escaped::Char('\r'),
            'f' => Escaped::Char('\x0c'),
            c if c.is_ascii_punctuation() => Escaped::Char(c),
            c => return Err(format!("invalid escape sequence: \\{c}")),
        })
    }
}

enum Escaped {
    Char(char),
    Class(Vec<(char, char)>, bool),
}

struct Matcher<'t> {
    text: &'t [char],
    steps: Cell<usize>,
}

impl Matcher<'_> {
    fn single(&self, node: &Node, c: char) -> bool {
        match node {
            Node::Char(x) => *x == c,
            Node::Any => c != '\n',
            Node::Class { ranges, negated } => {
                ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
            }
            _ => false,
        }
    }

    /// Match `nodes` at `i`, then call `k` with the end position; true if `k` accepted.
    fn run(&self, nodes: &[Node], i: usize, k: &mut dyn FnMut(usize) -> bool) -> bool {
        let steps = self.steps.get() + 1;
        self.steps.set(steps);
        if steps > STEP_BUDGET {
            return false;
        }
        let Some((first, rest)) = nodes.split_first() else {
            return k(i);
        };
        match first {
            Node::Char(_) | Node::Any | Node::Class { .. } => match self.text.get(i) {
                Some(&c) if self.single(first, c) => self.run(rest, i + 1, k),
                _ => false,
            },
            Node::Start => i == 0 && self.run(rest, i, k),
            Node::End => i == self.text.len() && self.run(rest, i, k),
            Node::Group(alts) => alts
                .iter()
                .any(|seq| self.run(seq, i, &mut |j| self.run(rest, j, k))),
            Node::Repeat { node, min, max } => self.repeat(node, *min, *max, 0, i, rest, k),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn repeat(
        &self,
        node: &Node,
        min: usize,
        max: usize,
        count: usize,
        i: usize,
        rest: &[Node],
        k: &mut dyn FnMut(usize) -> bool,
    ) -> bool {
        if count < max {
            let more = self.run(std::slice::from_ref(node), i, &mut |j| {
                // An empty iteration past the minimum cannot make progress.
                if j == i && count >= min {
                    return false;
                }
                self.repeat(node, min, max, count + 1, j, rest, k)
            });
            if more {
                return true;
            }
        }
        count >= min && self.run(rest, i, k)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::Regex;

    #[test]
    fn matches_like_re2() {
        let cases: &[(&str, &str, bool)] = &[
            ("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "db-primary", true),
            ("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "db-", false),
            ("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "Db", false),
            ("^\\d+(ms|s|m|h)$", "30s", true),
            ("^\\d+(ms|s|m|h)$", "30x", false),
            ("ab", "xxabyy", true),
            ("^a{2,3}$", "aaa", true),
            ("^a{2,3}$", "aaaa", false),
            ("^a{2}$", "aa", true),
            ("^(?:x|y)+$", "xyx", true),
            ("^[^/]+/[^/]+$", "apps/v1", true),
            ("^[^/]+/[^/]+$", "v1", false),
            ("^\\w+\\.\\w+$", "a.b", true),
            ("^\\w+\\.\\w+$", "ab", false),
            ("^(a*)*$", "aaaaaaaaaaaaaaaaaaaaaaaaab", false),
            ("a{", "a{", true),
        ];
        for (pattern, text, want) in cases {
            let re = Regex::new(pattern).unwrap();
            assert_eq!(re.is_match(text), *want, "{pattern} on {text}");
        }
    }

    #[test]
    fn rejects_invalid_patterns() {
        for p in ["(", "a)", "[a", "*a", "a**", "(?=x)", "\\k", "[z-a]"] {
            assert!(Regex::new(p).is_err(), "{p} should not compile");
        }
    }
}
