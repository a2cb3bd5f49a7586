//! The spec text `wi import` writes, YAML or TOML, from one small document
//! tree.
//!
//! Why an emitter of our own: the serde serialisers of serde-saphyr and toml
//! write values only. An imported spec needs what a person writes around
//! them: a header, `# wi import: ...` notes above the items it could not
//! decide, commented-out mappings, blank lines between items and keys in the
//! order the README documents. The tree holds no user text unescaped: every
//! string goes through [`yaml_scalar`] or toml's own string encoder.

/// A value of the spec.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(u64),
    Bool(bool),
    /// A list (of strings, or of maps such as `{role, project}`).
    Seq(Vec<Value>),
    /// Keys in the order written.
    Map(Vec<(String, Value)>),
}

impl Value {
    /// A list of strings.
    pub fn strs<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Value {
        Value::Seq(items.into_iter().map(|s| Value::Str(s.into())).collect())
    }
}

/// One item of a list section (a cluster, an account, a mapping).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Item {
    /// Comment lines above the item (without `# `).
    pub comments: Vec<String>,
    pub fields: Vec<(String, Value)>,
    /// Written as comments: what import could not decide.
    pub commented_out: bool,
}

/// A list section: `clusters`, `serviceAccounts`, `mappings`.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub key: String,
    pub items: Vec<Item>,
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Document {
    /// Header comment lines (without `# `).
    pub header: Vec<String>,
    /// Top-level keys before the sections (`version`, `owner`, `defaults`).
    pub top: Vec<(String, Value)>,
    pub sections: Vec<Section>,
}

