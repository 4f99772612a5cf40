//! Rebuild the host when the built web console changes: rust-embed reads
//! `web/dist` at compile time, and Vite writes new hashed names on each build.
fn main() {
    let dist = std::path::Path::new("../web/dist");
    // A missing path would make cargo rerun this on every build: watch `web/`
    // (where `dist` appears) until the console is built.
    let watched = if dist.exists() {
        "../web/dist"
    } else {
        "../web"
    };
    println!("cargo:rerun-if-changed={watched}");
    println!("cargo:rerun-if-changed=build.rs");
}
