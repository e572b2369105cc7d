//! Rendering a parsed template with a run's data.

#[allow(unused_imports)]
use super::*;

pub(super) enum Dot {
    Root,
    Val(Value),
}

pub(super) struct Exec<'t, 'c> {
    pub(super) src: &'t str,
    pub(super) ctx: &'t TemplateContext<'c>,
    pub(super) steps: usize,
    pub(super) out: String,
    pub(super) root: Option<Value>,
}

/// The value of an evaluated argument: a missing key is kept apart for `default`.
pub(super) enum Evaluated {
    Val(Value),
    Missing(TemplateError),
}

impl Exec<'_, '_> {
    pub(super) fn err(&self, pos: usize, message: impl Into<String>) -> TemplateError {
        let (line, column) = line_col(self.src, pos);
        TemplateError::Exec {
            line,
            column,
            message: message.into(),
        }
    }

    pub(super) fn missing(&self, pos: usize, key: String, hint: String) -> TemplateError {
        let (line, column) = line_col(self.src, pos);
        TemplateError::MissingKey {
            key,
            line,
            column,
            hint,
        }
    }

    pub(super) fn tick(&mut self, pos: usize) -> Result<(), TemplateError> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(self.err(pos, "template takes too many steps to evaluate"));
        }
        if self.out.len() > MAX_OUTPUT {
            return Err(self.err(pos, format!("template output exceeds {MAX_OUTPUT} bytes")));
        }
        Ok(())
    }

    pub(super) fn nodes(&mut self, nodes: &[Node], dot: &Dot) -> Result<(), TemplateError> {
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

    pub(super) fn pipeline(&mut self, p: &Pipeline, dot: &Dot) -> Result<Value, TemplateError> {
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

    pub(super) fn command(
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

    pub(super) fn arg(&mut self, a: &Arg, dot: &Dot) -> Result<Evaluated, TemplateError> {
        match a {
            Arg::Lit(v) => Ok(Evaluated::Val(v.clone())),
            Arg::Sub(p) => self.pipeline(p, dot).map(Evaluated::Val),
            Arg::Func { name, pos } => {
                Err(self.err(*pos, format!("function {} needs arguments", name.name())))
            }
            Arg::Field { root, path, pos } => self.field(*root, path, *pos, dot),
        }
    }

    pub(super) fn strict(&mut self, a: &Arg, dot: &Dot) -> Result<Value, TemplateError> {
        match self.arg(a, dot)? {
            Evaluated::Val(v) => Ok(v),
            Evaluated::Missing(e) => Err(e),
        }
    }

    pub(super) fn ensure_root(&mut self) {
        if self.root.is_none() {
            let ctx = self.ctx;
            let alert = &ctx.alert;
            self.root = Some(serde_json::json!({
                "Values": ctx.values,
                "Alert": {"Name": alert.name, "Labels": alert.labels, "Annotations": alert.annotations},
                "Run": {"Name": ctx.run_name, "Namespace": ctx.run_namespace,
                    "Phase": ctx.run_phase, "Message": ctx.run_message},
            }));
        }
    }

    pub(super) fn field(
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

    pub(super) fn call(
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
    pub(super) fn check_size(
        &self,
        name: &str,
        len: usize,
        pos: usize,
    ) -> Result<(), TemplateError> {
        if len > MAX_OUTPUT {
            return Err(self.err(
                pos,
                format!("the result of {name} exceeds {MAX_OUTPUT} bytes"),
            ));
        }
        Ok(())
    }

    pub(super) fn equal(&self, a: &Value, b: &Value, pos: usize) -> Result<bool, TemplateError> {
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

    pub(super) fn printf(
        &self,
        format: &str,
        args: &[Value],
        pos: usize,
    ) -> Result<String, TemplateError> {
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

    pub(super) fn to_text(&self, v: &Value, pos: usize) -> Result<String, TemplateError> {
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
pub(super) fn format_number(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e21 => format!("{f:.0}"),
        _ => n.to_string(),
    }
}

/// Go truthiness: false, 0, nil and empty strings, lists and maps are false.
pub(super) fn truth(v: &Value) -> bool {
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
