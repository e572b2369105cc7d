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
//!
//! Inside: `lexer` (text → tokens) → `parser` (tokens → the syntax tree defined here) →
//! `references` (which data a template reads) and `eval` (rendering).

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use serde_json::Value;

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
    /// `.Run.Phase`: the run's phase, or in a `finally` step how the steps ended
    /// (`Completed`, `Failed`, `Aborted`, `Cancelled`).
    pub run_phase: &'a str,
    /// `.Run.Message`: the run's status message (in a `finally` step, its outcome).
    pub run_message: &'a str,
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

/// A parse error at byte offset `pos` of the template text `src`.
fn parse_error(src: &str, pos: usize, message: impl Into<String>) -> TemplateError {
    let (line, column) = line_col(src, pos);
    TemplateError::Parse {
        line,
        column,
        message: message.into(),
    }
}

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

mod eval;
mod json;
mod lexer;
mod parser;
mod references;

use eval::*;
use lexer::*;
use parser::*;
use references::*;

pub use json::{JsonTemplate, LeafError, location_of, render_leaves};

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
            run_phase: "Running",
            run_message: "",
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
                run_phase: "Running",
                run_message: "",
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
            run_phase: "Running",
            run_message: "",
        };
        let e = render_leaves(&bad, &ctx).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("spec.containers[0].image: missing key .Values.zzz"),
            "{e}"
        );
        assert_eq!(
            JsonTemplate::compile(&json!({"x": ["{{ .Values.a }}", "{{ index .Values \"b-c\" }}"], "y": "{{ with .Values.d }}{{ .e }}{{ end }}"})).unwrap().referenced_values(),
            ["a", "b-c", "d"].into_iter().map(String::from).collect()
        );
    }
}
