//! `cargo run -p openapi`: writes the API's description to
//! `docs/openapi.json` (see the library's docs).

use std::path::Path;

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = root.join(openapi::PATH);
    std::fs::write(&path, openapi::to_json()?)
        .with_context(|| format!("Failed to write {}", openapi::PATH))?;
    println!("Wrote {}", openapi::PATH);
    Ok(())
}
