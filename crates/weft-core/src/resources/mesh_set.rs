//! A revision's mesh settings: `--set key=value` overrides of the Mesh's `spec` (`weft install
//! --revision NAME --set mtls.mode=PERMISSIVE`). The control plane of that revision serves its
//! proxies the configuration with these applied, so two revisions can differ in settings as
//! well as in binary. Keys are the Mesh's field paths in camelCase, as in docs/config.md.

use serde_json::Value;

use super::Resource;
use super::mesh::{Mesh, MeshSpec};
use crate::load::{Config, Loaded};

/// One `key=value`: a field path of the Mesh's spec and the value to put there.
#[derive(Debug, Clone, PartialEq)]
pub struct MeshSet {
    pub path: String,
    pub value: Value,
}

impl std::fmt::Display for MeshSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.value {
            Value::String(s) => write!(f, "{}={s}", self.path),
            v => write!(f, "{}={v}", self.path),
        }
    }
}

impl std::str::FromStr for MeshSet {
    type Err = String;

    /// `mtls.mode=STRICT`; the value is JSON when it reads as JSON (`true`, `5`, `{"a":1}`),
    /// a string otherwise (`STRICT`, `5s`).
    fn from_str(s: &str) -> Result<MeshSet, String> {
        let Some((path, value)) = s.split_once('=') else {
            return Err(format!(
                "--set {s:?}: expected key=value, e.g. mtls.mode=PERMISSIVE"
            ));
        };
        let path = path.trim();
        if path.is_empty() || path.split('.').any(str::is_empty) {
            return Err(format!(
                "--set {s:?}: {path:?} is not a field path, e.g. proxy.drainDuration"
            ));
        }
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.into()));
        Ok(MeshSet {
            path: path.into(),
            value,
        })
    }
}

/// `spec` with every set applied in order; an unknown field or a value of the wrong type is
/// an error naming the set and what is wrong.
pub fn apply(spec: &MeshSpec, sets: &[MeshSet]) -> Result<MeshSpec, String> {
    let mut doc = serde_json::to_value(spec).map_err(|e| e.to_string())?;
    for set in sets {
        let mut at = &mut doc;
        for key in set.path.split('.') {
            if !at.is_object() {
                return Err(format!(
                    "--set {set}: {key:?} is inside a value, not a section"
                ));
            }
            at = at
                .as_object_mut()
                .expect("checked")
                .entry(key.to_string())
                .or_insert(Value::Object(Default::default()));
        }
        *at = set.value.clone();
        serde_json::from_value::<MeshSpec>(doc.clone())
            .map_err(|e| format!("--set {set}: {e} (see the Mesh kind in docs/config.md)"))?;
    }
    serde_json::from_value(doc).map_err(|e| e.to_string())
}

/// Applies `sets` to the Mesh of `config` (one with every default when it has none).
pub fn apply_to_config(config: &mut Config, sets: &[MeshSet]) -> Result<(), String> {
    if sets.is_empty() {
        return Ok(());
    }
    let mesh = config
        .resources
        .iter_mut()
        .find_map(|l| match &mut l.resource {
            Resource::Mesh(m) => Some(m),
            _ => None,
        });
    match mesh {
        Some(m) => m.spec = apply(&m.spec, sets)?,
        None => {
            let mut m = Mesh {
                metadata: Default::default(),
                spec: apply(&MeshSpec::default(), sets)?,
            };
            m.metadata.name = "default".into();
            let mesh = Loaded::synthetic(Resource::Mesh(m), "--set");
            config.resources.push(mesh);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::mesh::MtlsMode;

    fn set(s: &str) -> MeshSet {
        s.parse().unwrap()
    }

    #[test]
    fn values_read_as_json_or_as_strings() {
        assert_eq!(
            set("mtls.mode=STRICT").value,
            Value::String("STRICT".into())
        );
        assert_eq!(set("proxy.concurrency=4").value, Value::from(4));
        assert_eq!(set("metrics.enabled=false").value, Value::Bool(false));
        assert_eq!(set("mtls.mode=STRICT").to_string(), "mtls.mode=STRICT");
        for bad in ["mtls.mode", "=x", "a..b=1"] {
            assert!(bad.parse::<MeshSet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn sets_change_the_mesh_settings_and_keep_the_rest() {
        let spec = apply(
            &MeshSpec::default(),
            &[set("mtls.mode=DISABLE"), set("proxy.concurrency=4")],
        )
        .unwrap();
        assert_eq!(spec.mtls.mode, MtlsMode::Disable);
        assert_eq!(spec.proxy.concurrency, 4);
        assert_eq!(spec.trust_domain, MeshSpec::default().trust_domain);
    }

    #[test]
    fn a_wrong_key_or_value_is_named() {
        let e = apply(&MeshSpec::default(), &[set("mtls.mod=STRICT")]).unwrap_err();
        assert!(
            e.starts_with("--set mtls.mod=STRICT: unknown field `mod`"),
            "{e}"
        );
        let e = apply(&MeshSpec::default(), &[set("mtls.mode=SOMETIMES")]).unwrap_err();
        assert!(e.contains("SOMETIMES"), "{e}");
        let e = apply(&MeshSpec::default(), &[set("trustDomain.x=1")]).unwrap_err();
        assert!(e.contains("inside a value"), "{e}");
    }

    #[test]
    fn a_config_without_a_mesh_gets_one_with_the_sets() {
        let mut config = Config::default();
        apply_to_config(&mut config, &[set("mtls.mode=PERMISSIVE")]).unwrap();
        let Resource::Mesh(m) = &config.resources[0].resource else {
            panic!("no mesh");
        };
        assert_eq!(m.spec.mtls.mode, MtlsMode::Permissive);
    }
}
