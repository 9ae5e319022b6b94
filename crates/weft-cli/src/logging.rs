//! Log setup for the long-running roles: human-readable to stderr, JSON with `--log-format json`.

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
}

/// Changes the level at run time (`POST /logging?level=` on a proxy).
pub type SetLevel = std::sync::Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

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
                let filter = EnvFilter::try_new(level)
                    .map_err(|e| format!("invalid level {level:?}: {e}"))?;
                handle.reload(filter).map_err(|e| e.to_string())
            })
        }};
    }
    match format {
        Format::Text => install!(base),
        Format::Json => install!(base.json().flatten_event(true)),
    }
}
