//! weft's core: resource types, the configuration loader with precise errors, effective proxy
//! settings and the analyzer rules. No async runtime and no network; the loader reads files.

pub mod access_log;
pub mod annotations;
pub mod authz;
pub mod cert;
pub mod duration;
pub mod events;
pub mod identity;
pub mod import;
pub mod load;
pub mod meta;
pub mod model;
pub mod quantity;
pub mod resources;
pub mod schema;
pub mod sizing;

pub use load::{Config, ConfigError, Loaded, Location, load_paths, parse_str};
pub use resources::{Kind, Resource};
pub mod analyze;
