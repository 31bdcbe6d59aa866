//! keepalived.conf, read as keepalived 2.2.7 reads it: lexer, parser and the VRRP model.
//!
//! `lexer` (text → tokens with file:line, includes, `$` definitions) → `syntax` (keyword
//! tree) → `build` (keywords → model in file order, with keepalived's ranges, defaults
//! and what it reports while reading; the LVS, static and route sections are checked,
//! not modelled) → `validate` (what keepalived checks once everything is read, in its
//! order, then our own advice). Findings are [`Diagnostic`]s, each with how
//! `keepalived -t` treats it ([`Verdict`]); only unreadable input is a [`ConfigError`].

mod build;
mod diagnostic;
mod host;
#[cfg(test)]
mod keyword_coverage;
pub mod keywords;
mod lexer;
mod model;
mod syntax;
mod validate;

use std::path::{Path, PathBuf};

pub use crate::command::DEFAULT_SCRIPT_USER;
pub use diagnostic::{Diagnostic, Location, Severity, Verdict};
pub use host::{AnyHost, Host, InterfaceKind, ScriptFile, SystemHost, UserIds};
pub use lexer::{set_all_config, set_config_id};
pub use model::*;

/// Input that cannot be read at all. Everything else is a [`Diagnostic`].
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{at}: include: cannot read {}: {source}", path.display())]
    Include {
        at: Location,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{at}: include: {} does not exist", path.display())]
    MissingInclude { at: Location, path: PathBuf },
    #[error("{at}: include: {} is already being read (include cycle)", path.display())]
    IncludeCycle { at: Location, path: PathBuf },
    #[error("{at}: include: nested too deeply")]
    IncludeTooDeep { at: Location },
    #[error("{at}: include: bad pattern {pattern}: {reason}")]
    IncludePattern {
        at: Location,
        pattern: String,
        reason: String,
    },
}

/// A configuration with what was found while reading it.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub config: Config,
    pub diagnostics: Vec<Diagnostic>,
    /// Every file read, the main one first.
    pub files: Vec<PathBuf>,
}

impl Loaded {
    /// The daemon must not apply a configuration with errors.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| !d.is_error())
    }

    /// What `keepalived -t` would exit with for this configuration.
    pub fn keepalived_exit_code(&self) -> i32 {
        let worst = self
            .diagnostics
            .iter()
            .map(|d| d.keepalived)
            .max()
            .unwrap_or(Verdict::Silent);
        worst.exit_code()
    }
}

/// Reads `path` (and its includes) and checks it against this host's interfaces and users.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    load_with(path, &SystemHost)
}

pub fn load_with(path: &Path, host: &dyn Host) -> Result<Loaded, ConfigError> {
    let mut diags = diagnostic::Diagnostics::default();
    let lexed = lexer::lex_file(path, &mut diags)?;
    Ok(finish(lexed, diags, host))
}

/// Reads `text` as if it were the file `origin` (includes resolve next to it), assuming
/// every interface and user exists ([`AnyHost`]).
pub fn load_str(text: &str, origin: &Path) -> Result<Loaded, ConfigError> {
    load_str_with(text, origin, &AnyHost)
}

pub fn load_str_with(text: &str, origin: &Path, host: &dyn Host) -> Result<Loaded, ConfigError> {
    let mut diags = diagnostic::Diagnostics::default();
    let lexed = lexer::lex_str(text, origin, &mut diags)?;
    Ok(finish(lexed, diags, host))
}

fn finish(lexed: lexer::Lexed, mut diags: diagnostic::Diagnostics, host: &dyn Host) -> Loaded {
    let nodes = syntax::parse(lexed.lines, &mut diags);
    let mut builder = build::Builder::new(&mut diags, host);
    let mut config = builder.build(&nodes);
    validate::validate(&mut config, &mut builder);
    let mut diagnostics = diags.list;
    // Stable order for people: by file as read, then line.
    let file_rank = |f: &Path| {
        lexed
            .files
            .iter()
            .position(|x| x == f)
            .unwrap_or(usize::MAX)
    };
    diagnostics.sort_by_key(|d| (file_rank(&d.file), d.line));
    Loaded {
        config,
        diagnostics,
        files: lexed.files,
    }
}
