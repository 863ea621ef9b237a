//! The C ABI's contract: the hand-written header `xs/nativevnc.h` against the Rust definitions in
//! `src/ffi/`. A C program compiled with `cc` against the header reports the layout of every struct; Rust
//! reports its own; both are compared field by field, by name. The functions the header declares are
//! compared with the `extern "C"` functions the Rust sources define: the same names, parameter counts and
//! types.

use std::collections::BTreeMap;
use std::mem::{offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;

use nativevnc::error::ErrorKind;
use nativevnc::ffi::{NvConnectOptions, NvCounters, NvError, NvStatus};

/// A struct's layout: its size and, in declaration order, each field's name, offset and size.
#[derive(Debug, PartialEq)]
struct Layout {
    size: usize,
    fields: Vec<(String, usize, usize)>,
}

fn field_size<T, F>(_: fn(&T) -> &F) -> usize {
    size_of::<F>()
}

/// The Rust layout of a `#[repr(C)]` struct; the field list is checked against the source, so a field
/// missing here fails the test too.
macro_rules! layout {
    ($t:ty: $($f:ident),* $(,)?) => {
        (
            stringify!($t),
            Layout {
                size: size_of::<$t>(),
                fields: vec![$((stringify!($f).to_string(), offset_of!($t, $f), field_size(|s: &$t| &s.$f))),*],
            },
        )
    };
}

fn rust_layouts() -> BTreeMap<&'static str, Layout> {
    BTreeMap::from([
        layout!(NvError: kind, message),
        layout!(
            NvConnectOptions: host,
            port,
            password,
            connect_timeout_ms,
            io_timeout_ms,
            encodings,
            n_encodings,
            depth,
            keep_server_format,
            shared,
            scancode_keys,
            webmks_url,
            vm,
            webmks_password,
            ticket_attempts,
            ticket_delay_ms,
            insecure,
            ca_file,
            thumbprint,
            hosts,
            api,
        ),
        layout!(NvStatus: connected, rfb_minor, absolute, scancodes, width, height),
        layout!(NvCounters: messages, updates, pixel_updates, pixels),
    ])
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn header_path() -> PathBuf {
    crate_dir().join("../../xs/nativevnc.h")
}

fn header() -> String {
    let path = header_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    strip_c_comments(&text)
}

/// The Rust sources of the ABI, comments left in (they do not contain `extern "C" fn` definitions).
fn rust_sources() -> String {
    let dir = crate_dir().join("src/ffi");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect::<Vec<_>>().join("\n")
}

fn strip_c_comments(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("*/").expect("an unterminated comment in the header");
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `const char *name` as (`const char *`, `name`); `void` or an unnamed type as (type, "").
fn split_declaration(decl: &str) -> (String, String) {
    let decl = squash(decl);
    let name_start = decl.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |i| i + 1);
    let (ty, name) = decl.split_at(name_start);
    if ty.trim().is_empty() {
        return (normal_c_type(name), String::new());
    }
    (normal_c_type(ty), name.to_string())
}

/// A C type spelled one way: `char*` and `char *` alike, `int` as the `int32_t` it is here.
fn normal_c_type(ty: &str) -> String {
    let ty = squash(&ty.replace('*', " * "));
    let ty = ty.split(' ').map(|w| if w == "int" { "int32_t" } else { w }).collect::<Vec<_>>().join(" ");
    ty.replace("* *", "**")
}

/// The header's `typedef struct { ... } name;` definitions: name to fields (type, name) in order.
fn header_structs(header: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let mut structs = BTreeMap::new();
    let mut rest = header;
    while let Some(start) = rest.find("typedef struct {") {
        let body_start = start + "typedef struct {".len();
        let body_end = body_start + rest[body_start..].find('}').expect("an unterminated struct in the header");
        let name_end = body_end + rest[body_end..].find(';').expect("a struct without a name in the header");
        let name = rest[body_end + 1..name_end].trim().to_string();
        let fields =
            rest[body_start..body_end].split(';').filter(|f| !f.trim().is_empty()).map(split_declaration).collect();
        structs.insert(name, fields);
        rest = &rest[name_end..];
    }
    structs
}

/// The `#[repr(C)]` structs of the Rust sources: name to fields (C type, name) in order.
fn rust_structs(source: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let mut structs = BTreeMap::new();
    for (i, _) in source.match_indices("#[repr(C)]") {
        let rest = &source[i..];
        let start = rest.find("pub struct ").expect("#[repr(C)] on something other than a struct") + 11;
        let name_end = start + rest[start..].find(|c: char| !c.is_alphanumeric()).unwrap();
        let body_start = rest[name_end..].find('{').unwrap() + name_end + 1;
        let body_end = body_start + rest[body_start..].find("\n}").unwrap();
        let fields = rest[body_start..body_end]
            .lines()
            .map(str::trim)
            .filter_map(|l| l.strip_prefix("pub "))
            .map(|l| {
                let (name, ty) = l.split_once(':').expect("a field without a type");
                (c_type_of(ty.trim().trim_end_matches(',')), name.trim().to_string())
            })
            .collect();
        structs.insert(rest[start..name_end].to_string(), fields);
    }
    structs
}

/// The C spelling of a Rust type of the ABI.
fn c_type_of(rust: &str) -> String {
    let rust = rust.trim();
    if let Some(inner) = rust.strip_prefix("*const ") {
        return normal_c_type(&format!("const {} *", c_type_of(inner)));
    }
    if let Some(inner) = rust.strip_prefix("*mut ") {
        return normal_c_type(&format!("{} *", c_type_of(inner)));
    }
    match rust {
        "u8" | "u16" | "u32" | "u64" => format!("uint{}_t", &rust[1..]),
        "i8" | "i16" | "i32" | "i64" => format!("int{}_t", &rust[1..]),
        "usize" => "size_t".into(),
        "c_char" => "char".into(),
        "c_void" | "()" => "void".into(),
        "Image" => "nv_image".into(),
        _ => c_name_of(rust),
    }
}

/// `NvConnectOptions` as `nv_connect_options`.
fn c_name_of(rust: &str) -> String {
    let mut out = String::new();
    for (i, c) in rust.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Runs a C program made of `body` (statements in `main`) with the header included; returns its output.
fn run_c(name: &str, body: &str) -> String {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("abi_contract");
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join(format!("{name}.c"));
    let program = dir.join(name);
    let text = format!(
        "#include <stddef.h>\n#include <stdio.h>\n#include \"nativevnc.h\"\nint main(void)\n{{\n{body}    return 0;\n}}\n"
    );
    std::fs::write(&source, text).unwrap();
    let include = header_path().parent().unwrap().to_path_buf();
    let out = Command::new("cc")
        .args(["-std=c99", "-Wall", "-Werror", "-I"])
        .arg(&include)
        .arg("-o")
        .arg(&program)
        .arg(&source)
        .output()
        .expect("running cc (the contract check needs a C compiler)");
    assert!(out.status.success(), "cc failed on {}:\n{}", source.display(), String::from_utf8_lossy(&out.stderr));
    let out = Command::new(Path::new(&program)).output().unwrap();
    assert!(out.status.success(), "{} failed", program.display());
    String::from_utf8(out.stdout).unwrap()
}

/// The layouts of the header's structs, as the C compiler sees them.
fn c_layouts(structs: &BTreeMap<String, Vec<(String, String)>>) -> BTreeMap<String, Layout> {
    let mut body = String::new();
    for (name, fields) in structs {
        body += &format!("    printf(\"{name} %zu\\n\", sizeof({name}));\n");
        for (_, field) in fields {
            body += &format!(
                "    printf(\"{name}.{field} %zu %zu\\n\", offsetof({name}, {field}), sizeof((({name} *)0)->{field}));\n"
            );
        }
    }
    let mut layouts: BTreeMap<String, Layout> = BTreeMap::new();
    for line in run_c("layouts", &body).lines() {
        let words: Vec<&str> = line.split(' ').collect();
        let number = |i: usize| words[i].parse::<usize>().unwrap();
        match words[0].split_once('.') {
            None => {
                layouts.insert(words[0].to_string(), Layout { size: number(1), fields: Vec::new() });
            }
            Some((s, field)) => layouts.get_mut(s).unwrap().fields.push((field.to_string(), number(1), number(2))),
        }
    }
    layouts
}

/// What is wrong between two field lists, by name: missing, extra, moved.
fn field_differences(header: &[String], rust: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    for f in header.iter().filter(|f| !rust.contains(f)) {
        problems.push(format!("field `{f}` is in the header but not in Rust"));
    }
    for f in rust.iter().filter(|f| !header.contains(f)) {
        problems.push(format!("field `{f}` is in Rust but not in the header"));
    }
    if problems.is_empty() {
        for (i, (h, r)) in header.iter().zip(rust).enumerate() {
            if h != r {
                problems.push(format!("field {i} is `{h}` in the header but `{r}` in Rust"));
            }
        }
    }
    problems
}

#[test]
fn structs_match_field_by_field() {
    let header = header_structs(&header());
    let rust = rust_structs(&rust_sources());
    let layouts = rust_layouts();
    let mut problems = Vec::new();

    let rust_names: Vec<String> = rust.keys().map(|n| c_name_of(n)).collect();
    for name in header.keys().filter(|n| !rust_names.contains(n)) {
        problems.push(format!("struct {name} is in the header but no #[repr(C)] struct of src/ffi/ matches it"));
    }
    for (rust_name, rust_fields) in &rust {
        let c_name = c_name_of(rust_name);
        let Some(header_fields) = header.get(&c_name) else {
            problems.push(format!("struct {rust_name} is #[repr(C)] in src/ffi/ but the header has no {c_name}"));
            continue;
        };
        let names = |fields: &[(String, String)]| fields.iter().map(|(_, n)| n.clone()).collect::<Vec<_>>();
        let in_test = layouts
            .get(rust_name.as_str())
            .map(|l| l.fields.iter().map(|(n, _, _)| n.clone()).collect::<Vec<_>>())
            .unwrap_or_default();
        for p in field_differences(&names(rust_fields), &in_test) {
            problems.push(format!("{rust_name}: this test's layout! list is out of date: {p}"));
        }
        for p in field_differences(&names(header_fields), &names(rust_fields)) {
            problems.push(format!("{c_name}: {p}"));
        }
        for (c_type, name) in header_fields {
            if let Some((rust_type, _)) = rust_fields.iter().find(|(_, n)| n == name) {
                if c_type != rust_type {
                    problems.push(format!("{c_name}.{name}: the header says `{c_type}`, Rust means `{rust_type}`"));
                }
            }
        }
    }

    let c = c_layouts(&header);
    for (rust_name, layout) in &layouts {
        let c_name = c_name_of(rust_name);
        let Some(c) = c.get(&c_name) else { continue };
        if c.size != layout.size {
            problems.push(format!("sizeof({c_name}) is {} in C, {} in Rust", c.size, layout.size));
        }
        for (name, offset, size) in &layout.fields {
            if let Some((_, c_offset, c_size)) = c.fields.iter().find(|(n, _, _)| n == name) {
                if (c_offset, c_size) != (offset, size) {
                    problems.push(format!(
                        "{c_name}.{name}: offset {c_offset} size {c_size} in C, offset {offset} size {size} in Rust"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "the header and src/ffi/ disagree:\n{}", problems.join("\n"));
}

/// A function of the ABI: its return type and parameter types, C spellings.
type Signature = (String, Vec<String>);

/// The header's prototypes `TYPE nv_name(PARAMS);`.
fn header_functions(header: &str) -> BTreeMap<String, Signature> {
    let mut functions = BTreeMap::new();
    for statement in header.split(';') {
        let statement = squash(statement);
        let statement = statement.rsplit_once("#endif").map_or(statement.as_str(), |(_, s)| s).trim();
        let statement = statement.rsplit('#').next().unwrap_or(statement);
        if statement.starts_with("typedef") || !statement.ends_with(')') {
            continue;
        }
        let Some(open) = statement.find('(') else { continue };
        let (ret, name) = split_declaration(&statement[..open]);
        let name = name.trim().to_string();
        if !name.starts_with("nv_") {
            continue;
        }
        let params = statement[open + 1..statement.len() - 1]
            .split(',')
            .map(|p| split_declaration(p).0)
            .filter(|p| p != "void")
            .collect();
        functions.insert(name, (ret, params));
    }
    functions
}

/// The Rust sources' `pub extern "C" fn nv_…` and `pub unsafe extern "C" fn nv_…` definitions.
fn rust_functions(source: &str) -> BTreeMap<String, Signature> {
    let mut functions = BTreeMap::new();
    for (i, _) in source.match_indices("extern \"C\" fn nv_") {
        let line_start = source[..i].rfind('\n').map_or(0, |n| n + 1);
        let prefix = source[line_start..i].trim();
        assert!(
            prefix == "pub" || prefix == "pub unsafe",
            "unexpected `{prefix}` before an extern \"C\" fn at byte {i} of src/ffi/"
        );
        let rest = &source[i + "extern \"C\" fn ".len()..];
        let open = rest.find('(').unwrap();
        let name = rest[..open].to_string();
        let close = open + rest[open..].find(')').unwrap();
        let params = rest[open + 1..close]
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| c_type_of(p.split_once(':').expect("a parameter without a type").1))
            .collect();
        let after = &rest[close + 1..rest[close..].find('{').unwrap() + close];
        let ret = after.trim().strip_prefix("->").map_or("void".to_string(), |t| c_type_of(t.trim()));
        functions.insert(name, (ret, params));
    }
    functions
}

#[test]
fn functions_match_by_name_and_parameters() {
    let header = header_functions(&header());
    let rust = rust_functions(&rust_sources());
    assert!(header.len() > 20 && rust.len() > 20, "the parsers found too little: {header:?} {rust:?}");
    let mut problems = Vec::new();
    for name in header.keys().filter(|n| !rust.contains_key(*n)) {
        problems.push(format!("{name} is declared in the header but not defined in src/ffi/"));
    }
    for name in rust.keys().filter(|n| !header.contains_key(*n)) {
        problems.push(format!("{name} is defined in src/ffi/ but not declared in the header"));
    }
    for (name, (c_ret, c_params)) in &header {
        let Some((r_ret, r_params)) = rust.get(name) else { continue };
        if c_params.len() != r_params.len() {
            problems.push(format!("{name}: {} parameters in the header, {} in Rust", c_params.len(), r_params.len()));
        } else {
            for (i, (c, r)) in c_params.iter().zip(r_params).enumerate() {
                if c != r {
                    problems.push(format!("{name}: parameter {i} is `{c}` in the header, `{r}` in Rust"));
                }
            }
        }
        if c_ret != r_ret {
            problems.push(format!("{name}: returns `{c_ret}` in the header, `{r_ret}` in Rust"));
        }
    }
    assert!(problems.is_empty(), "the header and src/ffi/ disagree:\n{}", problems.join("\n"));
}

/// The names `nv_error_kind_name` gives, by number: every kind Rust has (unknown numbers say `internal`).
fn rust_kind_names() -> BTreeMap<i32, String> {
    let internal = ErrorKind::Internal as i32;
    let unknown = name_of_kind(-1);
    (0..=64).map(|k| (k, name_of_kind(k))).filter(|(k, name)| *name != unknown || *k == internal).collect()
}

fn name_of_kind(kind: i32) -> String {
    let name = nativevnc::ffi::nv_error_kind_name(kind);
    assert!(!name.is_null(), "nv_error_kind_name({kind}) is NULL");
    // SAFETY: a static NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(name) }.to_str().unwrap().to_string()
}

/// The header's `NV_ERROR_NAME` constants with their values as the C compiler sees them.
fn header_kinds(header: &str) -> BTreeMap<i32, String> {
    let names: Vec<&str> =
        header.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| w.starts_with("NV_ERROR_")).collect();
    let body: String = names.iter().map(|n| format!("    printf(\"%d {n}\\n\", (int){n});\n")).collect();
    run_c("kinds", &body)
        .lines()
        .map(|l| {
            let (value, name) = l.split_once(' ').unwrap();
            (value.parse().unwrap(), name.trim_start_matches("NV_ERROR_").to_lowercase())
        })
        .collect()
}

/// The kinds `NativeVNC::Error` documents: the `C<…>` words of its `kind` section.
fn perl_kinds() -> Vec<String> {
    let path = crate_dir().join("../../perl/lib/NativeVNC/Error.pm");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let section = text.split("=head2 kind").nth(1).expect("Error.pm documents no kind").split("=head2").next().unwrap();
    let mut kinds: Vec<String> =
        section.split("C<").skip(1).filter_map(|s| s.split_once('>')).map(|(k, _)| k.to_string()).collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

#[test]
fn error_kinds_have_one_owner() {
    let rust = rust_kind_names();
    assert_eq!(rust.len(), 7, "the kinds nv_error_kind_name names: {rust:?}");
    let header = header_kinds(&header());
    assert_eq!(header, rust, "the header's NV_ERROR_* constants (left) and nv_error_kind_name (right) disagree");
    let mut names: Vec<String> = rust.values().cloned().collect();
    names.sort();
    assert_eq!(perl_kinds(), names, "the kinds NativeVNC::Error documents (left) and Rust's (right) disagree");
}
