//! Kubernetes strategic merge patch for built-in kinds.
//!
//! Like a JSON merge patch, except that lists named in [`MergeKeys`] are merged element by
//! element (by their merge key, or as a set of scalars), and these directives are
//! understood:
//!
//! - `$patch: replace` in a map replaces the whole map; as a list element, the whole list;
//! - `$patch: delete` in a map deletes the map; as a list element, deletes the element with
//!   the same merge key;
//! - `$retainKeys: [..]` clears the keys of the original map not listed;
//! - `$deleteFromPrimitiveList/<field>: [..]` removes those scalars from the list `<field>`;
//! - `$setElementOrder/<field>` gives the order of the merged list `<field>`.
//!
//! Merged lists are ordered as kube-apiserver orders them (`normalizeElementOrder`): the
//! elements the patch names (in `$setElementOrder`, else in the patch list), in that order,
//! interleaved with the other elements of the original in their original order.

use serde_json::{Map, Value};

use super::PatchError;
use super::merge_keys::{ListStrategy, MergeKeys};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ORDER_PREFIX: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_PREFIX: &str = "$deleteFromPrimitiveList/";

/// Apply a strategic merge patch to `doc`. Does not check whether strategic merge patch is
/// supported for the kind: that is [`super::apply_patch`]'s job.
pub fn apply_strategic_merge_patch(
    doc: &Value,
    patch: &Value,
    merge_keys: &MergeKeys,
) -> Result<Value, PatchError> {
    let patch_map = patch.as_object().ok_or_else(|| {
        PatchError::Malformed(format!(
            "a strategic merge patch must be a JSON object, got {}",
            super::json::type_name(patch)
        ))
    })?;
    let original = match doc {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    match merge_map(original, patch_map, "", merge_keys)? {
        Some(m) => Ok(Value::Object(m)),
        None => Ok(Value::Object(Map::new())),
    }
}

/// Join a path segment onto a `/`-separated merge-key path.
fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}/{key}")
    }
}

/// Merge `patch` into `original`. `None` means the map itself is deleted (`$patch: delete`).
pub(super) fn merge_map(
    mut original: Map<String, Value>,
    patch: &Map<String, Value>,
    path: &str,
    keys: &MergeKeys,
) -> Result<Option<Map<String, Value>>, PatchError> {
    match patch.get(DIRECTIVE) {
        None => {}
        Some(Value::String(d)) if d == "merge" => {}
        Some(Value::String(d)) if d == "delete" => return Ok(None),
        Some(Value::String(d)) if d == "replace" => {
            let mut replaced = Map::new();
            for (k, v) in patch {
                if k == DIRECTIVE {
                    continue;
                }
                if let Some(v) = strip_directives(v, &join(path, k), keys)? {
                    replaced.insert(k.clone(), v);
                }
            }
            return Ok(Some(replaced));
        }
        Some(other) => {
            return Err(PatchError::Malformed(format!(
                "unknown patch directive {DIRECTIVE}: {other} at {}",
                display_path(path)
            )));
        }
    }

    if let Some(retain) = patch.get(RETAIN_KEYS) {
        let retain = retain.as_array().ok_or_else(|| {
            PatchError::Malformed(format!(
                "{RETAIN_KEYS} must be a list of field names at {}",
                display_path(path)
            ))
        })?;
        let retain: Vec<&str> = retain.iter().filter_map(Value::as_str).collect();
        for k in patch.keys() {
            if !k.starts_with('$') && !retain.contains(&k.as_str()) {
                return Err(PatchError::Invalid(format!(
                    "the patch field {k:?} at {} is not listed in {RETAIN_KEYS}",
                    display_path(path)
                )));
            }
        }
        original.retain(|k, _| retain.contains(&k.as_str()));
    }

    for (k, pv) in patch {
        if let Some(field) = k.strip_prefix(SET_ORDER_PREFIX) {
            // An order without a patch list for the field: the list is only reordered.
            if !patch.contains_key(field)
                && let (Some(Value::Array(order)), Some(Value::Array(list))) =
                    (Some(pv), original.get(field))
                && let Some(strategy) = keys.strategy(&join(path, field))
            {
                let list = list.clone();
                let ordered = order_merged(list.clone(), order, &list, strategy);
                original.insert(field.to_string(), Value::Array(ordered));
            }
            continue;
        }
        if k == DIRECTIVE || k == RETAIN_KEYS {
            continue;
        }
        if let Some(field) = k.strip_prefix(DELETE_FROM_PRIMITIVE_PREFIX) {
            let remove = pv.as_array().ok_or_else(|| {
                PatchError::Malformed(format!("{k} must be a list at {}", display_path(path)))
            })?;
            if let Some(Value::Array(list)) = original.get_mut(field) {
                list.retain(|item| !remove.contains(item));
            }
            continue;
        }
        let child_path = join(path, k);
        if pv.is_null() {
            original.remove(k);
            continue;
        }
        let merged = match original.remove(k) {
            Some(Value::Array(ol)) if pv.is_array() && keys.strategy(&child_path).is_some() => {
                let merged = merge_value(Value::Array(ol.clone()), pv, &child_path, keys)?;
                let order = match patch.get(&format!("{SET_ORDER_PREFIX}{k}")) {
                    Some(Value::Array(order)) => order.clone(),
                    _ => pv.as_array().cloned().unwrap_or_default(),
                };
                match (merged, keys.strategy(&child_path)) {
                    (Some(Value::Array(m)), Some(strategy)) if !replaces_list(pv) => {
                        Some(Value::Array(order_merged(m, &order, &ol, strategy)))
                    }
                    (m, _) => m,
                }
            }
            Some(ov) => merge_value(ov, pv, &child_path, keys)?,
            None => strip_directives(pv, &child_path, keys)?,
        };
        if let Some(v) = merged {
            original.insert(k.clone(), v);
        }
    }
    Ok(Some(original))
}

