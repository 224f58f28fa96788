//! Embeds the default rule pack (the checkout's `rules/`, rules and their test events) in the
//! detector, so `mcpsiem up` and `mcpsiem detect` find it from any working directory.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, root: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect(&path, root, out);
        } else if name.ends_with(".yml") || name.ends_with(".yaml") {
            let relative = path.strip_prefix(root).expect("under the root").to_string_lossy().replace('\\', "/");
            out.push((relative, path));
        }
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("rules");
    println!("cargo::rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    files.sort();
    let mut code = String::from(
        "/// The embedded pack: each file's path under `rules/` and its text.\npub static FILES: &[(&str, &str)] = &[\n",
    );
    for (name, path) in &files {
        let absolute = path.canonicalize().expect("a rule file");
        writeln!(code, "    ({name:?}, include_str!({:?})),", absolute.display().to_string()).unwrap();
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("builtin_rules.rs");
    std::fs::write(out, code).expect("writing the embedded rule pack");
}
