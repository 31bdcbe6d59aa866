//! Turns keepalived.conf text into lines of tokens, as keepalived reads it: `#`/`!`
//! comments, double-quoted strings, `{`/`}` as tokens of their own even when glued to a
//! word, `$NAME=value` definitions with `$NAME`/`${NAME}` substitution, `@id` lines and
//! `include` with globs relative to the including file. Every token keeps its file+line.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{
    atomic::{AtomicBool, Ordering},
    OnceLock,
};

use super::diagnostic::{Diagnostics, Location};
use super::ConfigError;

/// Nesting deeper than this is a cycle the path comparison missed (e.g. via /proc).
const MAX_INCLUDE_DEPTH: usize = 32;
/// Definitions may refer to each other; stop runaway self-references.
const MAX_SUBSTITUTION_DEPTH: usize = 16;
/// `$A=$A $A` doubles at each level: bound the text one line may expand to.
const MAX_EXPANDED_LINE: usize = 64 * 1024;
/// The definitions of one `~SEQ`/`~LST` repetition.
type Definitions = Vec<(String, String)>;

/// `~SEQ`/`~LST` repetitions of one line (keepalived's own example makes 65024).
const MAX_REPETITIONS: usize = 1 << 20;

/// keepalived's `-i/--config-id`, for every later load (reloads included).
static CONFIG_ID: OnceLock<String> = OnceLock::new();
/// keepalived's `-e/--all-config`: an include pattern matching no file is an error.
static ALL_CONFIG: AtomicBool = AtomicBool::new(false);

/// Sets the config id `@ID` lines are matched against (default: the host
/// name up to its first dot). Only the first call counts.
pub fn set_config_id(id: &str) {
    let _ = CONFIG_ID.set(id.to_owned());
}

pub fn set_all_config(on: bool) {
    ALL_CONFIG.store(on, Ordering::Relaxed);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Word,
    Quoted,
    Open,
    Close,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub kind: TokenKind,
    pub at: Location,
}

/// The tokens of one logical line; keepalived keywords take their arguments from the
/// line they are on.
pub type Line = Vec<Token>;

pub(crate) struct Lexed {
    pub lines: Vec<Line>,
    /// Every file read, in order (the main file first).
    pub files: Vec<PathBuf>,
}

pub(crate) fn lex_file(path: &Path, diags: &mut Diagnostics) -> Result<Lexed, ConfigError> {
    let mut lexer = Lexer::new(diags);
    lexer.read_file(path, None)?;
    Ok(lexer.finish())
}

/// Lexes `text` as if it had been read from `origin` (includes resolve next to it).
pub(crate) fn lex_str(
    text: &str,
    origin: &Path,
    diags: &mut Diagnostics,
) -> Result<Lexed, ConfigError> {
    let mut lexer = Lexer::new(diags);
    lexer.files.push(origin.to_path_buf());
    lexer.read_text(text, origin)?;
    Ok(lexer.finish())
}

struct Lexer<'d> {
    diags: &'d mut Diagnostics,
    definitions: HashMap<String, String>,
    /// Canonical paths of the files being read, outermost first: a repeat is a cycle.
    open_files: Vec<PathBuf>,
    files: Vec<PathBuf>,
    lines: Vec<Line>,
    config_id: Option<String>,
    /// `${_PWD}`: the directory of the file being read.
    current_dir: String,
}

