//! The pods file: the pods the local runtime (`weft up`) registers as endpoints, those whose app
//! (and proxy) is ready, with or without a proxy (dataplane mode `none`), and the ambient pods
//! their node proxy is to serve before they are ready (`"ready": false`: known, no endpoint). JSON
//! `{"pods": [Pod, ...]}` (see [`weft_core::model::Pod`]), read at start and re-read as soon as a
//! change settles ([`crate::watch`]). A file that cannot be read or parsed is logged with its
//! path, line, column and field, and the last good list stays in force. Once a list is in force
//! it alone decides which pods are endpoints: a pod whose proxy announced itself but that is not
//! listed (its app crashed or is not ready) is none; for a listed pod, the announcement adds
//! where its proxy listens.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use weft_core::model::{Pod, PodList};

use crate::state::State;
use crate::watch::Changes;

/// Parses the pods file's content. `Err` says where it is wrong: `path:line:column: field:
/// what`.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Vec<Pod>, String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let list: PodList = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        // serde_json appends " at line L column C"; the location leads instead.
        let message = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(m, _)| m);
        let field = if field == "." {
            String::new()
        } else {
            format!("{field}: ")
        };
        format!(
            "{}:{}:{}: {field}{message}",
            path.display(),
            inner.line(),
            inner.column()
        )
    })?;
    for (i, pod) in list.pods.iter().enumerate() {
        for (field, value) in [
            ("id", &pod.id),
            ("namespace", &pod.namespace),
            ("name", &pod.name),
        ] {
            if value.is_empty() {
                return Err(format!("{}: pods[{i}].{field} is empty", path.display()));
            }
        }
    }
    Ok(list.pods)
}

/// The file's content, or why it cannot be read.
fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: cannot read the pods file: {e}", path.display()))
}

/// Reads the file once and puts its pods in force; returns what was read, for [`watch`].
pub fn load(path: &Path, state: &State) -> Result<Vec<u8>, String> {
    let read = read(path);
    apply(path, &read, state);
    read
}

fn apply(path: &Path, read: &Result<Vec<u8>, String>, state: &State) {
    let shown = path.display().to_string();
    match read
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|b| parse(path, b))
    {
        Ok(pods) => {
            tracing::info!(path = %shown, pods = pods.len(), "pods file applied");
            state.set_file_pods(&shown, pods);
        }
        Err(problem) => {
            tracing::error!("pods file rejected, the last good pod list stays: {problem}");
            state.reject_file_pods(&shown, problem);
        }
    }
}

/// Re-reads `path` whenever its content changes, until the task is dropped. `seen` is what was
/// last read (by [`load`]); it is compared once the watch is set up, so a change made since is
/// not missed.
pub async fn watch(path: PathBuf, state: Arc<State>, mut seen: Result<Vec<u8>, String>) {
    let mut changes = Changes::file(&path, "pods file");
    loop {
        let p = path.clone();
        if let Ok(now) = tokio::task::spawn_blocking(move || read(&p)).await
            && now != seen
        {
            apply(&path, &now, &state);
            seen = now;
        }
        changes.next().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file_line_column_and_field() {
        let path = Path::new("/run/weft/pods.json");
        let text = "{\"pods\": [\n  {\"id\": \"web-0.shop\", \"namespace\": \"shop\", \"workload\": \"web\",\n   \"name\": \"web-0\", \"ip\": \"10.0.0.300\"}\n]}\n";
        let err = parse(path, text.as_bytes()).unwrap_err();
        assert!(
            err.starts_with("/run/weft/pods.json:3:")
                && err.contains("pods[0].ip: invalid IP address syntax"),
            "{err}"
        );
        let err = parse(path, b"{\"pods\": [").unwrap_err();
        assert_eq!(
            err,
            "/run/weft/pods.json:1:10: pods: EOF while parsing a list"
        );
        let err = parse(
            path,
            br#"{"pods": [{"id": "", "namespace": "shop", "workload": "w", "name": "n", "ip": "10.0.0.1"}]}"#,
        )
        .unwrap_err();
        assert_eq!(err, "/run/weft/pods.json: pods[0].id is empty");
    }

    #[test]
    fn optional_fields_default() {
        let pods = parse(
            Path::new("p.json"),
            br#"{"pods": [{"id": "web-0.shop", "namespace": "shop", "workload": "web", "name": "web-0", "ip": "10.0.0.1"}]}"#,
        )
        .unwrap();
        assert_eq!(pods[0].service_account, "default");
        assert!(pods[0].labels.is_empty() && pods[0].inbound.is_none());
    }
}
