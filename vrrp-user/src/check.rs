//! `xvrrpd check`: validate keepalived.conf with keepalived's exit codes, so that it can
//! stand in for `keepalived -t` (0 ok, 4 unreadable, 5 configuration errors, 6 script
//! security violation).

use std::io::Write;
use std::path::PathBuf;

use serde_json::Value;

use crate::config::{self, Loaded, Severity};

pub const DEFAULT_CONFIG: &str = "/etc/keepalived/keepalived.conf";

/// keepalived's exit code when the configuration cannot be read.
pub const EXIT_FATAL: i32 = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckArgs {
    pub file: PathBuf,
    /// Print the resolved configuration with every default.
    pub dump: bool,
    /// JSON on stdout: the resolved configuration with `dump`, else the findings and
    /// exit code (for pipelines that act on them).
    pub json: bool,
}

impl Default for CheckArgs {
    fn default() -> Self {
        Self {
            file: PathBuf::from(DEFAULT_CONFIG),
            dump: false,
            json: false,
        }
    }
}

pub fn run(args: &CheckArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    match config::load(&args.file) {
        Ok(loaded) => report(&loaded, args, out, err),
        Err(e) => {
            // Output errors (a closed pipe) must not change the verdict.
            let _ = writeln!(err, "error: {e}");
            if args.json && !args.dump {
                let report = serde_json::json!({
                    "exit_code": EXIT_FATAL,
                    "error": e.to_string(),
                    "diagnostics": [],
                });
                let _ = writeln!(out, "{report:#}");
            }
            EXIT_FATAL
        }
    }
}

/// Prints the diagnostics (and the dump if asked) and returns the exit code.
pub fn report(loaded: &Loaded, args: &CheckArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    for d in &loaded.diagnostics {
        let label = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let _ = writeln!(err, "{label}: {d}");
    }
    let mut code = loaded.keepalived_exit_code();
    // An error keepalived would merely have corrected is still an error for us.
    if code == 0 && loaded.has_errors() {
        code = 5;
    }
    if args.dump {
        let _ = dump(loaded, args.json, out);
    } else if args.json {
        let report = serde_json::json!({
            "exit_code": code,
            "diagnostics": loaded.diagnostics,
        });
        let _ = writeln!(out, "{report:#}");
    }
    code
}

fn dump(loaded: &Loaded, json: bool, out: &mut dyn Write) -> std::io::Result<()> {
    if json {
        // Straight from the model, so fields keep their declaration order.
        serde_json::to_writer_pretty(&mut *out, &loaded.config).map_err(std::io::Error::other)?;
        return writeln!(out);
    }
    let value = serde_json::to_value(&loaded.config).map_err(std::io::Error::other)?;
    write_text(&value, 0, out)
}

/// The model as indented `key value` lines in keepalived.conf's style: named objects as
/// blocks (`instances VI_1 { ... }`), unnamed list items on one line, `-` for unset.
fn write_text(value: &Value, depth: usize, out: &mut dyn Write) -> std::io::Result<()> {
    let indent = "  ".repeat(depth);
    let Value::Object(map) = value else {
        return writeln!(out, "{indent}{}", scalar(value));
    };
    for (key, v) in map {
        if key == "name" && depth > 0 {
            continue; // already in the block title
        }
        match v {
            Value::Object(inner) if !is_location(v) => {
                writeln!(out, "{indent}{key} {{")?;
                let named_children = inner.values().all(Value::is_object);
                for (child_key, child) in inner.iter().filter(|_| named_children) {
                    writeln!(out, "{indent}  {child_key} {{")?;
                    write_text(child, depth + 2, out)?;
                    writeln!(out, "{indent}  }}")?;
                }
                if !named_children {
                    write_text(v, depth + 1, out)?;
                }
                writeln!(out, "{indent}}}")?;
            }
            Value::Array(items)
                if items
                    .iter()
                    .any(|i| i.get("name").is_some() && i.get("defined_at").is_some()) =>
            {
                for item in items {
                    let title = item.get("name").and_then(Value::as_str).unwrap_or_default();
                    writeln!(out, "{indent}{key} {title} {{")?;
                    write_text(item, depth + 1, out)?;
                    writeln!(out, "{indent}}}")?;
                }
            }
            Value::Array(items) if items.iter().any(Value::is_object) => {
                writeln!(out, "{indent}{key} {{")?;
                for item in items {
                    writeln!(out, "{indent}  {}", one_line(item))?;
                }
                writeln!(out, "{indent}}}")?;
            }
            _ => writeln!(out, "{indent}{key} {}", scalar(v))?,
        }
    }
    Ok(())
}

fn is_location(value: &Value) -> bool {
    value.get("file").is_some()
        && value.get("line").is_some()
        && value.as_object().is_some_and(|m| m.len() == 2)
}

/// `{"address": "10.0.0.1", "dev": null, ...}` as `address 10.0.0.1 ...`, unset fields left out.
fn one_line(value: &Value) -> String {
    match value.as_object() {
        Some(map) => map
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| format!("{k} {}", scalar(v)))
            .collect::<Vec<_>>()
            .join(" "),
        None => scalar(value),
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "-".to_string(),
        Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(" "),
        v if is_location(v) => format!("{}:{}", v["file"].as_str().unwrap_or_default(), v["line"]),
        Value::Object(_) => one_line(value),
        other => other.to_string(),
    }
}
