//! Fuzzing of the template and fieldPath parsers, with proptest (cargo-fuzz needs a nightly
//! toolchain). Generators are grammar-aware (strings built from the tokens of each syntax,
//! well-formed and malformed) plus arbitrary bytes.
//!
//! Properties: parsing never panics and returns an error for what it rejects; rendering a
//! parsed template never panics; a parsed fieldPath's canonical text parses back to the same
//! path; adversarial nesting is rejected with a bounded-depth error instead of recursing
//! without limit; evaluation never blows up in size.
//!
//! The default of 2 000 cases per property keeps CI quick. A longer fuzz run:
//!
//! ```text
//! PROPTEST_CASES=200000 cargo test -p lifeboat-engine --release --test fuzz
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use lifeboat_api::AlertSpec;
use lifeboat_engine::fieldpath::{FieldPath, FieldPathError, Segment};
use lifeboat_engine::template::{Template, TemplateContext, TemplateError, render_leaves};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Cases per property: `PROPTEST_CASES` when set, else 2 000.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000);
    ProptestConfig {
        cases,
        max_shrink_iters: 10_000,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// fieldPath
// ---------------------------------------------------------------------------------------

/// One piece of fieldPath syntax: valid pieces, pieces the parser must reject, and noise.
fn fp_token() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z_][a-zA-Z0-9_-]{0,6}",
        3 => Just(".".to_string()),
        2 => (0u64..2000).prop_map(|n| format!("[{n}]")),
        1 => "\\[\"([^\"\\\\]|\\\\.){0,6}\"\\]",
        1 => "\\['[^'\\\\]{0,6}'\\]",
        1 => "\\[\\?\\( ?@\\.[a-zA-Z_/-]{1,5} ?== ?(\"[^\"\\\\]{0,4}\"|'[a-z]{0,3}'|-?[0-9]{1,4}(\\.[0-9])?|true|false|bogus) ?\\)\\]",
        1 => prop_oneof![
            Just("[*]"), Just(".."), Just("[-1]"), Just("[0:2]"), Just("[0,1]"), Just("[]"),
            Just("["), Just("]"), Just("{"), Just("}"), Just("$"), Just("\\."), Just("\\"),
            Just(" "), Just("@"), Just("?"), Just("("), Just(")"), Just("="), Just("!="),
            Just("\""), Just("'"), Just("*"), Just("[?(@.a.b==\"x\")]"), Just("[?(@.a>1)]"),
            Just("99999999999999999999999"), Just("[99999999999999999999999]"), Just("\u{0}"),
            Just("é"), Just("\u{200b}"), Just("\t"),
        ]
        .prop_map(str::to_string),
        1 => "\\PC{1,3}",
    ]
}

fn fp_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(fp_token(), 0..24).prop_map(|t| t.concat())
}

/// Any key text: plain, with dots, quotes, brackets, backslashes, `@`, `$`, unicode.
fn arb_key_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z_][a-zA-Z0-9_-]{0,8}",
        2 => "[a-z.\\[\\]\"'\\\\/ ~@$:{}()?=*,!-]{0,8}",
        1 => "\\PC{0,6}",
        1 => "(.|\n){0,6}",
    ]
}

fn arb_segment() -> impl Strategy<Value = Segment> {
    prop_oneof![
        3 => arb_key_text().prop_map(Segment::Key),
        1 => (0usize..100_000).prop_map(Segment::Index),
        1 => ("[a-zA-Z0-9_/-]{1,6}", "\\PC{0,6}")
            .prop_map(|(key, value)| Segment::Filter { key, value }),
    ]
}

