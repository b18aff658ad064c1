//! Embeds the built front end: `client-ui/dist` must exist (`npm ci --prefix client-ui && npm run build
//! --prefix client-ui`) before this crate builds.

use std::path::Path;

fn main() {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../client-ui/dist");
    println!("cargo::rerun-if-changed={}", dist.display());
    if !dist.join("index.html").is_file() {
        println!(
            "cargo::error={} has no index.html: build the front end first with `npm ci --prefix client-ui && npm run build --prefix client-ui`",
            dist.display()
        );
        return;
    }
    tauri_build::build();
}
