//! Findings about a configuration, each tied to the file and line it came from.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// Where a token, keyword or object was written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Location {
    pub file: PathBuf,
    pub line: u32,
}

impl Location {
    pub fn new(file: impl Into<PathBuf>, line: u32) -> Self {
        Self {
            file: file.into(),
            line,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Severity {
    /// The configuration cannot be applied as written; the daemon refuses it.
    Error,
    /// Suspicious or corrected by a default; the daemon runs with it.
    Warning,
}

/// How `keepalived -t` treats the same finding. `xvrrpd check` derives its exit code from
/// this so that it can replace `keepalived -t` in deployment pipelines.
///
/// Ordered as keepalived ranks them: it keeps the *later* kind in its own list, so a
/// configuration error (exit 5) outranks an unusable interface or file (exit 4) and a
/// script security violation (exit 6) outranks both. Its own comment calls that list
/// "decreasing order of severity"; the code does the opposite, and `-t` exits accordingly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Verdict {
    /// keepalived says nothing: our own advice (exit 0 unless something else fails).
    Silent,
    /// keepalived cannot use the configuration: a file or interface is missing (exit 4).
    Fatal,
    /// keepalived reports a configuration error (exit 5).
    ConfigError,
    /// keepalived's "SECURITY VIOLATION" (exit 6).
    Security,
    /// A keyword without the value keepalived needs: it stops reading there (exit 2).
    MissingParameter,
}

impl Verdict {
    /// `keepalived -t` exit code for a configuration whose worst finding is `self`.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Silent => 0,
            Verdict::Fatal => 4,
            Verdict::ConfigError => 5,
            Verdict::Security => 6,
            Verdict::MissingParameter => 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    pub line: u32,
    pub keyword: String,
    pub message: String,
    pub keepalived: Verdict,
    /// Whether keepalived's own message names the file:line: it does for what it finds
    /// while reading a keyword, not for what its checks after reading find.
    pub keepalived_located: bool,
}

impl Diagnostic {
    pub fn location(&self) -> Location {
        Location::new(self.file.clone(), self.line)
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.keyword,
            self.message
        )
    }
}

/// Collects findings while a configuration is read.
#[derive(Debug, Default)]
pub(crate) struct Diagnostics {
    pub(crate) list: Vec<Diagnostic>,
    /// keepalived stopped before this point (a check that ends its run), so what follows
    /// is xvrrpd's finding only and does not count towards keepalived's exit code.
    pub(crate) keepalived_stopped: bool,
}

impl Diagnostics {
    fn add(
        &mut self,
        severity: Severity,
        keepalived: Verdict,
        located: bool,
        at: &Location,
        keyword: &str,
        message: impl Into<String>,
    ) {
        let keepalived = if self.keepalived_stopped {
            Verdict::Silent
        } else {
            keepalived
        };
        self.list.push(Diagnostic {
            severity,
            file: at.file.clone(),
            line: at.line,
            keyword: keyword.to_string(),
            message: message.into(),
            keepalived,
            keepalived_located: located && keepalived != Verdict::Silent,
        });
    }

    /// A finding keepalived reports while reading the keyword at `at` (with its file:line).
    pub(crate) fn push(
        &mut self,
        severity: Severity,
        keepalived: Verdict,
        at: &Location,
        keyword: &str,
        message: impl Into<String>,
    ) {
        self.add(severity, keepalived, true, at, keyword, message);
    }

    /// A finding keepalived reports only once everything is read, without a file:line.
    pub(crate) fn push_unlocated(
        &mut self,
        severity: Severity,
        keepalived: Verdict,
        at: &Location,
        keyword: &str,
        message: impl Into<String>,
    ) {
        self.add(severity, keepalived, false, at, keyword, message);
    }

    /// An error keepalived also reports.
    pub(crate) fn error(&mut self, at: &Location, keyword: &str, message: impl Into<String>) {
        self.push(Severity::Error, Verdict::ConfigError, at, keyword, message);
    }

    /// A warning keepalived also reports (so `keepalived -t` exits 5).
    pub(crate) fn warn(&mut self, at: &Location, keyword: &str, message: impl Into<String>) {
        self.push(
            Severity::Warning,
            Verdict::ConfigError,
            at,
            keyword,
            message,
        );
    }

    /// An error keepalived reports in its checks after reading (no file:line there).
    pub(crate) fn error_after(&mut self, at: &Location, keyword: &str, message: impl Into<String>) {
        self.push_unlocated(Severity::Error, Verdict::ConfigError, at, keyword, message);
    }

    /// A warning keepalived reports in its checks after reading (no file:line there).
    pub(crate) fn warn_after(&mut self, at: &Location, keyword: &str, message: impl Into<String>) {
        self.push_unlocated(
            Severity::Warning,
            Verdict::ConfigError,
            at,
            keyword,
            message,
        );
    }

    /// A keyword without its value: keepalived stops reading with exit 2; we go on and
    /// report the rest too.
    pub(crate) fn missing_parameter(&mut self, at: &Location, keyword: &str) {
        self.push(
            Severity::Error,
            Verdict::MissingParameter,
            at,
            keyword,
            "missing a parameter (keepalived stops reading here, exit 2)",
        );
    }

    /// Our own advice, which keepalived does not give.
    pub(crate) fn lint(&mut self, at: &Location, keyword: &str, message: impl Into<String>) {
        self.push(Severity::Warning, Verdict::Silent, at, keyword, message);
    }
}
