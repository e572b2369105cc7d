//! The engine's criterion microbenchmarks (`cargo bench -p lifeboat-engine`), read back
//! from criterion's output directory (`target/criterion/**/new/estimates.json`).

use std::path::{Path, PathBuf};

use serde::Serialize;

/// One criterion benchmark's estimates, nanoseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Estimate {
    pub id: String,
    pub median_ns: f64,
    pub mean_ns: f64,
}

/// `target/criterion` for an executable in `target/<profile>/` (or its `deps/`).
pub fn default_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let mut dir = exe.parent()?.to_path_buf();
    if dir.ends_with("deps") {
        dir = dir.parent()?.to_path_buf();
    }
    Some(dir.parent()?.join("criterion"))
}

/// Every benchmark found under `dir`, sorted by id; empty when there is none.
pub fn read(dir: &Path) -> Vec<Estimate> {
    let mut out = Vec::new();
    walk(dir, &mut out, 0);
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

fn walk(dir: &Path, out: &mut Vec<Estimate>, depth: usize) {
    if depth > 6 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") {
            if let Some(e) = estimate(&path) {
                out.push(e);
            }
        } else if path
            .file_name()
            .is_some_and(|n| n != "report" && n != "base")
        {
            walk(&path, out, depth + 1);
        }
    }
}

fn estimate(new_dir: &Path) -> Option<Estimate> {
    let text = std::fs::read_to_string(new_dir.join("estimates.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let id = std::fs::read_to_string(new_dir.join("benchmark.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|b| b["full_id"].as_str().map(str::to_string))
        .or_else(|| {
            new_dir
                .parent()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
        })?;
    Some(Estimate {
        id,
        median_ns: v["median"]["point_estimate"].as_f64()?,
        mean_ns: v["mean"]["point_estimate"].as_f64()?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_estimates_and_ids() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("matching").join("10000 plans").join("new");
        std::fs::create_dir_all(&new).unwrap();
        std::fs::write(
            new.join("estimates.json"),
            r#"{"mean":{"point_estimate":1500.0},"median":{"point_estimate":1200.5}}"#,
        )
        .unwrap();
        std::fs::write(
            new.join("benchmark.json"),
            r#"{"full_id":"matching/10000 plans"}"#,
        )
        .unwrap();
        let base = dir.path().join("matching").join("10000 plans").join("base");
        std::fs::create_dir_all(&base).unwrap();
        let got = read(dir.path());
        assert_eq!(got.len(), 1, "only new/ estimates are read: {got:?}");
        assert_eq!(got[0].id, "matching/10000 plans");
        assert_eq!(got[0].median_ns, 1200.5);
        assert!(read(&dir.path().join("missing")).is_empty());
    }
}
