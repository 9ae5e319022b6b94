//! The smallest textual edit that sets annotations on one Workload (or waypoint Gateway) of a
//! YAML file, leaving
//! every other byte alone: comments, key order, quoting, other documents. It understands
//! `metadata` and `annotations` written as block mappings or as one-line flow mappings
//! (`annotations: {a: b}`), with or without an annotations map yet. Anything else (a flow
//! mapping over several lines, anchors, tags, JSON) is refused with the reason, never
//! guessed at; the caller then checks the result by loading it ([`super::apply`]).

use std::fmt;

/// Why a file was not edited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn refuse<T>(why: impl Into<String>) -> Result<T, Refused> {
    Err(Refused(why.into()))
}

/// `text` with `values` set in the annotations of the `kind` (`Workload` or `Gateway`)
/// `namespace/name` (one with no `metadata.namespace` is in `default`).
pub fn set_annotations(
    text: &str,
    kind: &str,
    namespace: &str,
    name: &str,
    values: &[(&str, String)],
) -> Result<String, Refused> {
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let (start, end) = document(&lines, kind, namespace, name)?;
    let doc = &lines[start..end];
    let Some(meta) = doc
        .iter()
        .position(|l| root_key(l).is_some_and(|k| unquote(k) == "metadata"))
    else {
        return refuse("its `metadata` is not a plain key at the start of a line");
    };
    let meta = start + meta;
    let (_, value, comment) = split_key(&lines[meta]).expect("a root key");
    let edited: Vec<String> = match value.trim() {
        "" => block_metadata(&lines, meta, end, values)?,
        v if v.starts_with('{') => {
            let map = flow(v)?;
            let map = set_in_metadata(map, values)?;
            let line = format!("metadata: {}{}", render(&map), comment);
            lines[meta] = line;
            return Ok(join(lines, newline, text));
        }
        other => {
            return refuse(format!(
                "`metadata: {other}` is not a mapping weft can edit"
            ));
        }
    };
    lines.splice(meta..end, edited);
    Ok(join(lines, newline, text))
}

/// The lines `[start, end)` of the one document in `lines` that is the `kind` `namespace/name`.
fn document(
    lines: &[String],
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<(usize, usize), Refused> {
    let mut bounds = vec![0];
    for (i, l) in lines.iter().enumerate() {
        if is_separator(l) {
            bounds.push(i);
            bounds.push(i + 1);
        }
    }
    bounds.push(lines.len());
    let mut found = Vec::new();
    for pair in bounds.chunks(2) {
        let (s, e) = (pair[0], pair[1]);
        let text = lines[s..e].join("\n");
        let out = weft_core::load::parse_str("doc", &text);
        let hit = out.config.resources.iter().any(|l| {
            let m = meta(&l.resource, kind);
            m.is_some_and(|m| m.name == name && m.namespace() == namespace)
        });
        if hit {
            found.push((s, e));
        }
    }
    let [(s, e)] = found[..] else {
        return refuse(match found.len() {
            0 => format!("no {kind} {namespace}/{name} found in it"),
            n => format!("{n} documents define {kind} {namespace}/{name}"),
        });
    };
    if s > 0 && lines[s - 1].trim_end() != "---" {
        return refuse("its document starts with content on the `---` line");
    }
    let written = lines[s..e].iter().find_map(|l| match split_key(l) {
        Some(("kind", v, _)) if !l.starts_with(' ') => Some(unquote(v.trim())),
        _ => None,
    });
    if written.as_deref() != Some(kind) {
        return refuse(format!(
            "it is a {} here: set the annotations on its pod template by hand",
            written.unwrap_or_else(|| "document without a `kind`".into())
        ));
    }
    Ok((s, e))
}

/// The metadata of `r` when it is of `kind` (`Workload` or `Gateway`).
pub fn meta<'r>(r: &'r weft_core::Resource, kind: &str) -> Option<&'r weft_core::meta::ObjectMeta> {
    match (r, kind) {
        (weft_core::Resource::Workload(w), "Workload") => Some(&w.metadata),
        (weft_core::Resource::Gateway(g), "Gateway") => Some(&g.metadata),
        _ => None,
    }
}

fn is_separator(line: &str) -> bool {
    line == "---" || line.starts_with("--- ") || line == "..." || line.starts_with("---\t")
}

