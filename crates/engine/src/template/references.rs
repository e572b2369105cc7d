//! Which data a template references: `.Values` keys (required or only defaulted) and root data no run has.

#[allow(unused_imports)]
use super::*;

#[derive(Default)]
pub(super) struct Refs {
    pub(super) all: BTreeSet<String>,
    pub(super) required: BTreeSet<String>,
    /// Root data that never exists at run time (`.Foo`, `.Alert.Nmae`), as written.
    pub(super) unknown: BTreeSet<String>,
}

/// Whether a field chain from the root names data a run has: `.Values…`, `.Alert`,
/// `.Alert.Name`, `.Alert.Labels…`, `.Alert.Annotations…`, `.Run`, `.Run.Name`,
/// `.Run.Namespace`, `.Run.Phase`, `.Run.Message`.
pub(super) fn is_known_root_data(path: &[String]) -> bool {
    let first = path.first().map(String::as_str);
    let second = path.get(1).map(String::as_str);
    matches!(
        (first, second, path.len()),
        (None | Some("Values"), _, _)
            | (Some("Alert" | "Run"), None, 1)
            | (Some("Alert"), Some("Labels" | "Annotations"), _)
            | (Some("Alert"), Some("Name"), 2)
            | (
                Some("Run"),
                Some("Name" | "Namespace" | "Phase" | "Message"),
                2
            )
    )
}

impl Refs {
    pub(super) fn add(&mut self, key: &str, guarded: bool) {
        self.all.insert(key.to_string());
        if !guarded {
            self.required.insert(key.to_string());
        }
    }

    pub(super) fn nodes(&mut self, nodes: &[Node], dot_is_root: bool) {
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

    pub(super) fn pipeline(&mut self, p: &Pipeline, dot_is_root: bool) {
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

    pub(super) fn arg(&mut self, a: &Arg, dot_is_root: bool, guarded: bool) {
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