impl<'d> Lexer<'d> {
    fn new(diags: &'d mut Diagnostics) -> Self {
        // keepalived's default config id is the host name (`-i` overrides it).
        let config_id = CONFIG_ID.get().cloned().or_else(|| {
            fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().split('.').next().unwrap_or_default().to_string())
        });
        Self {
            diags,
            definitions: HashMap::new(),
            open_files: Vec::new(),
            files: Vec::new(),
            lines: Vec::new(),
            config_id,
            current_dir: String::new(),
        }
    }

    fn finish(self) -> Lexed {
        Lexed {
            lines: self.lines,
            files: self.files,
        }
    }

    fn read_file(
        &mut self,
        path: &Path,
        included_at: Option<&Location>,
    ) -> Result<(), ConfigError> {
        let io_error = |source| match included_at {
            Some(at) => ConfigError::Include {
                at: at.clone(),
                path: path.to_path_buf(),
                source,
            },
            None => ConfigError::Io {
                path: path.to_path_buf(),
                source,
            },
        };
        let canonical = fs::canonicalize(path).map_err(io_error)?;
        if self.open_files.contains(&canonical) {
            return Err(ConfigError::IncludeCycle {
                at: included_at
                    .cloned()
                    .unwrap_or_else(|| Location::new(path, 0)),
                path: path.to_path_buf(),
            });
        }
        if self.open_files.len() >= MAX_INCLUDE_DEPTH {
            return Err(ConfigError::IncludeTooDeep {
                at: included_at
                    .cloned()
                    .unwrap_or_else(|| Location::new(path, 0)),
            });
        }
        let bytes = fs::read(path).map_err(io_error)?;
        // keepalived reads bytes; a stray non-UTF-8 byte must not make the file unreadable.
        let text = String::from_utf8_lossy(&bytes);
        self.files.push(path.to_path_buf());
        self.open_files.push(canonical);
        let result = self.read_text(&text, path);
        self.open_files.pop();
        result
    }

    fn read_text(&mut self, text: &str, file: &Path) -> Result<(), ConfigError> {
        let dir = pwd(file);
        let mut raw_lines = text.lines().enumerate();
        while let Some((index, raw)) = raw_lines.next() {
            let at = Location::new(file, u32::try_from(index + 1).unwrap_or(u32::MAX));
            let Some(raw) = self.apply_config_id(raw) else {
                continue;
            };
            let uncommented = strip_comment(raw);
            if let Some((name, value)) = split_definition(uncommented) {
                // A trailing backslash continues a definition on the next line.
                let mut value = value.to_string();
                while value.ends_with('\\') {
                    value.pop();
                    match raw_lines.next() {
                        Some((_, next)) => {
                            value.push('\n');
                            value.push_str(strip_comment(next).trim());
                        }
                        None => break,
                    }
                }
                self.definitions
                    .insert(name.to_string(), value.trim().to_string());
                continue;
            }
            // An include read in between changed it.
            self.current_dir.clone_from(&dir);
            self.emit(uncommented, &at, file, 0)?;
        }
        Ok(())
    }

    /// One line after comments and definitions: `~SEQ`/`~LST` repeat the rest of it,
    /// else it is substituted, tokenized and kept (or an include is read).
    fn emit(
        &mut self,
        line: &str,
        at: &Location,
        file: &Path,
        depth: usize,
    ) -> Result<(), ConfigError> {
        let trimmed = line.trim_start();
        if trimmed.starts_with("~SEQ") || trimmed.starts_with("~LST") {
            if depth >= MAX_SUBSTITUTION_DEPTH {
                self.diags
                    .warn(at, "~SEQ", "sequence and list blocks nested too deeply");
                return Ok(());
            }
            let Some((runs, rest)) = self.repetitions(trimmed, at) else {
                return Ok(());
            };
            if runs.len() > MAX_REPETITIONS {
                self.diags.warn(
                    at,
                    &trimmed[..4],
                    format!("more than {MAX_REPETITIONS} repetitions; line skipped"),
                );
                return Ok(());
            }
            for run in runs {
                for (name, value) in run {
                    self.definitions.insert(name, value);
                }
                self.emit(&rest, at, file, depth + 1)?;
            }
            return Ok(());
        }
        let expanded = self.substitute(line, at);
        for piece in expanded.split('\n') {
            let tokens = tokenize(piece, at, self.diags);
            if tokens.is_empty() {
                continue;
            }
            if tokens[0].kind == TokenKind::Word && tokens[0].text == "include" {
                self.include(&tokens, file)?;
            } else {
                self.lines.push(tokens);
            }
        }
        Ok(())
    }

    /// `~SEQ(var, [start,] [step,] end) rest`, `~SEQx(...)` (hexadecimal values) or
    /// `~LST(var, v1, v2, ...)` / `~LST({a, b}, {1, 2}, {3, 4})`: the definitions of each
    /// repetition, and the rest of the line. Reported at `at` when malformed, as keepalived
    /// does ("Invalid ~SEQ definition").
    fn repetitions(&mut self, line: &str, at: &Location) -> Option<(Vec<Definitions>, String)> {
        let keyword = &line[..4];
        let (hex, body) = match line[4..].strip_prefix('x') {
            Some(rest) if keyword == "~SEQ" => (true, rest),
            _ => (false, &line[4..]),
        };
        let invalid = |this: &mut Self| {
            this.diags.warn(
                at,
                keyword,
                format!("invalid {keyword} specification '{line}'"),
            );
            None
        };
        let Some(open) = body.trim_start().strip_prefix('(') else {
            return invalid(self);
        };
        // The parameters end at the first ')' outside braces.
        let mut nesting = 0;
        let mut close = None;
        for (i, c) in open.char_indices() {
            match c {
                '{' => nesting += 1,
                '}' => nesting -= 1,
                ')' if nesting == 0 => {
                    close = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let Some(close) = close else {
            return invalid(self);
        };
        let params = self.substitute(&open[..close], at);
        let rest = open[close + 1..].trim_start().to_string();
        if keyword == "~LST" {
            let Some(runs) = list_block(&params) else {
                return invalid(self);
            };
            return Some((runs, rest));
        }
        let mut parts = params.split(',').map(str::trim);
        let var = parts.next().filter(|v| !v.is_empty())?.to_string();
        let numbers: Option<Vec<i64>> = parts.map(parse_c_long).collect();
        let Some(numbers) = numbers else {
            return invalid(self);
        };
        let (start, step, end) = match numbers[..] {
            [end] => (
                if end < 0 { -1 } else { 1 },
                if end < 1 { -1 } else { 1 },
                end,
            ),
            [start, end] => (start, if start <= end { 1 } else { -1 }, end),
            [start, step, end] => {
                if step == 0 || (start < end && step < 0) || (start > end && step > 0) {
                    self.diags
                        .warn(at, keyword, format!("invalid ~SEQ values '{line}'"));
                    return None;
                }
                (start, step, end)
            }
            _ => return invalid(self),
        };
        if hex && (start < 0 || end < 0) {
            self.diags.warn(
                at,
                keyword,
                format!("~SEQx is only valid for positive numbers '{line}'"),
            );
            return None;
        }
        let mut runs = Vec::new();
        let mut next = start;
        while (step > 0 && next <= end) || (step < 0 && next >= end) {
            let value = if hex {
                format!("{next:x}")
            } else {
                next.to_string()
            };
            runs.push(vec![(var.clone(), value)]);
            if runs.len() > MAX_REPETITIONS {
                break;
            }
            next += step;
        }
        Some((runs, rest))
    }

    /// `@ID line` is read only on the node whose config id is ID; `@^ID line` everywhere else.
    fn apply_config_id<'a>(&self, raw: &'a str) -> Option<&'a str> {
        let trimmed = raw.trim_start();
        let Some(rest) = trimmed.strip_prefix('@') else {
            return Some(raw);
        };
        let (negated, rest) = match rest.strip_prefix('^') {
            Some(rest) => (true, rest),
            None => (false, rest),
        };
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (id, line) = rest.split_at(end);
        let matches = self.config_id.as_deref() == Some(id);
        (matches != negated).then_some(line)
    }

    fn include(&mut self, tokens: &[Token], file: &Path) -> Result<(), ConfigError> {
        let at = tokens[0].at.clone();
        let Some(pattern) = tokens.get(1) else {
            self.diags.error(&at, "include", "missing file name");
            return Ok(());
        };
        let base = file.parent().unwrap_or_else(|| Path::new(""));
        let full = base.join(&pattern.text);
        if !pattern.text.contains(['*', '?', '[']) {
            if !full.exists() {
                return Err(ConfigError::MissingInclude { at, path: full });
            }
            return self.read_file(&full, Some(&at));
        }
        let full_text = full.to_string_lossy().into_owned();
        let paths = glob::glob(&full_text).map_err(|e| ConfigError::IncludePattern {
            at: at.clone(),
            pattern: full_text.clone(),
            reason: e.msg.to_string(),
        })?;
        let mut matched: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
        matched.sort();
        if matched.is_empty() {
            // keepalived only notes this (and exits 0) unless run with -e.
            let problem = format!("{full_text} matches no files");
            if ALL_CONFIG.load(Ordering::Relaxed) {
                self.diags.error(&at, "include", problem);
            } else {
                self.diags.lint(&at, "include", problem);
            }
        }
        for path in matched {
            self.read_file(&path, Some(&at))?;
        }
        Ok(())
    }

    /// Replaces `$NAME`/`${NAME}`; undefined names stay as written.
    fn substitute(&mut self, text: &str, at: &Location) -> String {
        let mut budget = MAX_EXPANDED_LINE;
        match self.expand(text, at, 0, &mut budget) {
            Ok(expanded) => expanded,
            Err(problem) => {
                self.diags.error(at, "$", problem);
                String::new()
            }
        }
    }

    /// keepalived's pre-defined definitions (a written definition of the same name wins):
    /// `${_PWD}` the current file's directory, `${_INSTANCE}` the config id,
    /// `${_RANDOM [MIN [MAX]]}`, `${_HASH}` (#) and `${_BANG}` (!).
    fn predefined(&self, name: &str) -> Option<String> {
        let mut words = name.split_whitespace();
        match (words.next()?, words.next(), words.next()) {
            ("_PWD", None, _) => Some(self.current_dir.clone()),
            ("_INSTANCE", None, _) => Some(self.config_id.clone().unwrap_or_default()),
            ("_HASH", None, _) => Some("#".into()),
            ("_BANG", None, _) => Some("!".into()),
            ("_RANDOM", min, max) => {
                let min: u64 = min.map_or(Some(0), |m| m.parse().ok())?;
                let max: u64 = max.map_or(Some(32767), |m| m.parse().ok())?;
                (min <= max).then(|| (min + random() % (max - min + 1)).to_string())
            }
            _ => None,
        }
    }

    /// `budget` is shared by the whole line so that `$A=$A $A` chains stop early.
    fn expand(
        &mut self,
        text: &str,
        at: &Location,
        depth: usize,
        budget: &mut usize,
    ) -> Result<String, String> {
        if !text.contains('$') {
            return Ok(text.to_string());
        }
        if depth >= MAX_SUBSTITUTION_DEPTH {
            return Err("definitions refer to each other without end".into());
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(dollar) = rest.find('$') {
            out.push_str(&rest[..dollar]);
            let after = &rest[dollar + 1..];
            let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
                match braced.find('}') {
                    Some(end) => (&braced[..end], end + 2),
                    None => ("", 0),
                }
            } else {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], end)
            };
            let value = self
                .definitions
                .get(name)
                .cloned()
                .or_else(|| self.predefined(name));
            match value {
                Some(value) if !name.is_empty() => {
                    let expanded = self.expand(&value, at, depth + 1, budget)?;
                    *budget = budget.checked_sub(expanded.len()).ok_or_else(|| {
                        format!("${name} expands to more than {MAX_EXPANDED_LINE} bytes")
                    })?;
                    out.push_str(&expanded);
                }
                _ => {
                    if !name.is_empty() {
                        self.diags.lint(
                            at,
                            "$",
                            format!("${name} is not defined; left as written"),
                        );
                    }
                    out.push('$');
                    out.push_str(&after[..consumed]);
                }
            }
            rest = &after[consumed..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// The absolute directory of `file`, as keepalived's `getcwd` after it changes into the
/// directory of each file it reads.
fn pwd(file: &Path) -> String {
    let dir = file.parent().unwrap_or_else(|| Path::new("."));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    fs::canonicalize(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

/// A number as C's `strtol(.., 0)` reads it: decimal, 0x hexadecimal or 0 octal.
fn parse_c_long(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let value = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        i64::from_str_radix(hex, 16).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        i64::from_str_radix(&digits[1..], 8).ok()?
    } else {
        digits.parse().ok()?
    };
    Some(if negative { -value } else { value })
}

/// `~LST`'s parameters: `VAR, v1, v2` or `{A, B}, {1, 2}, {3, 4}`.
fn list_block(params: &str) -> Option<Vec<Definitions>> {
    let params = params.trim();
    let (names, values): (Vec<String>, Vec<Vec<String>>) =
        if let Some(braced) = params.strip_prefix('{') {
            let (names, rest) = braced.split_once('}')?;
            let names: Vec<String> = names.split(',').map(|n| n.trim().to_string()).collect();
            let mut values = Vec::new();
            let mut rest = rest.trim_start();
            while let Some(after) = rest.strip_prefix(',') {
                let group = after.trim_start().strip_prefix('{')?;
                let (set, more) = group.split_once('}')?;
                values.push(set.split(',').map(|v| v.trim().to_string()).collect());
                rest = more.trim_start();
            }
            if !rest.is_empty() {
                return None;
            }
            (names, values)
        } else {
            let mut parts = params.split(',').map(|p| p.trim().to_string());
            let name = parts.next()?;
            (vec![name], parts.map(|v| vec![v]).collect())
        };
    if names.iter().any(|n| n.is_empty())
        || values.is_empty()
        || values.iter().any(|v| v.len() != names.len())
    {
        return None;
    }
    Some(
        values
            .into_iter()
            .map(|set| names.iter().cloned().zip(set).collect())
            .collect(),
    )
}

/// A random number for `${_RANDOM}` (keepalived uses `random()`; no sequence is promised).
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    h.finish()
}

/// Cuts a `#` or `!` comment that is not inside double quotes.
fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '#' | '!' if !quoted => return &line[..i],
            _ => {}
        }
    }
    line
}

