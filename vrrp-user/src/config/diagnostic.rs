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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Verdict {
    /// keepalived says nothing: our own advice (exit 0 unless something else fails).
    Silent,
    /// keepalived reports a configuration error (exit 5).
    ConfigError,
    /// keepalived's "SECURITY VIOLATION" (exit 6).
    Security,
    /// keepalived cannot read the configuration (exit 4).
    Fatal,
}

impl Verdict {
    /// `keepalived -t` exit code for a configuration whose worst finding is `self`.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Silent => 0,
            Verdict::ConfigError => 5,
            Verdict::Security => 6,
            Verdict::Fatal => 4,
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
}

impl Diagnostics {
    pub(crate) fn push(
        &mut self,
        severity: Severity,
        keepalived: Verdict,
        at: &Location,
        keyword: &str,
        message: impl Into<String>,
    ) {
        self.list.push(Diagnostic {
            severity,
            file: at.file.clone(),
            line: at.line,
            keyword: keyword.to_string(),
            message: message.into(),
            keepalived,
            keepalived_located: keepalived != Verdict::Silent,
        });
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
        self.push(severity, keepalived, at, keyword, message);
        if let Some(last) = self.list.last_mut() {
            last.keepalived_located = false;
        }
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

    /// Our own advice, which keepalived does not give.
    pub(crate) fn lint(&mut self, at: &Location, keyword: &str, message: impl Into<String>) {
        self.push(Severity::Warning, Verdict::Silent, at, keyword, message);
    }
}
