//! Compiles the protocol with protox (pure Rust), so building weft needs no `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto");
    let files = [
        format!("{root}/weft/v1/discovery.proto"),
        format!("{root}/weft/v1/ca.proto"),
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(&files, [root])?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