/// Merge one patch value into one original value. `None` means "delete the field".
fn merge_value(
    original: Value,
    patch: &Value,
    path: &str,
    keys: &MergeKeys,
) -> Result<Option<Value>, PatchError> {
    match (original, patch) {
        (Value::Object(om), Value::Object(pm)) => {
            Ok(merge_map(om, pm, path, keys)?.map(Value::Object))
        }
        (Value::Array(ol), Value::Array(pl)) => {
            merge_list(ol, pl, path, keys).map(|l| Some(Value::Array(l)))
        }
        (_, p) => strip_directives(p, path, keys),
    }
}

/// A patch value written where the original has nothing (or something of another type):
/// merge it into an empty value of its own type, which applies and removes directives.
fn strip_directives(
    patch: &Value,
    path: &str,
    keys: &MergeKeys,
) -> Result<Option<Value>, PatchError> {
    match patch {
        Value::Object(pm) => Ok(merge_map(Map::new(), pm, path, keys)?.map(Value::Object)),
        Value::Array(pl) => merge_list(Vec::new(), pl, path, keys).map(|l| Some(Value::Array(l))),
        Value::Null => Ok(None),
        other => Ok(Some(other.clone())),
    }
}

/// Merge two lists according to the strategy registered for `path` (replace by default).
fn merge_list(
    original: Vec<Value>,
    patch: &[Value],
    path: &str,
    keys: &MergeKeys,
) -> Result<Vec<Value>, PatchError> {
    // `{"$patch": "replace"}` as an element replaces the list with the other elements.
    let replace_all = patch.iter().any(|e| {
        e.as_object()
            .and_then(|m| m.get(DIRECTIVE))
            .and_then(Value::as_str)
            == Some("replace")
    });
    let strategy = keys.strategy(path);
    if replace_all || strategy.is_none() {
        let mut out = Vec::with_capacity(patch.len());
        for e in patch {
            if is_directive_only(e) {
                continue;
            }
            if let Some(v) = strip_directives(e, path, keys)? {
                out.push(v);
            }
        }
        return Ok(out);
    }
    match strategy {
        Some(ListStrategy::MergePrimitives) => {
            let mut out = original;
            for e in patch {
                if !out.contains(e) {
                    out.push(e.clone());
                }
            }
            Ok(out)
        }
        Some(ListStrategy::MergeByKey(key)) => merge_keyed_list(original, patch, key, path, keys),
        None => Ok(original),
    }
}