/// The new lines for `metadata:` and its block (`lines[meta..end]`, up to the next root key).
fn block_metadata(
    lines: &[String],
    meta: usize,
    end: usize,
    values: &[(&str, String)],
) -> Result<Vec<String>, Refused> {
    let block_end = (meta + 1..end)
        .find(|i| is_content(&lines[*i]) && indent(&lines[*i]) == 0)
        .unwrap_or(end);
    let mut block: Vec<String> = lines[meta..end].to_vec();
    let body = 1..block_end - meta;
    let Some(child) = body.clone().find(|i| is_content(&block[*i])) else {
        return refuse("its `metadata` is empty");
    };
    let ci = indent(&block[child]);
    let key_at = |i: usize, b: &[String]| {
        (is_content(&b[i]) && indent(&b[i]) == ci)
            .then(|| split_key(&b[i]))
            .flatten()
            .map(|(k, v, c)| (unquote(k), v.to_string(), c.to_string()))
    };
    let annotations = body
        .clone()
        .find(|i| key_at(*i, &block).is_some_and(|(k, ..)| k == "annotations"));
    let Some(a) = annotations else {
        // No annotations yet: a new block after metadata's last line.
        let last = last_content(&block, body.clone(), 1);
        let pad = " ".repeat(ci);
        let mut new = vec![format!("{pad}annotations:")];
        new.extend(
            values
                .iter()
                .map(|(k, v)| format!("{pad}{pad}{k}: {}", scalar(v))),
        );
        block.splice(last + 1..last + 1, new);
        return Ok(block);
    };
    let (_, value, comment) = key_at(a, &block).expect("found above");
    let pad = " ".repeat(ci);
    match value.trim() {
        v if v.starts_with('{') => {
            let mut map = flow(v)?;
            set(&mut map, values);
            block[a] = format!("{pad}annotations: {}{comment}", render(&map));
            Ok(block)
        }
        "" | "null" | "~" => {
            if !value.trim().is_empty() {
                block[a] = format!("{pad}annotations:{comment}");
            }
            let sub_end = (a + 1..block_end - meta)
                .find(|i| is_content(&block[*i]) && indent(&block[*i]) <= ci)
                .unwrap_or(block_end - meta);
            let first = (a + 1..sub_end).find(|i| is_content(&block[*i]));
            let si = first.map_or(ci * 2, |i| indent(&block[i]));
            let mut missing = Vec::new();
            for (key, v) in values {
                let at = (a + 1..sub_end).find(|i| {
                    is_content(&block[*i])
                        && indent(&block[*i]) == si
                        && split_key(&block[*i]).is_some_and(|(k, ..)| unquote(k) == *key)
                });
                match at {
                    Some(i) => block[i] = replace_value(&block, i, sub_end, si, v)?,
                    None => missing.push(format!("{}{key}: {}", " ".repeat(si), scalar(v))),
                }
            }
            let last = last_content(&block, a..sub_end, si);
            block.splice(last + 1..last + 1, missing);
            Ok(block)
        }
        other => refuse(format!(
            "`annotations: {other}` is not a mapping weft can edit"
        )),
    }
}

/// `line` (`KEY: VALUE # comment`) with its value replaced; refused when the old value goes
/// on past the line (a block scalar, or more lines indented under it).
fn replace_value(
    block: &[String],
    i: usize,
    end: usize,
    si: usize,
    value: &str,
) -> Result<String, Refused> {
    let (key, old, comment) = split_key(&block[i]).expect("a key line");
    let old = old.trim();
    let next = (i + 1..end).find(|j| is_content(&block[*j]));
    let continues = next.is_some_and(|j| indent(&block[j]) > si);
    if old.is_empty() || old.starts_with(['|', '>', '&', '*', '!', '[', '{']) || continues {
        return refuse(format!(
            "the value of `{}` is not a one-line scalar",
            unquote(key)
        ));
    }
    Ok(format!(
        "{}{key}: {}{comment}",
        " ".repeat(si),
        scalar(value)
    ))
}

/// The last line in `range` of `block` that belongs there: content, or a comment indented
/// at least `min` deep (a comment less indented introduces what follows).
fn last_content(block: &[String], range: std::ops::Range<usize>, min: usize) -> usize {
    let start = range.start.saturating_sub(1);
    range
        .rev()
        .find(|i| {
            let l = &block[*i];
            is_content(l) || (l.trim_start().starts_with('#') && indent(l) >= min)
        })
        .unwrap_or(start)
}

/// The entries of a one-line flow mapping `{k: v, ...}` (trailing comment already split off),
/// as raw key and value text.
type Flow = Vec<(String, String)>;

fn flow(text: &str) -> Result<Flow, Refused> {
    let t = text.trim();
    let Some(inner) = t.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
        return refuse("a flow mapping that does not close on its line");
    };
    let mut out = Vec::new();
    for part in split_top(inner, ',')? {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((k, v)) = split_entry(part) else {
            return refuse(format!("the flow entry `{part}` has no `key: value`"));
        };
        out.push((k.trim().to_string(), v.trim().to_string()));
    }
    Ok(out)
}