/// A JSON document to evaluate paths against.
fn arb_doc() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        "[a-z]{0,4}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,3}|name|app", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A parse result must be an `Ok` that round-trips, or a `Parse` error with a position
/// inside the input.
fn check_field_path(s: &str) -> Result<(), TestCaseError> {
    match FieldPath::parse(s) {
        Ok(p) => {
            let text = p.to_string();
            let back = FieldPath::parse(&text);
            prop_assert_eq!(
                back.as_ref(),
                Ok(&p),
                "{:?} parsed, but its canonical form {:?} does not parse back to it",
                s,
                text
            );
            prop_assert_eq!(
                back.unwrap().to_string(),
                text,
                "canonical form is not a fixpoint"
            );
        }
        Err(FieldPathError::Parse {
            position, message, ..
        }) => {
            prop_assert!(!message.is_empty(), "{:?}: empty message", s);
            prop_assert!(
                position <= s.len(),
                "{:?}: position {} past the end ({})",
                s,
                position,
                message
            );
        }
        Err(other) => prop_assert!(
            false,
            "{:?}: parse returned a non-parse error {:?}",
            s,
            other
        ),
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn field_path_soup_parses_or_errors_cleanly(s in fp_soup()) {
        check_field_path(&s)?;
    }

    #[test]
    fn field_path_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let s = String::from_utf8_lossy(&bytes);
        check_field_path(&s)?;
    }

    #[test]
    fn field_path_arbitrary_text(s in "\\PC{0,80}") {
        check_field_path(&s)?;
    }

    #[test]
    fn field_path_display_parse_round_trips(segs in prop::collection::vec(arb_segment(), 1..8)) {
        let path = FieldPath::from_segments(segs);
        let text = path.to_string();
        let back = FieldPath::parse(&text);
        prop_assert_eq!(back.as_ref(), Ok(&path), "canonical text {:?}", text);
    }

    #[test]
    fn field_path_evaluation_never_panics(s in fp_soup(), doc in arb_doc(), value in arb_doc()) {
        if let Ok(p) = FieldPath::parse(&s) {
            let doc = json!({"spec": doc});
            let got = p.get(&doc).cloned();
            let _ = p.to_json_pointer(&doc);
            let mut copy = doc.clone();
            if p.set(&mut copy, value.clone()).is_ok() {
                prop_assert_eq!(p.get(&copy), Ok(&value), "set then get on {}", p);
            }
            // A failed get names the path it evaluated.
            if let Err(e) = got {
                prop_assert!(e.to_string().contains(&p.to_string()) || matches!(e, FieldPathError::EmptyPath), "{}: {}", p, e);
            }
        }
    }
}

#[test]
fn field_path_adversarial_nesting_is_rejected_quickly() {
    // Each input is large; a parser that is quadratic or recurses per bracket would hang or
    // overflow the stack here.
    let cases: Vec<(String, &str)> = vec![
        ("[".repeat(100_000), "longer than"),
        ("[".repeat(4000), "expected an index"),
        ("{".repeat(4000), "unclosed '{'"),
        (
            format!("{}a{}", "{".repeat(2000), "}".repeat(2000)),
            "unexpected '{'",
        ),
        ("a.".repeat(2048), "ends with '.'"),
        ("[?(".repeat(1300), "'@' in a filter"),
        (format!("a[\"{}", "\\\"".repeat(2000)), "unclosed quote"),
        ("\\".repeat(4001), "must be followed by"),
        ("..".repeat(2000), "recursive descent"),
        (format!("[{}]", "9".repeat(4000)), "index too large"),
    ];
    for (input, needle) in cases {
        match FieldPath::parse(&input) {
            Err(FieldPathError::Parse { message, .. }) => assert!(
                message.contains(needle),
                "{}…: message {message:?} lacks {needle:?}",
                &input[..20]
            ),
            other => panic!("{}…: expected a parse error, got {other:?}", &input[..20]),
        }
    }
    // The longest accepted paths still parse and round-trip.
    for input in [
        "[0]".repeat(1365),
        "a.".repeat(2047) + "a",
        "[\"k\"]".repeat(819),
    ] {
        let p = FieldPath::parse(&input).unwrap_or_else(|e| panic!("{}…: {e}", &input[..9]));
        assert_eq!(FieldPath::parse(&p.to_string()), Ok(p));
    }
}