/// Whether a patch list replaces the whole list (`{"$patch": "replace"}` as an element).
fn replaces_list(patch: &Value) -> bool {
    patch.as_array().is_some_and(|l| {
        l.iter().any(|e| {
            e.as_object()
                .and_then(|m| m.get(DIRECTIVE))
                .and_then(Value::as_str)
                == Some("replace")
        })
    })
}

/// kube-apiserver's order of a merged list (`normalizeElementOrder`, `mergeSortedSlice`):
/// the elements named in `order` sorted as there, the others as in `original`; the two runs
/// are merged, an element of the second going first only where `original` has it before
/// the element of the first.
fn order_merged(
    merged: Vec<Value>,
    order: &[Value],
    original: &[Value],
    strategy: &ListStrategy,
) -> Vec<Value> {
    let id = |v: &Value| -> Option<Value> {
        match strategy {
            ListStrategy::MergeByKey(key) => v.get(key.as_str()).cloned(),
            ListStrategy::MergePrimitives => Some(v.clone()),
        }
    };
    let position = |list: &[Value], v: &Value| {
        let want = id(v)?;
        list.iter().position(|e| {
            id(e).is_some_and(|i| i == want)
                && e.get(DIRECTIVE).and_then(Value::as_str) != Some("delete")
        })
    };
    let (mut named, mut others): (Vec<Value>, Vec<Value>) = merged
        .into_iter()
        .partition(|v| position(order, v).is_some());
    named.sort_by_key(|v| position(order, v));
    others.sort_by_key(|v| position(original, v));
    let mut out = Vec::with_capacity(named.len() + others.len());
    let (mut named, mut others) = (named.into_iter().peekable(), others.into_iter().peekable());
    loop {
        let take_other = match (others.peek(), named.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(o), Some(n)) => matches!(
                (position(original, o), position(original, n)),
                (Some(a), Some(b)) if a < b
            ),
        };
        let next = if take_other {
            others.next()
        } else {
            named.next()
        };
        out.extend(next);
    }
    out
}

/// An element that only carries `$patch` (e.g. `{"$patch": "replace"}`).
fn is_directive_only(e: &Value) -> bool {
    e.as_object()
        .is_some_and(|m| m.len() == 1 && m.contains_key(DIRECTIVE))
}

fn merge_keyed_list(
    mut original: Vec<Value>,
    patch: &[Value],
    key: &str,
    path: &str,
    keys: &MergeKeys,
) -> Result<Vec<Value>, PatchError> {
    for pe in patch {
        let pm = pe.as_object().ok_or_else(|| {
            PatchError::Invalid(format!(
                "the list {} is merged by {key:?}: its elements must be objects, got {pe}",
                display_path(path)
            ))
        })?;
        let kv = pm.get(key).ok_or_else(|| {
            PatchError::Invalid(format!(
                "map: {pe} does not contain declared merge key: {key} (list {})",
                display_path(path)
            ))
        })?;
        let pos = original
            .iter()
            .position(|oe| oe.as_object().and_then(|om| om.get(key)) == Some(kv));
        let deleting = pm.get(DIRECTIVE).and_then(Value::as_str) == Some("delete");
        match (pos, deleting) {
            (Some(_), true) => {
                original.retain(|oe| oe.as_object().and_then(|om| om.get(key)) != Some(kv));
            }
            (None, true) => {}
            (Some(i), false) => {
                let oe = original.remove(i);
                if let Some(merged) = merge_value(oe, pe, path, keys)? {
                    original.insert(i, merged);
                }
            }
            (None, false) => {
                if let Some(v) = strip_directives(pe, path, keys)? {
                    original.push(v);
                }
            }
        }
    }
    Ok(original)
}

/// A merge-key path as a dotted field path for messages.
fn display_path(path: &str) -> String {
    if path.is_empty() {
        "the root".to_string()
    } else {
        path.replace('/', ".")
    }
}