/// `$NAME=value` (spaces allowed around `=`).
fn split_definition(line: &str) -> Option<(&str, &str)> {
    let rest = line.trim_start().strip_prefix('$')?;
    let (name, value) = rest.split_once('=')?;
    let name = name.trim_end();
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    valid.then_some((name, value))
}

fn tokenize(line: &str, at: &Location, diags: &mut Diagnostics) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = line.chars().peekable();
    let token = |text: String, kind| Token {
        text,
        kind,
        at: at.clone(),
    };
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            // Comments were cut before substitution: a `#` or `!` here came from
            // `${_HASH}`/`${_BANG}` and is text, as in keepalived.
            '{' | '}' => {
                chars.next();
                let kind = if c == '{' {
                    TokenKind::Open
                } else {
                    TokenKind::Close
                };
                tokens.push(token(c.to_string(), kind));
            }
            '"' => {
                chars.next();
                let mut text = String::new();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => match chars.peek() {
                            Some(&next @ ('"' | '\\')) => {
                                text.push(next);
                                chars.next();
                            }
                            _ => text.push('\\'),
                        },
                        c => text.push(c),
                    }
                }
                if !closed {
                    diags.warn(at, "\"", "missing closing quote");
                }
                tokens.push(token(text, TokenKind::Quoted));
            }
            _ => {
                let mut text = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '{' | '}' | '"') {
                        break;
                    }
                    text.push(c);
                    chars.next();
                }
                tokens.push(token(text, TokenKind::Word));
            }
        }
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex(text: &str) -> (Vec<Vec<String>>, Diagnostics) {
        let mut diags = Diagnostics::default();
        let lexed = lex_str(text, Path::new("/nonexistent/test.conf"), &mut diags).unwrap();
        let lines = lexed
            .lines
            .iter()
            .map(|l| l.iter().map(|t| t.text.clone()).collect())
            .collect();
        (lines, diags)
    }

    #[test]
    fn braces_split_from_words_and_comments_dropped() {
        let (lines, _) = lex("vrrp_instance VI_1{ # c\n  state MASTER ! c\n}\n");
        assert_eq!(
            lines,
            vec![
                vec!["vrrp_instance", "VI_1", "{"],
                vec!["state", "MASTER"],
                vec!["}"]
            ]
        );
    }

    #[test]
    fn quotes_keep_spaces_and_comment_characters() {
        let (lines, _) = lex("notify \"/bin/echo a # b ! c\" x\n");
        assert_eq!(lines, vec![vec!["notify", "/bin/echo a # b ! c", "x"]]);
    }

    #[test]
    fn definitions_substitute_plain_and_braced() {
        let (lines, _) = lex("$IF=eth0\n$B=x { y }\ninterface $IF ${IF}.5\n$B\n");
        assert_eq!(
            lines,
            vec![
                vec!["interface", "eth0", "eth0.5"],
                vec!["x", "{", "y", "}"]
            ]
        );
    }

    #[test]
    fn multiline_definition_becomes_several_lines() {
        let (lines, _) = lex("$V=a 1 \\\nb 2\n$V\n");
        assert_eq!(lines, vec![vec!["a", "1"], vec!["b", "2"]]);
    }

    #[test]
    fn undefined_variable_is_kept_with_a_lint() {
        let (lines, diags) = lex("x $NOPE\n");
        assert_eq!(lines, vec![vec!["x", "$NOPE"]]);
        assert_eq!(diags.list.len(), 1);
    }

    #[test]
    fn self_referencing_definition_stops() {
        let (_, diags) = lex("$A=$A$A\nx $A\n");
        assert!(diags.list.iter().any(|d| d.is_error()));
    }

    #[test]
    fn exponential_definitions_are_cut_off() {
        let (lines, diags) = lex("$A=x x x x\n$B=$A $A $A $A\n$C=$B $B $B $B\n$D=$C $C $C $C\n$E=$D $D $D $D\n$F=$E $E $E $E\n$G=$F $F $F $F\n$H=$G $G $G $G\ny $H\n");
        assert!(lines.is_empty());
        assert!(diags.list.iter().any(|d| d.is_error()));
    }

    #[test]
    fn config_id_lines() {
        let (lines, _) = lex("@no-such-host-id a 1\n@^no-such-host-id b 2\n");
        assert_eq!(lines, vec![vec!["b", "2"]]);
    }

    #[test]
    fn unterminated_quote_warns() {
        let (lines, diags) = lex("notify \"/bin/x\n");
        assert_eq!(lines, vec![vec!["notify", "/bin/x"]]);
        assert_eq!(diags.list.len(), 1);
    }

    #[test]
    fn lines_are_numbered_from_one() {
        let mut diags = Diagnostics::default();
        let lexed = lex_str("\n\na b\n", Path::new("x.conf"), &mut diags).unwrap();
        assert_eq!(lexed.lines[0][1].at, Location::new("x.conf", 3));
    }

    #[test]
    fn predefined_definitions() {
        let dir = std::env::temp_dir().join(format!("xvrrpd-lex-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("k.conf");
        fs::write(
            &file,
            "a ${_PWD}/x $_PWD\nb ${_HASH}${_BANG}\nc ${_RANDOM 5 5} ${_INSTANCE}\n",
        )
        .unwrap();
        let mut diags = Diagnostics::default();
        let lexed = lex_file(&file, &mut diags).unwrap();
        let lines: Vec<Vec<String>> = lexed
            .lines
            .iter()
            .map(|l| l.iter().map(|t| t.text.clone()).collect())
            .collect();
        let canonical = fs::canonicalize(&dir).unwrap().display().to_string();
        assert_eq!(
            lines[0],
            vec!["a".to_string(), format!("{canonical}/x"), canonical]
        );
        assert_eq!(lines[1], vec!["b", "#!"]);
        assert_eq!(lines[2][1], "5");
        let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let id = host.trim().split('.').next().unwrap_or_default();
        if !id.is_empty() {
            assert_eq!(lines[2][2], id);
        }
        assert!(diags.list.is_empty(), "{:?}", diags.list);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sequence_blocks() {
        let (lines, diags) = lex("~SEQ(N, 0, 3) ip 10.0.${N}.1\n~SEQx(H, 0x90, 0x10, 0xc0) a ${H}\n~SEQ(D,2) d$D\n~SEQ(E, 3, 1) e$E\n");
        let flat: Vec<String> = lines.iter().map(|l| l.join(" ")).collect();
        assert_eq!(
            flat,
            vec![
                "ip 10.0.0.1",
                "ip 10.0.1.1",
                "ip 10.0.2.1",
                "ip 10.0.3.1",
                "a 90",
                "a a0",
                "a b0",
                "a c0",
                "d1",
                "d2",
                "e3",
                "e2",
                "e1"
            ]
        );
        assert!(diags.list.is_empty(), "{:?}", diags.list);
        // Several on one line, and with a multi-line definition.
        let (lines, _) = lex("$V=x ${A} \\\ny ${B}\n~SEQ(A,1,2) ~SEQ(B,5,6) $V\n");
        let flat: Vec<String> = lines.iter().map(|l| l.join(" ")).collect();
        assert_eq!(
            flat,
            vec!["x 1", "y 5", "x 1", "y 6", "x 2", "y 5", "x 2", "y 6"]
        );
        // Malformed: reported at the line, nothing produced.
        let (lines, diags) = lex("~SEQ(N, 1, -1, 5) z\n~SEQx(N, -1, 2) z\n~SEQ N z\n");
        assert!(lines.is_empty());
        assert_eq!(diags.list.len(), 3, "{:?}", diags.list);
    }

    #[test]
    fn list_blocks() {
        let (lines, diags) = lex("~LST({IP, IP1}, {10,1},{20,4}) ~SEQ(IP2,168,2,170) 192.${IP2}.${IP}.${IP1}\n~LST(X, a, b) v$X\n");
        let flat: Vec<String> = lines.iter().map(|l| l.join(" ")).collect();
        assert_eq!(
            flat,
            vec![
                "192.168.10.1",
                "192.170.10.1",
                "192.168.20.4",
                "192.170.20.4",
                "va",
                "vb"
            ]
        );
        assert!(diags.list.is_empty(), "{:?}", diags.list);
    }
}
