//! `lifeboat validate`: offline lint of RecoveryPlan, RecoveryRun and ReceivedAlert manifests.
//!
//! Every document of every file is parsed into the API types (so a typo in a field name or
//! a wrong type is reported with its path), then plans' and runs' steps go through the
//! engine's validation (field paths, templates, `.Values` use before definition…). Documents
//! of other API groups are skipped, so a whole manifests folder can be checked.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use lifeboat_api::{API_VERSION, GROUP, ReceivedAlert, RecoveryPlan, RecoveryRun, Step};
use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;

use super::{EXIT_FAILED, EXIT_OK};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Files or directories; directories are searched (recursively) for *.yaml and *.yml.
    /// `-` reads standard input (`kustomize build overlays/prod | lifeboat validate -`).
    #[arg(required = true, value_name = "FILE|DIR|-")]
    pub paths: Vec<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let files = collect_files(&args.paths)?;
    let mut summary = Summary::default();
    for file in &files {
        let text = if file.as_os_str() == STDIN {
            std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?
        } else {
            std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?
        };
        summary.files += 1;
        for problem in check_text(&text, &mut summary) {
            println!("{}:{problem}", file.display());
            summary.problems += 1;
        }
    }
    println!("{summary}");
    Ok(if summary.problems == 0 {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

/// The path that stands for standard input, as in kubectl's `-f -`.
const STDIN: &str = "-";

/// Counts for the closing line of the report.
#[derive(Default, Debug)]
struct Summary {
    files: usize,
    documents: usize,
    skipped: usize,
    problems: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: usize, word: &str| {
            if n == 1 {
                format!("{n} {word}")
            } else {
                format!("{n} {word}s")
            }
        };
        write!(
            f,
            "checked {}, {}",
            plural(self.files, "file"),
            plural(self.documents, "lifeboat document")
        )?;
        if self.skipped > 0 {
            write!(f, " ({} of other kinds skipped)", self.skipped)?;
        }
        if self.problems == 0 {
            write!(f, ": no problems")
        } else {
            write!(f, ": {}", plural(self.problems, "problem"))
        }
    }
}

/// The files named on the command line; directories expand to their YAML files, sorted.
fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.as_os_str() == STDIN {
            files.push(path.clone());
            continue;
        }
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk_yaml(path, &mut found)?;
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn walk_yaml(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .with_context(|| format!("cannot read {}", path.display()))?;
        if kind.is_dir() {
            walk_yaml(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml") | Some("yml")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

/// One problem in one document.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// 1-based line in the file where the document starts (or where a syntax error is).
    pub line: usize,
    /// 1-based index of the document in the file.
    pub document: usize,
    /// `Kind/name` when known.
    pub object: Option<String>,
    /// 0-based index of the step the problem is in, and its display name.
    pub step: Option<(usize, Option<String>)>,
    /// Path of the offending field (`spec.steps[2].wait.fieldPath`).
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: document {}", self.line, self.document)?;
        if let Some(obj) = &self.object {
            write!(f, " ({obj})")?;
        }
        if let Some((index, name)) = &self.step {
            write!(f, ", step {}", index + 1)?;
            if let Some(name) = name {
                write!(f, " \"{name}\"")?;
            }
        }
        if let Some(field) = &self.field {
            write!(f, ", field {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A document of a multi-document YAML stream with the line it starts on.
struct Document<'a> {
    line: usize,
    text: &'a str,
}

/// Splits a YAML stream on `---` document markers at the start of a line. Markers are
/// always at column 0 and block scalars are always indented, so this cut is exact.
fn split_documents(text: &str) -> Vec<Document<'_>> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed.starts_with("--- ") {
            if offset > start {
                docs.push(Document {
                    line: start_line,
                    text: &text[start..offset],
                });
            }
            // The marker line may carry content (`--- {a: 1}`): keep it in the document.
            start = offset + 3;
            start_line = i + 1;
        }
        offset += line.len();
    }
    if text.len() > start {
        docs.push(Document {
            line: start_line,
            text: &text[start..],
        });
    }
    docs
}

/// Checks every document of one file's text.
fn check_text(text: &str, summary: &mut Summary) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut index = 0;
    for doc in split_documents(text) {
        let value: serde_yaml::Value = match serde_yaml::from_str(doc.text) {
            Ok(v) => v,
            Err(e) => {
                index += 1;
                summary.documents += 1;
                let line = e
                    .location()
                    .map(|l| doc.line + l.line() - 1)
                    .unwrap_or(doc.line);
                problems.push(Problem {
                    line,
                    document: index,
                    object: None,
                    step: None,
                    field: None,
                    message: format!("not valid YAML: {e}"),
                });
                continue;
            }
        };
        if value.is_null() {
            // Empty document (comments only, or a trailing `---`).
            continue;
        }
        index += 1;
        let base = Problem {
            line: doc.line,
            document: index,
            object: None,
            step: None,
            field: None,
            message: String::new(),
        };
        match check_document(value, doc.text, &base) {
            Checked::Skipped => summary.skipped += 1,
            Checked::Lifeboat(found) => {
                summary.documents += 1;
                problems.extend(found);
            }
        }
    }
    problems
}

enum Checked {
    /// Not a lifeboat resource.
    Skipped,
    /// A lifeboat resource, with its problems.
    Lifeboat(Vec<Problem>),
}

fn check_document(value: serde_yaml::Value, text: &str, base: &Problem) -> Checked {
    let problem = |field: Option<&str>, message: String| Problem {
        field: field.map(str::to_string),
        message,
        ..base.clone()
    };
    let api_version = value.get("apiVersion").and_then(|v| v.as_str());
    let kind = value.get("kind").and_then(|v| v.as_str()).unwrap_or("");
    let name = value
        .get("metadata")
        .and_then(|m| m.get("name").or_else(|| m.get("generateName")))
        .and_then(|n| n.as_str())
        .unwrap_or("");
    let base = Problem {
        object: Some(if name.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}/{name}")
        }),
        ..base.clone()
    };
    let Some(api_version) = api_version else {
        return Checked::Lifeboat(vec![problem(
            Some("apiVersion"),
            "missing apiVersion: this is not a Kubernetes manifest".into(),
        )]);
    };
    if api_version.split('/').next() != Some(GROUP) {
        return Checked::Skipped;
    }
    if api_version != API_VERSION {
        return Checked::Lifeboat(vec![Problem {
            field: Some("apiVersion".into()),
            message: format!("unknown version `{api_version}` (expected `{API_VERSION}`)"),
            ..base
        }]);
    }
    let mut problems = Vec::new();
    if name.is_empty() {
        problems.push(Problem {
            field: Some("metadata.name".into()),
            message: "missing metadata.name".into(),
            ..base.clone()
        });
    }
    // The API types first: a wrong type or a missing field is reported with its exact
    // path. Then the engine: unknown fields and every rule of plan validation.
    let typed = match kind {
        "RecoveryPlan" => parse::<RecoveryPlan>(value, &base).map(|p| p.spec.steps),
        "RecoveryRun" => parse::<RecoveryRun>(value, &base).map(|r| r.spec.steps),
        "ReceivedAlert" => parse::<ReceivedAlert>(value, &base).map(|_| Vec::new()),
        other => Err(Problem {
            field: Some("kind".into()),
            message: format!(
                "unknown kind `{other}` in {API_VERSION} \
                 (expected RecoveryPlan, RecoveryRun or ReceivedAlert)"
            ),
            ..base.clone()
        }),
    };
    match typed {
        Err(p) => problems.push(p),
        Ok(steps) => {
            for report in lifeboat_engine::check_documents(text) {
                for p in report.problems {
                    problems.push(from_engine(p, &steps, &base));
                }
            }
        }
    }
    Checked::Lifeboat(problems)
}

