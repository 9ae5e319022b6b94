//! Converting another mesh's configuration into weft's: `weft import istio` ([`istio`]). Pure:
//! texts in, texts and a summary out; the CLI reads and writes the files.

pub mod emit;
pub mod istio;
