//! Compiles `kefu/**/*.proto` with protox (pure Rust), writes the encoded
//! descriptor set that gRPC reflection serves, and implements `ProtoEnum`
//! for every enum of the contracts (their valid names, for error messages).
use std::{env, fmt::Write as _, fs, path::PathBuf};

use prost_types::{DescriptorProto, EnumDescriptorProto};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let mut files = Vec::new();
    collect(&root.join("kefu"), &mut files)?;
    files.sort();
    // With the comments, which the OpenAPI document and the API reference
    // show as descriptions.
    let mut compiler = protox::Compiler::new([&root])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(&files)?;
    let fds = compiler.file_descriptor_set();
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out.join("kefu_descriptor.bin"), prost::Message::encode_to_vec(&fds))?;

    let mut enums = String::new();
    for file in fds.file.iter().filter(|f| f.package().starts_with("kefu.")) {
        let module = format!("crate::{}", file.package().trim_start_matches("kefu.").replace('.', "::"));
        for e in &file.enum_type {
            enum_impl(&mut enums, &module, e);
        }
        for m in &file.message_type {
            nested(&mut enums, &module, m);
        }
    }
    fs::write(out.join("kefu_enums.rs"), enums)?;

    // The one label table: every enum value people may read has a Chinese
    // and an English label, or the build stops naming what is missing.
    let table = fs::read_to_string(root.join("labels.tsv"))?;
    let mut labels = std::collections::BTreeMap::new();
    for (i, line) in table.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 3 || f.iter().any(|x| x.trim().is_empty()) {
            return Err(format!("labels.tsv line {}: expected NAME<TAB>中文<TAB>English", i + 1).into());
        }
        if labels.insert(f[0].to_owned(), (f[1].to_owned(), f[2].to_owned())).is_some() {
            return Err(format!("labels.tsv line {}: {} is labelled twice", i + 1, f[0]).into());
        }
    }
    let mut values = std::collections::BTreeSet::new();
    for file in fds.file.iter().filter(|f| f.package().starts_with("kefu.")) {
        for e in &file.enum_type {
            values.extend(e.value.iter().map(|v| v.name().to_owned()).filter(|n| !n.ends_with("_UNSPECIFIED")));
        }
    }
    let missing: Vec<&String> = values.iter().filter(|v| !labels.contains_key(*v)).collect();
    let stale: Vec<&String> = labels.keys().filter(|k| !values.contains(*k)).collect();
    if !missing.is_empty() || !stale.is_empty() {
        return Err(format!("labels.tsv: no label for {missing:?}; labels for no enum value {stale:?}").into());
    }
    let rows: Vec<String> = labels.iter().map(|(k, (zh, en))| format!("    ({k:?}, {zh:?}, {en:?}),")).collect();
    fs::write(
        out.join("kefu_labels.rs"),
        format!(
            "/// (value name, 中文, English), by value name.\npub static LABELS: &[(&str, &str, &str)] = &[\n{}\n];\n",
            rows.join("\n")
        ),
    )?;
    println!("cargo:rerun-if-changed=labels.tsv");

    tonic_prost_build::configure().build_server(true).build_client(true).compile_fds(fds)?;
    println!("cargo:rerun-if-changed=kefu");
    Ok(())
}

fn nested(out: &mut String, module: &str, m: &DescriptorProto) {
    let inner = format!("{module}::{}", snake(m.name()));
    for e in &m.enum_type {
        enum_impl(out, &inner, e);
    }
    for n in &m.nested_type {
        nested(out, &inner, n);
    }
}

fn enum_impl(out: &mut String, module: &str, e: &EnumDescriptorProto) {
    let values: Vec<String> = e.value.iter().map(|v| format!("({}, {:?})", v.number(), v.name())).collect();
    let _ = writeln!(
        out,
        "impl crate::ProtoEnum for {module}::{name} {{\n    const NAME: &'static str = {name:?};\n    \
         const VALUES: &'static [(i32, &'static str)] = &[{values}];\n}}",
        name = e.name(),
        values = values.join(", "),
    );
}

/// prost's module name for a message: snake case.
fn snake(name: &str) -> String {
    let mut s = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                s.push('_');
            }
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    s
}

fn collect(dir: &std::path::Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
