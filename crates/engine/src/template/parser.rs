//! Parsing tokens into the template's syntax tree; checking `printf` formats.

#[allow(unused_imports)]
use super::*;

pub(super) enum Terminator {
    Eof,
    End,
    Else(Option<Pipeline>),
}

pub(super) struct Parser<'a> {
    pub(super) src: &'a str,
    pub(super) items: Vec<Item>,
    pub(super) i: usize,
}

impl<'a> Parser<'a> {
    pub(super) fn err(&self, pos: usize, message: impl Into<String>) -> TemplateError {
        parse_error(self.src, pos, message)
    }

    pub(super) fn list(
        &mut self,
        depth: usize,
    ) -> Result<(Vec<Node>, Terminator, usize), TemplateError> {
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

    pub(super) fn control(
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

    pub(super) fn pipeline_of(
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

    pub(super) fn pipeline(
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

    pub(super) fn check_command(
        &self,
        args: &[Arg],
        pos: usize,
        piped: bool,
    ) -> Result<(), TemplateError> {
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

pub(super) fn make_control(
    kw: &str,
    mut branches: Vec<(Pipeline, Vec<Node>)>,
    otherwise: Vec<Node>,
) -> Node {
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
pub(super) fn check_printf_format(f: &str, nargs: usize) -> Result<(), String> {
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