/// An engine problem, located: `spec.steps[2].wait.fieldPath` names step 3 and its title.
fn from_engine(p: lifeboat_engine::Problem, steps: &[Step], base: &Problem) -> Problem {
    let step = step_index(&p.location).map(|i| (i, steps.get(i).map(Step::display_name)));
    Problem {
        step,
        field: (!p.location.is_empty()).then_some(p.location),
        message: shift_lines(&p.message, base.line.saturating_sub(1)),
        ..base.clone()
    }
}

/// The step index in a location such as `spec.steps[2].wait.fieldPath`.
fn step_index(location: &str) -> Option<usize> {
    let rest = location.split_once("steps[")?.1;
    rest.split_once(']')?.0.parse().ok()
}

/// YAML messages say `at line N` relative to the document; make N a line of the file.
fn shift_lines(message: &str, offset: usize) -> String {
    const MARK: &str = "at line ";
    let Some(pos) = message.find(MARK) else {
        return message.to_string();
    };
    let digits_start = pos + MARK.len();
    let digits: String = message[digits_start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    match digits.parse::<usize>() {
        Ok(n) => format!(
            "{}{}{}",
            &message[..digits_start],
            n + offset,
            &message[digits_start + digits.len()..]
        ),
        Err(_) => message.to_string(),
    }
}

/// Deserializes a document into an API type; an error names the path of the bad field.
fn parse<T: DeserializeOwned>(value: serde_yaml::Value, base: &Problem) -> Result<T, Problem> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path();
        let mut step = None;
        let mut after_steps = false;
        for segment in path.iter() {
            match segment {
                Segment::Map { key } => after_steps = key == "steps",
                Segment::Seq { index } if after_steps => {
                    step = Some((*index, None));
                    after_steps = false;
                }
                _ => after_steps = false,
            }
        }
        let field = path.to_string();
        Problem {
            step,
            field: (field != ".").then_some(field),
            message: err.into_inner().to_string(),
            ..base.clone()
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn splits_documents_with_their_start_lines() {
        let text = "a: 1\n---\nb: 2\nc: 3\n--- \n# only a comment\n---\nd: 4\n";
        let docs = split_documents(text);
        let lines: Vec<usize> = docs.iter().map(|d| d.line).collect();
        assert_eq!(lines, vec![1, 2, 5, 7], "document start lines");
        assert_eq!(docs[1].text.trim(), "b: 2\nc: 3");
    }

    #[test]
    fn engine_locations_name_their_step() {
        assert_eq!(
            step_index("spec.steps[12].patch.override.fieldPath"),
            Some(12)
        );
        assert_eq!(step_index("spec.alertLabels"), None);
        assert_eq!(
            shift_lines("bad value at line 3 column 7", 10),
            "bad value at line 13 column 7"
        );
    }

    #[test]
    fn a_leading_marker_makes_no_empty_document() {
        let docs = split_documents("---\na: 1\n");
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].line, 1);
    }
}