#[test]
fn field_path_keys_that_need_quoting_round_trip() {
    // Keys a user can only write quoted; their canonical form must quote them too.
    for key in [
        "a@b", "@", "$x", "a b", "a.b", "a[0]", "x\"y", "é", "-", "a\\b", "",
    ] {
        let path = FieldPath::from_segments(vec![
            Segment::Key("metadata".into()),
            Segment::Key(key.into()),
        ]);
        let text = path.to_string();
        assert_eq!(
            FieldPath::parse(&text),
            Ok(path.clone()),
            "key {key:?}: canonical text {text:?} does not parse back"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------------------

/// The data every rendered template sees: values of every JSON kind, unicode labels.
struct Data {
    values: BTreeMap<String, Value>,
    alert: AlertSpec,
}

fn data() -> Data {
    let values: BTreeMap<String, Value> = [
        ("s", json!("db-1")),
        ("n", json!(3)),
        ("f", json!(1.5)),
        ("b", json!(true)),
        ("nul", Value::Null),
        ("empty", json!("")),
        ("l", json!(["a", 1, {"x": "y"}])),
        (
            "m",
            json!({"ip": "10.0.0.7", "ports": [80, 443], "q": "\"}\n"}),
        ),
        ("big", json!("a".repeat(1000))),
        ("b64", json!("aGVsbG8=")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let alert = AlertSpec {
        name: "alert-ü".into(),
        labels: [
            ("app", "db"),
            ("x", "{{ .Values.s }}"),
            ("uni", "日本\u{0}"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        annotations: [("summary".to_string(), "DB \"down\"\nnow".to_string())]
            .into_iter()
            .collect(),
    };
    Data { values, alert }
}

/// Parses and, when it parses, renders `src` and asks for its references. Returns the
/// render result. Any panic fails the property.
fn exercise(src: &str) -> Option<Result<String, TemplateError>> {
    let t = match Template::parse(src) {
        Ok(t) => t,
        Err(e) => {
            assert!(
                matches!(e, TemplateError::Parse { .. }),
                "{src:?}: parse gave {e:?}"
            );
            assert!(!e.to_string().is_empty());
            return None;
        }
    };
    let d = data();
    let ctx = TemplateContext {
        values: &d.values,
        alert: &d.alert,
        run_name: "run-1",
        run_namespace: "ops",
        run_phase: "Running",
        run_message: "",
    };
    let referenced = t.referenced_values();
    let required = t.required_values();
    assert!(
        required.is_subset(&referenced),
        "{src:?}: required {required:?} not within referenced {referenced:?}"
    );
    let out = t.render(&ctx);
    if t.is_literal() {
        assert!(out.is_ok(), "{src:?}: a literal template failed: {out:?}");
    }
    if let Ok(text) = &out {
        assert!(
            text.len() <= (1 << 20) + src.len() + 4096,
            "{src:?}: output too large"
        );
    }
    Some(out)
}

/// One piece of template syntax: delimiters, data, literals, keywords, functions, noise.
fn tpl_token() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop_oneof![
            Just("{{"), Just("}}"), Just("{{- "), Just(" -}}"), Just("{{/* "), Just(" */}}"),
            Just("{{-"), Just("-}}"), Just("{"), Just("}"),
        ].prop_map(str::to_string),
        3 => prop_oneof![
            Just(".Values.s"), Just(".Values.n"), Just(".Values.l"), Just(".Values.m"),
            Just(".Values.m.ip"), Just(".Values.nul"), Just(".Values.missing"), Just(".Values"),
            Just(".Alert.Labels.app"), Just(".Alert.Labels.nope"), Just(".Alert.Name"),
            Just(".Run.Name"), Just(".Nope"), Just("."), Just(".."), Just("$"), Just("$.Values.s"),
            Just("$x"), Just("$.1"), Just(".1a"), Just(".Values.s.t"),
        ].prop_map(str::to_string),
        2 => prop_oneof![
            Just("\"a\""), Just("\"\""), Just("\"%s\""), Just("\"%d %v\""), Just("\"%\""),
            Just("\"%x\""), Just("\"\\x41\\u00e9\\U0001F600\\101\""), Just("\"\\q\""),
            Just("\"\\777\""), Just("\"\\u12\""), Just("\"unterminated"), Just("`raw`"),
            Just("`"), Just("'c'"), Just("1"), Just("-1"), Just("+2"), Just("1.5"),
            Just("1e400"), Just("0x1F"), Just("1_000"), Just("18446744073709551616"),
            Just("-"), Just("+"), Just("true"), Just("false"), Just("nil"),
        ].prop_map(str::to_string),
        2 => prop_oneof![
            Just("if "), Just("else "), Just("else if "), Just("end"), Just("range "),
            Just("with "), Just("define "), Just("template "), Just("block "), Just("break"),
        ].prop_map(str::to_string),
        2 => prop_oneof![
            Just("default "), Just("quote "), Just("upper "), Just("lower "), Just("trim "),
            Just("replace "), Just("b64enc "), Just("b64dec "), Just("toJson "), Just("index "),
            Just("printf "), Just("eq "), Just("ne "), Just("and "), Just("or "), Just("not "),
            Just("env "), Just("exec "), Just("readFile "),
        ].prop_map(str::to_string),
        3 => prop_oneof![
            Just(" "), Just("|"), Just("("), Just(")"), Just("\n"), Just(":="), Just("="),
            Just(","), Just("\t"),
        ].prop_map(str::to_string),
        1 => "[a-z ]{1,4}",
        1 => "\\PC{1,2}",
    ]
}

fn tpl_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(tpl_token(), 0..32).prop_map(|t| t.concat())
}

/// An action's contents that always parse: operands, function calls of the right arity,
/// pipes, parentheses.
fn arb_expr() -> impl Strategy<Value = String> {
    let operand = prop_oneof![
        Just(".Values.s".to_string()),
        Just(".Values.n".to_string()),
        Just(".Values.l".to_string()),
        Just(".Values.m".to_string()),
        Just(".Values.m.ip".to_string()),
        Just(".Values.missing".to_string()),
        Just(".Values.nul".to_string()),
        Just(".Values.big".to_string()),
        Just(".Alert.Labels.app".to_string()),
        Just(".Alert.Annotations.summary".to_string()),
        Just(".Run.Namespace".to_string()),
        Just("$.Values.b".to_string()),
        Just(".".to_string()),
        "\"[a-z%]{0,4}\"",
        (-5i64..100).prop_map(|n| n.to_string()),
        Just("true".to_string()),
        Just("1.25".to_string()),
    ];
    operand.prop_recursive(5, 48, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| format!("({e})")),
            (
                prop_oneof![
                    Just("quote"),
                    Just("upper"),
                    Just("lower"),
                    Just("trim"),
                    Just("b64enc"),
                    Just("b64dec"),
                    Just("toJson"),
                    Just("not"),
                ],
                inner.clone()
            )
                .prop_map(|(f, e)| format!("{f} ({e})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("default ({a}) ({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) | default ({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("eq ({a}) ({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("ne ({a}) ({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("and ({a}) ({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("or ({a}) ({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("index ({a}) ({b})")),
            inner
                .clone()
                .prop_map(|a| format!("printf \"%v-%s\" ({a}) \"x\"")),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(a, b, c)| format!("replace ({a}) ({b}) ({c})")),
            inner.clone().prop_map(|e| format!("{e} | quote | upper")),
        ]
    })
}

/// A whole template that always parses: text, actions, control structures, comments.
fn arb_template() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        // Text never ends in `{`: `{{{` opens an action at the first brace, as in Go.
        "[a-z }\"\n]{0,6}",
        arb_expr().prop_map(|e| format!("{{{{ {e} }}}}")),
        arb_expr().prop_map(|e| format!("{{{{- {e} -}}}}")),
        Just("{{/* a comment */}}".to_string()),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(|v| v.concat()),
            (arb_expr(), inner.clone(), inner.clone())
                .prop_map(|(c, a, b)| format!("{{{{ if {c} }}}}{a}{{{{ else }}}}{b}{{{{ end }}}}")),
            (arb_expr(), arb_expr(), inner.clone(), inner.clone()).prop_map(|(c, d, a, b)| {
                format!("{{{{ if {c} }}}}{a}{{{{ else if {d} }}}}{b}{{{{ end }}}}")
            }),
            (arb_expr(), inner.clone())
                .prop_map(|(c, a)| format!("{{{{ range {c} }}}}{a}{{{{ end }}}}")),
            (arb_expr(), inner.clone(), inner.clone()).prop_map(|(c, a, b)| {
                format!("{{{{ with {c} }}}}{a}{{{{ else }}}}{b}{{{{ end }}}}")
            }),
        ]
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn template_soup_parses_or_errors_cleanly(s in tpl_soup()) {
        exercise(&s);
    }

    #[test]
    fn template_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let s = String::from_utf8_lossy(&bytes);
        exercise(&s);
        exercise(&format!("{{{{ {s} }}}}"));
    }

    #[test]
    fn template_arbitrary_text_in_an_action(s in "\\PC{0,60}") {
        exercise(&format!("{{{{{s}}}}}"));
        exercise(&format!("pre {{{{ .Values.s | {s} }}}} post"));
    }

    #[test]
    fn well_formed_templates_parse_and_render_without_panic(src in arb_template()) {
        let out = exercise(&src);
        prop_assert!(out.is_some(), "a well-formed template did not parse: {:?}: {:?}", src, Template::parse(&src).err());
    }

    #[test]
    fn render_leaves_never_panics(src in arb_template(), junk in tpl_soup()) {
        let d = data();
        let ctx = TemplateContext { values: &d.values, alert: &d.alert, run_name: "r", run_namespace: "n", run_phase: "Running", run_message: "" };
        let doc = json!({"a": src, "b": [junk, 1, null, {"c": true}]});
        match render_leaves(&doc, &ctx) {
            Ok(v) => prop_assert_eq!(v["b"][1].clone(), json!(1)),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}

fn parse_err(src: &str) -> String {
    match Template::parse(src) {
        Err(e @ TemplateError::Parse { .. }) => e.to_string(),
        other => panic!(
            "{}…: expected a parse error, got {:?}",
            &src[..src.len().min(40)],
            other.map(|t| t.source().len())
        ),
    }
}

fn render_err(src: &str) -> String {
    let d = data();
    let ctx = TemplateContext {
        values: &d.values,
        alert: &d.alert,
        run_name: "r",
        run_namespace: "n",
        run_phase: "Running",
        run_message: "",
    };
    let t = Template::parse(src).unwrap_or_else(|e| panic!("{}…: {e}", &src[..src.len().min(40)]));
    match t.render(&ctx) {
        Err(e) => e.to_string(),
        Ok(out) => panic!(
            "{}…: expected a render error, got {} bytes",
            &src[..src.len().min(40)],
            out.len()
        ),
    }
}

#[test]
fn template_adversarial_nesting_is_a_bounded_depth_error() {
    let n = 100_000;
    let parens = format!("{{{{ {}1{} }}}}", "(".repeat(n), ")".repeat(n));
    assert!(
        parse_err(&parens).contains("nested too deeply"),
        "{}",
        parse_err(&parens)
    );
    let ifs = "{{ if 1 }}".repeat(n);
    assert!(parse_err(&ifs).contains("nested too deeply"));
    let ranges = format!(
        "{}{}",
        "{{ range .Values.l }}".repeat(n),
        "{{ end }}".repeat(n)
    );
    assert!(parse_err(&ranges).contains("nested too deeply"));
    let opens = "{{".repeat(n);
    assert!(parse_err(&opens).contains("unclosed action"));
    let comments = "{{/*".repeat(n);
    assert!(parse_err(&comments).contains("unclosed comment"));
    let unclosed_parens = format!("{{{{ {} }}}}", "(".repeat(n));
    assert!(parse_err(&unclosed_parens).contains("nested too deeply"));
    let closes = format!("{{{{ 1 {} }}}}", ")".repeat(n));
    assert!(parse_err(&closes).contains("unexpected ')'"));
    let ends = "{{ end }}".repeat(n);
    assert!(parse_err(&ends).contains("unexpected {{end}}"));
    let pipes = format!("{{{{ 1 {} }}}}", "| ".repeat(n));
    assert!(parse_err(&pipes).contains("missing value for command"));
    // At the limit the template still works.
    let ok = format!("{{{{ {}1{} }}}}", "(".repeat(60), ")".repeat(60));
    assert!(exercise(&ok).is_some_and(|r| r.is_ok()));
}

#[test]
fn large_flat_templates_parse_in_linear_time() {
    // 100 000 actions and long strings: a quadratic lexer or parser would hang here.
    let many = "x{{ .Values.s }}".repeat(100_000);
    let out = exercise(&many).expect("parses").expect("renders");
    assert_eq!(out.len(), 500_000);
    let long_string = format!("{{{{ \"{}\" }}}}", "\\u00e9".repeat(100_000));
    assert_eq!(
        exercise(&long_string)
            .expect("parses")
            .expect("renders")
            .chars()
            .count(),
        100_000
    );
    let pipeline = format!("{{{{ .Values.s{} }}}}", " | upper | lower".repeat(10_000));
    assert_eq!(
        exercise(&pipeline).expect("parses").expect("renders"),
        "db-1"
    );
}

#[test]
fn evaluation_that_would_explode_stops_with_an_error() {
    // Each level multiplies the text by ten: 10^12 bytes at the innermost level if nothing
    // bounds it.
    let mut expr = "\"a\"".to_string();
    for _ in 0..12 {
        expr = format!("replace \"a\" \"aaaaaaaaaa\" ({expr})");
    }
    let e = render_err(&format!("{{{{ {expr} }}}}"));
    assert!(e.contains("exceeds"), "{e}");
    // Doubling through b64enc.
    let mut expr = ".Values.big".to_string();
    for _ in 0..60 {
        expr = format!("b64enc ({expr})");
    }
    let e = render_err(&format!("{{{{ {expr} }}}}"));
    assert!(e.contains("exceeds"), "{e}");
    // Many copies of one value in one printf / quote.
    let args = " .Values.big".repeat(2_000);
    let e = render_err(&format!(
        "{{{{ printf \"{}\"{args} }}}}",
        "%s".repeat(2_000)
    ));
    assert!(e.contains("exceeds"), "{e}");
    let e = render_err(&format!("{{{{ quote{args} }}}}"));
    assert!(e.contains("exceeds"), "{e}");
    // Nested ranges: a step bound.
    let e = render_err(
        "{{ range .Values.l }}{{ range $.Values.l }}{{ range $.Values.l }}{{ range $.Values.l }}\
         {{ range $.Values.l }}{{ range $.Values.l }}{{ range $.Values.l }}{{ range $.Values.l }}\
         {{ range $.Values.l }}{{ range $.Values.l }}{{ range $.Values.l }}{{ range $.Values.l }}\
         {{ range $.Values.l }}x{{ end }}{{ end }}{{ end }}{{ end }}{{ end }}{{ end }}{{ end }}\
         {{ end }}{{ end }}{{ end }}{{ end }}{{ end }}{{ end }}",
    );
    assert!(e.contains("too many steps") || e.contains("exceeds"), "{e}");
}
