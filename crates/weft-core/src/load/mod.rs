//! The configuration loader: files, directories, multi-document YAML and JSON, weft kinds,
//! Gateway API routes and ordinary Kubernetes manifests, into a [`Config`]. Every problem is a
//! [`ConfigError`] with file:line:column and field path; no input makes it panic.

mod decode;
mod error;
pub mod yaml;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use error::{ConfigError, Location, closest};
pub use yaml::{Pos, Positions};

use crate::resources::Resource;

/// A resource with where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub resource: Resource,
    /// Where the document starts.
    pub origin: Location,
    positions: Positions,
}

impl Loaded {
    /// The location of a field (`spec.rules[0].backendRefs[1].port`), or the nearest one known.
    pub fn locate(&self, path: &str) -> Location {
        match self.positions.value(path) {
            Some(pos) => Location::new(&self.origin.file, pos),
            None => self.origin.clone(),
        }
    }

    /// Whether the document has a value at exactly `path` (a Kubernetes workload's labels are
    /// under `spec.template`, a Workload's under `metadata`).
    pub fn has(&self, path: &str) -> bool {
        self.positions.contains(path)
    }

    /// A resource built in code (tests, defaults), located at `file`:1:1.
    pub fn synthetic(resource: Resource, file: &str) -> Self {
        Loaded {
            resource,
            origin: Location::new(file, Pos { line: 1, column: 1 }),
            positions: Positions::default(),
        }
    }
}

/// A set of resources, as read from one or more sources.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub resources: Vec<Loaded>,
    /// Documents of kinds weft does not read (ConfigMap, Secret, ...), with their kind.
    pub skipped: Vec<(Location, String)>,
    /// Documents of another mesh's API that weft does not read but must not pass over in
    /// silence: the analyzer reports each one (WEFT0801) with how to convert it.
    pub foreign: Vec<Foreign>,
}

/// A document of Istio's API (`networking.istio.io`, `security.istio.io`, ...): read only far
/// enough to name it.
#[derive(Debug, Clone, PartialEq)]
pub struct Foreign {
    /// Where the document starts.
    pub origin: Location,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    /// `default` when the document names none.
    pub namespace: String,
    /// Read for `weft.dev/analyze-ignore`.
    pub annotations: std::collections::BTreeMap<String, String>,
}

impl Foreign {
    /// The API groups read as foreign: every `*.istio.io` group.
    pub fn is_foreign(api_version: &str) -> bool {
        let group = api_version.split('/').next().unwrap_or_default();
        group.ends_with(".istio.io")
    }

    /// `Kind/namespace/name`, as [`Resource::id`] writes it.
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.kind, self.namespace, self.name)
    }

    /// The API group, e.g. `networking.istio.io`.
    pub fn group(&self) -> &str {
        self.api_version.split('/').next().unwrap_or_default()
    }
}

/// Everything read, and everything that was wrong.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub config: Config,
    /// Files read, in order.
    pub files: Vec<String>,
    pub errors: Vec<ConfigError>,
}

impl Outcome {
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Reads one text (a file's content); `file` names it in messages.
pub fn parse_str(file: &str, text: &str) -> Outcome {
    let mut out = Outcome::default();
    add_text(&mut out, file, text);
    check_duplicates(&mut out);
    out
}

/// Reads files and directories (recursively: `*.yaml`, `*.yml`, `*.json`, hidden entries skipped).
pub fn load_paths<P: AsRef<Path>>(paths: &[P]) -> Outcome {
    let mut out = Outcome::default();
    for path in paths {
        let path = path.as_ref();
        let mut files = Vec::new();
        if let Err(e) = collect(path, true, &mut files) {
            out.errors.push(*e);
            continue;
        }
        if files.is_empty() {
            out.errors.push(
                ConfigError::new(
                    Location::new(&path.display().to_string(), Pos::default()),
                    "no configuration files (*.yaml, *.yml, *.json) found here",
                )
                .with_hint("point at a directory that holds weft or Kubernetes YAML"),
            );
        }
        for file in files {
            let name = file.display().to_string();
            out.files.push(name.clone());
            match std::fs::read(&file) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(text) => add_text(&mut out, &name, &text),
                    Err(e) => out.errors.push(ConfigError::new(
                        Location::new(&name, Pos::default()),
                        format!(
                            "not UTF-8 text (invalid byte at offset {})",
                            e.utf8_error().valid_up_to()
                        ),
                    )),
                },
                Err(e) => out.errors.push(ConfigError::new(
                    Location::new(&name, Pos::default()),
                    format!("cannot read: {e}"),
                )),
            }
        }
    }
    check_duplicates(&mut out);
    out
}

/// The files [`load_paths`] reads under `path`: `path` itself when it is a file, otherwise the
/// `*.yaml`, `*.yml` and `*.json` files below it (hidden entries skipped), sorted.
pub fn config_files(path: &Path) -> Result<Vec<PathBuf>, Box<ConfigError>> {
    let mut files = Vec::new();
    collect(path, true, &mut files)?;
    Ok(files)
}

fn collect(path: &Path, explicit: bool, files: &mut Vec<PathBuf>) -> Result<(), Box<ConfigError>> {
    let here = || Location::new(&path.display().to_string(), Pos::default());
    let meta = std::fs::metadata(path)
        .map_err(|e| Box::new(ConfigError::new(here(), format!("cannot read: {e}"))))?;
    if meta.is_file() {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if explicit || matches!(ext, "yaml" | "yml" | "json") {
            files.push(path.to_path_buf());
        }
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| {
            Box::new(ConfigError::new(
                here(),
                format!("cannot list directory: {e}"),
            ))
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    entries.sort();
    for entry in entries {
        collect(&entry, false, files)?;
    }
    Ok(())
}

fn add_text(out: &mut Outcome, file: &str, text: &str) {
    let (docs, syntax) = yaml::parse_documents(text);
    for doc in docs {
        match decode::decode(file, doc) {
            Ok(decode::Decoded::Resource(loaded)) => out.config.resources.push(*loaded),
            Ok(decode::Decoded::Skipped(loc, kind)) => out.config.skipped.push((loc, kind)),
            Ok(decode::Decoded::Foreign(f)) => out.config.foreign.push(*f),
            Ok(decode::Decoded::Empty) => {}
            Err(e) => out.errors.push(*e),
        }
    }
    if let Some(e) = syntax {
        out.errors.push(
            ConfigError::new(Location::new(file, e.pos), e.message)
                .with_hint("fix the YAML syntax here; check indentation and quoting"),
        );
    }
}

fn check_duplicates(out: &mut Outcome) {
    let mut seen: HashMap<String, Location> = HashMap::new();
    let mut dups = Vec::new();
    out.config.resources.retain(|r| {
        let id = r.resource.id();
        match seen.get(&id) {
            Some(first) => {
                let mut e = ConfigError::new(
                    r.origin.clone(),
                    format!("{id} is defined twice (first at {first})"),
                )
                .with_hint("rename one of them, or delete the copy");
                e.resource = Some(id);
                e.related.push(first.clone());
                dups.push(e);
                false
            }
            None => {
                seen.insert(id, r.origin.clone());
                true
            }
        }
    });
    out.errors.extend(dups);
}

#[cfg(test)]
mod tests;
