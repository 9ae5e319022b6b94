//! Log setup for the long-running roles: human-readable to stderr, JSON with `--log-format json`.

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
}

/// Why the level could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum LevelError {
    #[error("invalid level {level:?}: {source}")]
    Invalid {
        level: String,
        source: tracing_subscriber::filter::ParseError,
    },
    /// The subscriber that the handle reloads is gone.
    #[error(transparent)]
    Reload(#[from] tracing_subscriber::reload::Error),
}

/// Changes the level at run time (`POST /logging?level=` on a proxy); the error is a
/// [`LevelError`].
pub type SetLevel = weft_proxy::SetLogLevel;

/// `level` is the default filter; `RUST_LOG` overrides it. Returns a handle that changes the
/// level later.
pub fn init(level: &str, format: Format) -> SetLevel {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let base = tracing_subscriber::fmt().with_writer(std::io::stderr);
    macro_rules! install {
        ($builder:expr) => {{
            let builder = $builder.with_env_filter(filter).with_filter_reloading();
            let handle = builder.reload_handle();
            let _ = builder.try_init();
            std::sync::Arc::new(move |level: &str| {
                let filter = EnvFilter::try_new(level).map_err(|source| LevelError::Invalid {
                    level: level.to_string(),
                    source,
                })?;
                handle.reload(filter).map_err(LevelError::from)?;
                Ok(())
            })
        }};
    }
    match format {
        Format::Text => install!(base),
        Format::Json => install!(base.json().flatten_event(true)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The callback's error is a [`LevelError`] naming the level, with the parser's error as
    /// its cause; the filter is parsed before anything is reloaded, so this holds whether or
    /// not this test's subscriber became the global one.
    #[test]
    fn an_invalid_level_is_named_with_the_parser_error() {
        let set = init("info", Format::Text);
        let err = set("weft=loud").unwrap_err();
        let parser = EnvFilter::try_new("weft=loud").unwrap_err().to_string();
        assert_eq!(
            err.to_string(),
            format!("invalid level \"weft=loud\": {parser}")
        );
        let typed = err.downcast_ref::<LevelError>().expect("a LevelError");
        assert!(matches!(typed, LevelError::Invalid { .. }), "{typed:?}");
        assert!(std::error::Error::source(typed).is_some());
    }
}
