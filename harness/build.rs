//! Rebuilds `simlab` when a built-in file changes (see `src/defaults.rs`): `include_dir!`
//! alone notices edited files but not added or removed ones.

fn main() {
    for dir in ["../vectors/cards", "../vectors/pki", "../vectors/profiles"] {
        println!("cargo:rerun-if-changed={dir}");
    }
}