/// `s` split at each `sep` outside quotes and brackets.
fn split_top(s: &str, sep: char) -> Result<Vec<&str>, Refused> {
    let (mut depth, mut quote, mut start) = (0i32, None::<char>, 0);
    let mut parts = Vec::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match (quote, c) {
            (Some('"'), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '{' | '[') => depth += 1,
            (None, '}' | ']') => depth -= 1,
            (None, '&' | '*' | '!') if s[..i].trim_end().ends_with([':', ',', '{']) || i == 0 => {
                return refuse("anchors, aliases and tags are not edited");
            }
            (None, c) if c == sep && depth == 0 => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    if quote.is_some() || depth != 0 {
        return refuse("a flow mapping with unbalanced quotes or brackets");
    }
    parts.push(&s[start..]);
    Ok(parts)
}

/// `key: value` split at the first `:` followed by a space (or ending the text) outside quotes.
fn split_entry(s: &str) -> Option<(&str, &str)> {
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') if i == 0 => quote = Some(c),
            (None, ':') if s[i + 1..].is_empty() || s[i + 1..].starts_with([' ', '\t']) => {
                return Some((&s[..i], &s[i + 1..]));
            }
            _ => {}
        }
    }
    None
}

fn set(map: &mut Flow, values: &[(&str, String)]) {
    for (key, v) in values {
        match map.iter_mut().find(|(k, _)| unquote(k) == *key) {
            Some(e) => e.1 = scalar(v),
            None => map.push((key.to_string(), scalar(v))),
        }
    }
}

/// `metadata`'s flow entries with `annotations` set (added as a flow mapping when absent).
fn set_in_metadata(mut meta: Flow, values: &[(&str, String)]) -> Result<Flow, Refused> {
    match meta.iter_mut().find(|(k, _)| unquote(k) == "annotations") {
        Some((_, v)) if v.starts_with('{') => {
            let mut a = flow(v)?;
            set(&mut a, values);
            *v = render(&a);
        }
        Some((_, v)) if v == "null" || v == "~" || v.is_empty() => {
            let mut a = Vec::new();
            set(&mut a, values);
            *v = render(&a);
        }
        Some((_, v)) => {
            return refuse(format!("`annotations: {v}` is not a mapping weft can edit"));
        }
        None => {
            let mut a = Vec::new();
            set(&mut a, values);
            meta.push(("annotations".into(), render(&a)));
        }
    }
    Ok(meta)
}

fn render(map: &Flow) -> String {
    let entries: Vec<String> = map.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!("{{{}}}", entries.join(", "))
}

/// `v` as a YAML scalar that reads back as the string `v`.
fn scalar(v: &str) -> String {
    let plain = !v.is_empty()
        && v.parse::<f64>().is_err()
        && !matches!(
            v,
            "true" | "false" | "null" | "~" | "yes" | "no" | "on" | "off"
        )
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "./-_".contains(c));
    if plain {
        v.to_string()
    } else {
        format!("{v:?}")
    }
}

fn unquote(k: &str) -> String {
    let k = k.trim();
    for q in ['"', '\''] {
        if let Some(inner) = k.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return inner.to_string();
        }
    }
    k.to_string()
}

/// A line's `(key, value, comment)`: `  key: value  # c` → (`key`, ` value`, `  # c`).
fn split_key(line: &str) -> Option<(&str, &str, &str)> {
    let body = line.trim_start();
    let (content, comment) = split_comment(body);
    let (k, v) = split_entry(content)?;
    let _ = comment;
    let comment_start = line.len() - body.len() + content.len();
    Some((k, v, &line[comment_start..]))
}

/// `text` split before a `#` that starts a comment (after a space, outside quotes).
fn split_comment(text: &str) -> (&str, &str) {
    let mut quote = None;
    let mut prev = ' ';
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') if matches!(prev, ' ' | '{' | '[' | ',' | ':') => quote = Some(c),
            (None, '#') if prev == ' ' || prev == '\t' => {
                let content = text[..i].trim_end();
                return (content, &text[content.len()..]);
            }
            _ => {}
        }
        prev = c;
    }
    (text.trim_end(), &text[text.trim_end().len()..])
}

fn root_key(line: &str) -> Option<&str> {
    if line.starts_with([' ', '\t', '#']) {
        return None;
    }
    split_key(line).map(|(k, ..)| k)
}

fn is_content(line: &str) -> bool {
    let t = line.trim_start();
    !t.is_empty() && !t.starts_with('#')
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn join(lines: Vec<String>, newline: &str, original: &str) -> String {
    let mut out = lines.join(newline);
    if original.ends_with('\n') {
        out += newline;
    }
    out
}

#[cfg(test)]
mod tests;