/// Comment lines at `indent`, each wrapped at about 80 columns (a line
/// starting with a space, a command, is kept as it is).
fn comment_lines(out: &mut String, indent: &str, lines: &[String]) {
    for l in lines {
        if l.is_empty() {
            out.push_str(indent);
            out.push_str("#\n");
            continue;
        }
        if l.starts_with(' ') {
            out.push_str(&format!("{indent}# {l}\n"));
            continue;
        }
        let width = 78usize.saturating_sub(indent.len()).max(40);
        let mut line = String::new();
        for word in l.split(' ') {
            if !line.is_empty() && line.len() + 1 + word.len() > width {
                out.push_str(&format!("{indent}# {line}\n"));
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        out.push_str(&format!("{indent}# {line}\n"));
    }
}

/// A YAML plain scalar when it reads back as the same string, else a
/// double-quoted one (JSON escapes are valid YAML).
pub fn yaml_scalar(s: &str) -> String {
    let reserved = matches!(
        s.to_ascii_lowercase().as_str(),
        "" | "~" | "null" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n"
    );
    let numeric = s.parse::<f64>().is_ok()
        || s.starts_with("0x")
        || s.starts_with("0o")
        || s.starts_with(".inf")
        || s.starts_with(".nan");
    let first = s.chars().next().unwrap_or(' ');
    let needs = reserved
        || numeric
        || "-?:,[]{}#&*!|>'\"%@`".contains(first)
        || s.ends_with(':')
        || s.contains(": ")
        || s.contains(" #")
        || s.trim() != s
        || s.chars().any(|c| c.is_control());
    if needs {
        serde_json::Value::String(s.to_owned()).to_string()
    } else {
        s.to_owned()
    }
}

/// A scalar in a flow list: no flow indicators allowed either.
fn yaml_flow_scalar(s: &str) -> String {
    let plain = yaml_scalar(s);
    if plain == s && s.contains([',', '[', ']', '{', '}']) {
        serde_json::Value::String(s.to_owned()).to_string()
    } else {
        plain
    }
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Seq(_) | Value::Map(_))
}

fn yaml_inline(v: &Value) -> String {
    match v {
        Value::Str(s) => yaml_scalar(s),
        Value::Int(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Seq(items) => format!(
            "[{}]",
            items
                .iter()
                .map(|i| match i {
                    Value::Str(s) => yaml_flow_scalar(s),
                    other => yaml_inline(other),
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Map(fields) => format!(
            "{{{}}}",
            fields
                .iter()
                .map(|(k, v)| format!("{k}: {}", yaml_inline(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Writes `key: value` at `indent` (a block for maps and lists of maps).
fn yaml_field(out: &mut String, indent: usize, first_prefix: &str, key: &str, v: &Value) {
    let pad = " ".repeat(indent);
    let lead = if first_prefix.is_empty() {
        pad.clone()
    } else {
        first_prefix.to_owned()
    };
    match v {
        Value::Seq(items) if items.iter().all(is_scalar) && !items.is_empty() => {
            let flow = format!("{lead}{key}: {}", yaml_inline(v));
            if flow.chars().count() <= 88 {
                out.push_str(&flow);
                out.push('\n');
            } else {
                out.push_str(&format!("{lead}{key}:\n"));
                for i in items {
                    out.push_str(&format!("{pad}  - {}\n", yaml_inline(i)));
                }
            }
        }
        Value::Seq(items) => {
            out.push_str(&format!("{lead}{key}:\n"));
            for i in items {
                match i {
                    Value::Map(fields) => yaml_map_item(out, indent + 2, fields),
                    other => out.push_str(&format!("{pad}  - {}\n", yaml_inline(other))),
                }
            }
        }
        Value::Map(fields) => {
            out.push_str(&format!("{lead}{key}:\n"));
            for (k, v) in fields {
                yaml_field(out, indent + 2, "", k, v);
            }
        }
        scalar => out.push_str(&format!("{lead}{key}: {}\n", yaml_inline(scalar))),
    }
}

/// `- k: v` then the other keys under it, at `indent` (the dash's column).
fn yaml_map_item(out: &mut String, indent: usize, fields: &[(String, Value)]) {
    let dash = format!("{}- ", " ".repeat(indent));
    for (n, (k, v)) in fields.iter().enumerate() {
        if n == 0 {
            yaml_field(out, indent + 2, &dash, k, v);
        } else {
            yaml_field(out, indent + 2, "", k, v);
        }
    }
}

/// Comments out every line of `text` at the item's column `indent`, so the
/// item reads back as it was when uncommented.
fn commented(text: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mut out = String::new();
    for line in text.lines() {
        let body = line.strip_prefix(pad.as_str()).unwrap_or(line);
        out.push_str(&format!("{pad}# {body}\n"));
    }
    out
}

/// The document as YAML.
pub fn yaml(doc: &Document) -> String {
    let mut out = String::new();
    comment_lines(&mut out, "", &doc.header);
    for (k, v) in &doc.top {
        if matches!(v, Value::Map(_)) {
            out.push('\n');
        }
        yaml_field(&mut out, 0, "", k, v);
    }
    for section in doc.sections.iter().filter(|s| !s.items.is_empty()) {
        out.push('\n');
        out.push_str(&format!("{}:\n", section.key));
        for (n, item) in section.items.iter().enumerate() {
            if n > 0 {
                out.push('\n');
            }
            comment_lines(&mut out, "  ", &item.comments);
            let mut text = String::new();
            yaml_map_item(&mut text, 2, &item.fields);
            out.push_str(&if item.commented_out {
                commented(&text, 2)
            } else {
                text
            });
        }
    }
    out
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn toml_inline(v: &Value) -> String {
    match v {
        Value::Str(s) => toml_string(s),
        Value::Int(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Seq(items) => format!(
            "[{}]",
            items.iter().map(toml_inline).collect::<Vec<_>>().join(", ")
        ),
        Value::Map(fields) => format!(
            "{{ {} }}",
            fields
                .iter()
                .map(|(k, v)| format!("{k} = {}", toml_inline(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn toml_field(out: &mut String, key: &str, v: &Value) {
    let line = format!("{key} = {}", toml_inline(v));
    match v {
        Value::Seq(items) if line.chars().count() > 88 || !items.iter().all(is_scalar) => {
            out.push_str(&format!("{key} = [\n"));
            for i in items {
                out.push_str(&format!("  {},\n", toml_inline(i)));
            }
            out.push_str("]\n");
        }
        _ => {
            out.push_str(&line);
            out.push('\n');
        }
    }
}

/// The document as TOML (the same keys; tables for maps, arrays of tables
/// for the sections).
pub fn toml(doc: &Document) -> String {
    let mut out = String::new();
    comment_lines(&mut out, "", &doc.header);
    let (tables, scalars): (Vec<_>, Vec<_>) = doc
        .top
        .iter()
        .partition(|(_, v)| matches!(v, Value::Map(_)));
    for (k, v) in scalars {
        toml_field(&mut out, k, v);
    }
    for (k, v) in tables {
        if let Value::Map(fields) = v {
            out.push_str(&format!("\n[{k}]\n"));
            for (k, v) in fields {
                toml_field(&mut out, k, v);
            }
        }
    }
    for section in &doc.sections {
        for item in &section.items {
            out.push('\n');
            comment_lines(&mut out, "", &item.comments);
            let mut text = format!("[[{}]]\n", section.key);
            for (k, v) in &item.fields {
                toml_field(&mut text, k, v);
            }
            out.push_str(&if item.commented_out {
                commented(&text, 0)
            } else {
                text
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_scalars_are_quoted_only_where_needed() {
        assert_eq!(yaml_scalar("payments-api"), "payments-api");
        assert_eq!(
            yaml_scalar("roles/cloudsql.client"),
            "roles/cloudsql.client"
        );
        assert_eq!(
            yaml_scalar("a@b.iam.gserviceaccount.com"),
            "a@b.iam.gserviceaccount.com"
        );
        assert_eq!(yaml_scalar("yes"), "\"yes\"");
        assert_eq!(yaml_scalar("123"), "\"123\"");
        assert_eq!(yaml_scalar("Reads: things"), "\"Reads: things\"");
        assert_eq!(yaml_scalar("# not a comment"), "\"# not a comment\"");
        assert_eq!(yaml_scalar("*"), "\"*\"");
        assert_eq!(yaml_scalar("tab\there"), "\"tab\\there\"");
    }

    #[test]
    fn strings_read_back_unchanged_in_both_formats() {
        let tricky = [
            "plain",
            "yes",
            "1.5",
            "a: b",
            "x #y",
            " lead",
            "\"q\"",
            "[x]",
            "a,b",
            "ünï",
            "back\\slash",
            "-dash",
            "",
        ];
        let doc = Document {
            header: vec!["h".into()],
            top: vec![("version".into(), Value::Int(1))],
            sections: vec![Section {
                key: "items".into(),
                items: vec![Item {
                    fields: vec![
                        ("one".into(), Value::Str(tricky[1].into())),
                        ("all".into(), Value::strs(tricky)),
                    ],
                    ..Item::default()
                }],
            }],
        };
        let y: serde_json::Value = serde_saphyr::from_str(&yaml(&doc)).unwrap();
        let t: toml::Value = toml::from_str(&toml(&doc)).unwrap();
        let t = serde_json::to_value(t).unwrap();
        for v in [y, t] {
            assert_eq!(v["items"][0]["one"], "yes");
            let all: Vec<&str> = v["items"][0]["all"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap())
                .collect();
            assert_eq!(all, tricky);
        }
    }

    #[test]
    fn roles_on_other_resources_are_maps_in_both_formats() {
        let roles = Value::Seq(vec![
            Value::Str("roles/cloudsql.client".into()),
            Value::Map(vec![
                (
                    "role".into(),
                    Value::Str("roles/storage.objectViewer".into()),
                ),
                ("project".into(), Value::Str("wi-data".into())),
            ]),
        ]);
        let doc = Document {
            header: Vec::new(),
            top: vec![("version".into(), Value::Int(1))],
            sections: vec![Section {
                key: "mappings".into(),
                items: vec![Item {
                    fields: vec![
                        ("ksa".into(), Value::Str("ledger".into())),
                        ("roles".into(), roles),
                    ],
                    ..Item::default()
                }],
            }],
        };
        let y = yaml(&doc);
        assert!(
            y.contains("    roles:\n      - roles/cloudsql.client\n      - role: roles/storage.objectViewer\n        project: wi-data\n"),
            "{y}"
        );
        let t = toml(&doc);
        assert!(
            t.contains("roles = [\n  \"roles/cloudsql.client\",\n  { role = \"roles/storage.objectViewer\", project = \"wi-data\" },\n]\n"),
            "{t}"
        );
        let y: serde_json::Value = serde_saphyr::from_str(&y).unwrap();
        let t = serde_json::to_value(toml::from_str::<toml::Value>(&t).unwrap()).unwrap();
        assert_eq!(y, t);
        assert_eq!(y["mappings"][0]["roles"][1]["project"], "wi-data");
    }
}
