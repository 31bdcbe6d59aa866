//! `include`: globs relative to the including file, definitions across files, cycles and
//! missing files as fatal errors naming file:line.

#[path = "configs/fake_host.rs"]
mod fake_host;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use fake_host::FakeHost;
use xvrrpd::config::{load_with, ConfigError, Location};

/// A fresh directory holding `files` (relative path, content).
fn tree(files: &[(&str, &str)]) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "xvrrpd-config-includes-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&dir);
    for (path, content) in files {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
    dir
}

const INSTANCE: &str = "vrrp_instance $NAME {\n interface eth0\n virtual_router_id $VRID\n virtual_ipaddress { 10.0.0.$VRID }\n}\n";

#[test]
fn glob_includes_resolve_next_to_the_including_file_in_sorted_order() {
    let dir = tree(&[
        ("etc/main.conf", "$NAME=A\n$VRID=1\ninclude conf.d/*.conf\n"),
        (
            "etc/conf.d/20-b.conf",
            &format!("$NAME=B\n$VRID=2\n{INSTANCE}"),
        ),
        (
            "etc/conf.d/10-a.conf",
            &format!("{INSTANCE}include ../more/c.inc\n"),
        ),
        (
            "etc/more/c.inc",
            "$NAME=C\n$VRID=3\nvrrp_instance C { bogus_keyword }\n",
        ),
    ]);
    let loaded = load_with(&dir.join("etc/main.conf"), &FakeHost).unwrap();
    let names: Vec<&str> = loaded
        .config
        .instances
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    assert_eq!(names, ["A", "B"]);
    assert_eq!(loaded.files.len(), 4);
    // Every finding names the file it is in.
    let bogus = loaded
        .diagnostics
        .iter()
        .find(|d| d.keyword == "bogus_keyword")
        .expect("reported");
    assert_eq!(bogus.file, dir.join("etc/conf.d/../more/c.inc"));
    assert_eq!(bogus.line, 3);
    assert_eq!(
        loaded.config.instances[1].defined_at.file,
        dir.join("etc/conf.d/20-b.conf")
    );
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn absolute_include() {
    let dir = tree(&[("inc.conf", "global_defs { router_id abs }\n")]);
    let main = tree(&[(
        "main.conf",
        &format!("include {}\n", dir.join("inc.conf").display()),
    )]);
    let loaded = load_with(&main.join("main.conf"), &FakeHost).unwrap();
    assert_eq!(loaded.config.global.router_id.as_deref(), Some("abs"));
    fs::remove_dir_all(dir).unwrap();
    fs::remove_dir_all(main).unwrap();
}

#[test]
fn missing_include_is_fatal_and_names_file_and_line() {
    let dir = tree(&[(
        "main.conf",
        "global_defs { router_id x }\ninclude nope.conf\n",
    )]);
    let err = load_with(&dir.join("main.conf"), &FakeHost).unwrap_err();
    match &err {
        ConfigError::MissingInclude { at, path } => {
            assert_eq!(at, &Location::new(dir.join("main.conf"), 2));
            assert_eq!(path, &dir.join("nope.conf"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!(
            "{}:2: include: {} does not exist",
            dir.join("main.conf").display(),
            dir.join("nope.conf").display()
        )
    );
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn glob_matching_nothing_is_only_a_note() {
    let dir = tree(&[("main.conf", "include conf.d/*.conf\n")]);
    let loaded = load_with(&dir.join("main.conf"), &FakeHost).unwrap();
    assert_eq!(loaded.diagnostics.len(), 1);
    assert_eq!(loaded.diagnostics[0].line, 1);
    assert_eq!(loaded.keepalived_exit_code(), 0);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn include_cycle_is_fatal() {
    let dir = tree(&[
        ("a.conf", "include b.conf\n"),
        ("b.conf", "\n\ninclude a.conf\n"),
    ]);
    let err = load_with(&dir.join("a.conf"), &FakeHost).unwrap_err();
    match &err {
        ConfigError::IncludeCycle { at, path } => {
            assert_eq!(at, &Location::new(dir.join("b.conf"), 3));
            assert_eq!(path, &dir.join("a.conf"));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("include cycle"), "{err}");
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn self_include_through_a_glob_is_a_cycle() {
    let dir = tree(&[("main.conf", "include *.conf\n")]);
    let err = load_with(&dir.join("main.conf"), &FakeHost).unwrap_err();
    assert!(matches!(err, ConfigError::IncludeCycle { .. }), "{err:?}");
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn including_the_same_file_twice_is_not_a_cycle() {
    let dir = tree(&[
        ("main.conf", "include x.inc\ninclude x.inc\n"),
        ("x.inc", "global_defs { router_id twice }\n"),
    ]);
    let loaded = load_with(&dir.join("main.conf"), &FakeHost).unwrap();
    assert_eq!(loaded.files.len(), 3);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn unreadable_main_file_is_an_io_error_with_the_path() {
    let err = load_with(Path::new("/nonexistent/keepalived.conf"), &FakeHost).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }));
    assert!(
        err.to_string()
            .starts_with("cannot read /nonexistent/keepalived.conf: "),
        "{err}"
    );
}

#[test]
fn include_of_a_directory_is_an_error_naming_the_include_line() {
    let dir = tree(&[("main.conf", "include sub\n"), ("sub/x", "")]);
    let err = load_with(&dir.join("main.conf"), &FakeHost).unwrap_err();
    assert!(matches!(err, ConfigError::Include { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("main.conf:1: include: cannot read"),
        "{err}"
    );
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn include_without_a_file_name() {
    let dir = tree(&[("main.conf", "include\n")]);
    let loaded = load_with(&dir.join("main.conf"), &FakeHost).unwrap();
    assert_eq!(
        loaded.diagnostics[0].to_string(),
        format!(
            "{}:1: include: missing file name",
            dir.join("main.conf").display()
        )
    );
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn non_utf8_bytes_do_not_stop_reading() {
    let dir = tree(&[]);
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("main.conf"),
        b"global_defs {\n router_id \xff\xfe\n}\n",
    )
    .unwrap();
    let loaded = load_with(&dir.join("main.conf"), &FakeHost).unwrap();
    assert!(loaded.config.global.router_id.is_some());
    fs::remove_dir_all(dir).unwrap();
}
