//! Running keepalived-style commands: shared by `vrrp_script`, notify and `check`.
//!
//! - [`split_command`]: a command string to argv, exactly as keepalived 2.2.7
//!   (`alloc_strvec_quoted_escaped`) does it.
//! - [`resolve_user`]: who a script runs as (`user`, `script_user`,
//!   `keepalived_script`, else the daemon's own user).
//! - [`check_security`]: the `enable_script_security` path check.
//! - [`spawn`] / [`wait_or_kill`]: start a command in its own process group
//!   as that user, and wait for it with a timeout that kills the whole group.

use std::ffi::OsString;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::{Group, Pid, User};
use serde::Serialize;
use tokio::process::{Child, Command};

/// The user keepalived runs scripts as when `script_user` is not given (if it exists).
pub const DEFAULT_SCRIPT_USER: &str = "keepalived_script";

/// PATH given to scripts when the daemon has none (glibc's `_CS_PATH` plus sbin).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("empty command")]
    Empty,
    #[error("command `{command}`: missing terminating {quote}")]
    UnterminatedQuote { command: String, quote: char },
    #[error("command `{command}`: backslash at the end escapes nothing")]
    TrailingBackslash { command: String },
    #[error("command `{command}`: an escape sequence makes a word that is not UTF-8")]
    NotUtf8 { command: String },
    #[error("script user `{user}` does not exist")]
    NoSuchUser { user: String },
    #[error("script group `{group}` does not exist")]
    NoSuchGroup { group: String },
    #[error("looking up {what} `{name}` (getpwnam_r/getgrnam_r): {source}")]
    Lookup {
        what: &'static str,
        name: String,
        source: nix::Error,
    },
    #[error("{program}: not found")]
    NotFound { program: String },
    #[error("{}: stat: {source}", path.display())]
    Stat { path: PathBuf, source: io::Error },
    #[error("{}: not a regular file", path.display())]
    NotRegular { path: PathBuf },
    #[error("{}: not executable by uid {uid} gid {gid}", path.display())]
    NotExecutable { path: PathBuf, uid: u32, gid: u32 },
    #[error("{}: {detail}; refusing to run it with enable_script_security", program.display())]
    Insecure { program: PathBuf, detail: String },
    #[error("{program}: fork/execve: {source}")]
    Spawn { program: String, source: io::Error },
}

// ---- argv splitting -------------------------------------------------------------

/// keepalived's `WHITE_SPACE_STR`.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Split a command into argv as keepalived 2.2.7 does: whitespace separates
/// words; `'…'` and `"…"` group (and may be glued to other text: `a"b c"d` is
/// one word); a backslash escapes the next character everywhere, even inside
/// single quotes, and knows C escapes (`\n`, `\t`, `\a`, `\b`, `\E`, `\f`,
/// `\r`, `\v`, `\xHH…`, `\cX`, `\NNN` octal); any other escaped character
/// stands for itself. A word is cut at a NUL made by an escape (keepalived
/// copies words as C strings).
pub fn split_command(cmd: &str) -> Result<Vec<String>, CommandError> {
    let b = cmd.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    loop {
        while i < b.len() && is_space(b[i]) {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let mut word: Vec<u8> = Vec::new();
        let mut quote: Option<u8> = None;
        while i < b.len() {
            let c = b[i];
            let special = match quote {
                Some(q) => c == q || c == b'\\',
                None => is_space(c) || c == b'\'' || c == b'"' || c == b'\\',
            };
            if !special {
                word.push(c);
                i += 1;
                continue;
            }
            if c == b'\\' {
                i += 1;
                if i >= b.len() {
                    return Err(CommandError::TrailingBackslash {
                        command: cmd.to_string(),
                    });
                }
                let (byte, used) = unescape(&b[i..]);
                word.push(byte);
                i += used;
                continue;
            }
            if quote.is_some() {
                // The closing quote.
                quote = None;
                i += 1;
                continue;
            }
            if c == b'\'' || c == b'"' {
                quote = Some(c);
                i += 1;
                continue;
            }
            // Unquoted whitespace ends the word.
            break;
        }
        if let Some(q) = quote {
            return Err(CommandError::UnterminatedQuote {
                command: cmd.to_string(),
                quote: char::from(q),
            });
        }
        if let Some(nul) = word.iter().position(|&c| c == 0) {
            word.truncate(nul);
        }
        let word = String::from_utf8(word).map_err(|_| CommandError::NotUtf8 {
            command: cmd.to_string(),
        })?;
        words.push(word);
    }
    if words.is_empty() {
        return Err(CommandError::Empty);
    }
    Ok(words)
}

/// One escape sequence (`s` starts after the backslash and is not empty):
/// the byte it stands for and how many bytes of `s` it used. Arithmetic is on
/// 8 bits, as on keepalived's `char`.
fn unescape(s: &[u8]) -> (u8, usize) {
    let hex = |c: u8| char::from(c).to_digit(16);
    match s[0] {
        b'x' if s.get(1).and_then(|&c| hex(c)).is_some() => {
            let mut value = 0u8;
            let mut used = 1;
            while let Some(d) = s.get(used).and_then(|&c| hex(c)) {
                // to_digit(16) is < 16, so this cannot truncate.
                value = (value << 4) | d as u8;
                used += 1;
            }
            (value, used)
        }
        b'c' if s.len() > 1 => (s[1] & 0x1f, 2),
        b'0'..=b'7' => {
            let mut value = 0u8;
            let mut used = 0;
            while used < 3 && matches!(s.get(used), Some(b'0'..=b'7')) {
                value = value.wrapping_shl(3).wrapping_add(s[used] - b'0');
                used += 1;
            }
            (value, used)
        }
        c => {
            let byte = match c {
                b'a' => 0x07,
                b'b' => 0x08,
                b'E' => 0x1b,
                b'f' => 0x0c,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'v' => 0x0b,
                other => other,
            };
            (byte, 1)
        }
    }
}

// ---- the user a script runs as --------------------------------------------------

/// A user (and group) as written in keepalived.conf (`script_user`, `user`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScriptUser {
    pub user: String,
    pub group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
    pub user: String,
}

/// Who a script runs as: its own `user`, else the global `script_user`, else
/// user `keepalived_script` if it exists, else the daemon's own user (root).
/// The group is the one named, else the user's primary group.
pub fn resolve_user(
    script_user: Option<&ScriptUser>,
    global: Option<&ScriptUser>,
) -> Result<RunAs, CommandError> {
    if let Some(u) = script_user.or(global) {
        let user = lookup_user(&u.user)?.ok_or_else(|| CommandError::NoSuchUser {
            user: u.user.clone(),
        })?;
        let gid = match &u.group {
            Some(name) => {
                Group::from_name(name)
                    .map_err(|source| CommandError::Lookup {
                        what: "group",
                        name: name.clone(),
                        source,
                    })?
                    .ok_or_else(|| CommandError::NoSuchGroup {
                        group: name.clone(),
                    })?
                    .gid
            }
            None => user.gid,
        };
        return Ok(RunAs {
            uid: user.uid.as_raw(),
            gid: gid.as_raw(),
            user: user.name,
        });
    }
    if let Some(user) = lookup_user(DEFAULT_SCRIPT_USER)? {
        return Ok(RunAs {
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            user: user.name,
        });
    }
    Ok(own_user())
}

fn lookup_user(name: &str) -> Result<Option<User>, CommandError> {
    User::from_name(name).map_err(|source| CommandError::Lookup {
        what: "user",
        name: name.to_string(),
        source,
    })
}

/// The daemon's own user (root in practice): running as it needs no setuid.
fn own_user() -> RunAs {
    let uid = nix::unistd::geteuid();
    let name = match User::from_uid(uid) {
        Ok(Some(u)) => u.name,
        _ if uid.is_root() => "root".to_string(),
        _ => uid.to_string(),
    };
    RunAs {
        uid: uid.as_raw(),
        gid: nix::unistd::getegid().as_raw(),
        user: name,
    }
}

// ---- finding and checking the program -------------------------------------------

/// The PATH scripts get (and that bare command names are looked up in).
pub fn script_path() -> OsString {
    match std::env::var_os("PATH") {
        Some(p) if !p.is_empty() => p,
        _ => OsString::from(DEFAULT_PATH),
    }
}

/// `enable_script_security` for a command name: the file it stands for,
/// once [`check_security`] passed it. Run that path, not whatever PATH
/// finds later.
pub fn secure_program(program: &str, run_as: &RunAs) -> Result<PathBuf, CommandError> {
    if is_file_open_check(program) {
        return Ok(PathBuf::from(program));
    }
    let path = find_program(program)?;
    check_security(&path, run_as)?;
    Ok(path)
}

/// keepalived's file-open check: a command starting `<`, blanks allowed, then `/` (like
/// `</dev/tcp/127.0.0.1/80`) is handed to the shell to open, not run, so there is no
/// program to find or secure (keepalived's `check_script_secure` says `SC_SYSTEM`).
pub fn is_file_open_check(program: &str) -> bool {
    program
        .strip_prefix('<')
        .is_some_and(|rest| rest.trim_start_matches([' ', '\t']).starts_with('/'))
}

/// The file a command name stands for: itself when it has a '/', else the
/// first executable regular file of that name on [`script_path`] (as
/// execvp and keepalived's `find_path` do).
pub fn find_program(program: &str) -> Result<PathBuf, CommandError> {
    if program.contains('/') {
        return Ok(PathBuf::from(program));
    }
    if !program.is_empty() {
        for dir in std::env::split_paths(&script_path()) {
            let candidate = dir.join(program);
            if let Ok(m) = std::fs::metadata(&candidate) {
                if m.is_file() && m.mode() & 0o111 != 0 {
                    return Ok(candidate);
                }
            }
        }
    }
    Err(CommandError::NotFound {
        program: program.to_string(),
    })
}

/// keepalived's `is_executable`: root needs any x bit, the owner the user
/// bit, the group the group bit, everyone else the other bit.
pub fn is_executable(m: &std::fs::Metadata, run_as: &RunAs) -> bool {
    let mode = m.mode();
    (run_as.uid == 0 && mode & 0o111 != 0)
        || (run_as.uid == m.uid() && mode & 0o100 != 0)
        || (run_as.uid != m.uid()
            && ((run_as.gid == m.gid() && mode & 0o010 != 0)
                || (run_as.gid != m.gid() && mode & 0o001 != 0)))
}

/// The `enable_script_security` check: `program` must exist, be a regular
/// file executable by `run_as`, and — when it would run with root powers
/// (run as uid or gid 0, or set-uid/set-gid root) — neither the file nor any
/// directory leading to it may be changeable by anyone but root.
///
/// Each component of the path as given and of its canonical path (symlinks
/// resolved) is looked at with lstat, as keepalived's `check_security` does:
/// - owned by a non-root user: insecure (the owner can always chmod it);
/// - writable by a non-root group, or by everyone: insecure, except for a
///   directory with the sticky bit (like /tmp): there nobody but root can
///   replace the root-owned entries, and those are checked on their own;
/// - a symlink only needs a root owner (its mode means nothing).
///
/// As in keepalived, a script that runs as an unprivileged user is not
/// path-checked: whoever can change it could only act as that user.
pub fn check_security(program: &Path, run_as: &RunAs) -> Result<(), CommandError> {
    let given = if program.is_absolute() {
        program.to_path_buf()
    } else {
        let cwd = std::env::current_dir().map_err(|source| CommandError::Stat {
            path: PathBuf::from("."),
            source,
        })?;
        cwd.join(program)
    };
    let meta = std::fs::metadata(&given).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            CommandError::NotFound {
                program: program.display().to_string(),
            }
        } else {
            CommandError::Stat {
                path: program.to_path_buf(),
                source,
            }
        }
    })?;
    if !meta.is_file() {
        return Err(CommandError::NotRegular {
            path: program.to_path_buf(),
        });
    }
    if !is_executable(&meta, run_as) {
        return Err(CommandError::NotExecutable {
            path: program.to_path_buf(),
            uid: run_as.uid,
            gid: run_as.gid,
        });
    }
    let mode = meta.mode();
    let privileged = run_as.uid == 0
        || run_as.gid == 0
        || (meta.uid() == 0 && mode & 0o4100 == 0o4100)
        || (meta.gid() == 0 && mode & 0o2010 == 0o2010);
    if !privileged {
        return Ok(());
    }
    check_components(program, &given, &given)?;
    let canonical = std::fs::canonicalize(&given).map_err(|source| CommandError::Stat {
        path: program.to_path_buf(),
        source,
    })?;
    if canonical != given {
        check_components(program, &given, &canonical)?;
    }
    Ok(())
}

/// Why someone other than root could change `program` (the file or a directory leading
/// to it, along the path as given and its canonical path), if someone can: the part of
/// [`check_security`] keepalived applies to scripts that run with root powers.
pub fn path_insecurity(program: &Path) -> Option<String> {
    let given = if program.is_absolute() {
        program.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(program)
    };
    let check = |path: &Path| match check_components(program, &given, path) {
        Err(CommandError::Insecure { detail, .. }) => Some(detail),
        _ => None,
    };
    check(&given).or_else(|| {
        let canonical = std::fs::canonicalize(&given).ok()?;
        (canonical != given).then(|| check(&canonical)).flatten()
    })
}

/// Check every prefix of `path` (from `/`) with lstat; errors name
/// `program`, and the component unless it is `given` (the program itself).
fn check_components(program: &Path, given: &Path, path: &Path) -> Result<(), CommandError> {
    let mut prefix = PathBuf::new();
    for component in path.components() {
        prefix.push(component);
        let m = std::fs::symlink_metadata(&prefix).map_err(|source| CommandError::Stat {
            path: prefix.clone(),
            source,
        })?;
        if let Some(reason) = insecurity(&m) {
            let detail = if prefix == given {
                reason
            } else {
                format!("{} {reason}", prefix.display())
            };
            return Err(CommandError::Insecure {
                program: program.to_path_buf(),
                detail,
            });
        }
    }
    Ok(())
}

/// Why a non-root user could change this path component, if one can.
fn insecurity(m: &std::fs::Metadata) -> Option<String> {
    let mode = m.mode();
    let ft = m.file_type();
    if m.uid() != 0 {
        return Some(if ft.is_symlink() {
            format!("is a symlink owned by uid {}", m.uid())
        } else if mode & 0o200 != 0 {
            format!("writable by uid {} (owner)", m.uid())
        } else {
            format!("owned by uid {}, who can make it writable", m.uid())
        });
    }
    if ft.is_symlink() || (ft.is_dir() && mode & 0o1000 != 0) {
        return None;
    }
    if m.gid() != 0 && mode & 0o020 != 0 {
        return Some(format!("writable by gid {} (group)", m.gid()));
    }
    if mode & 0o002 != 0 {
        return Some(if ft.is_dir() {
            "is a world-writable directory".to_string()
        } else {
            "world-writable".to_string()
        });
    }
    None
}

// ---- spawning and waiting -------------------------------------------------------

/// keepalived's `cmd_str`: the words single-quoted for `/bin/sh -c`, except a
/// leading `<`/`>` redirection (`script "</dev/tcp/127.0.0.1/80"`).
fn shell_command(argv: &[String]) -> String {
    let mut out = String::new();
    for (i, word) in argv.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if i == 0 && (word.starts_with('<') || word.starts_with('>')) {
            out.push_str(word);
        } else {
            out.push('\'');
            out.push_str(&word.replace('\'', r"'\''"));
            out.push('\'');
        }
    }
    out
}

fn command(program: &str, args: &[String], run_as: &RunAs) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own group, so a timeout kills whatever it started too.
        .process_group(0)
        .kill_on_drop(false)
        // A minimal environment: scripts must not depend on the daemon's.
        .env_clear()
        .env("PATH", script_path());
    let euid = nix::unistd::geteuid().as_raw();
    let egid = nix::unistd::getegid().as_raw();
    let (uid, gid) = (run_as.uid, run_as.gid);
    // SAFETY: only async-signal-safe syscalls between fork and exec, and no
    // allocation.
    unsafe {
        cmd.pre_exec(move || {
            // Drop root's supplementary groups, then the group, then the user
            // (after setuid we could no longer change the others).
            if euid == 0 && uid != 0 && libc::setgroups(1, &gid) != 0 {
                return Err(io::Error::last_os_error());
            }
            if gid != egid && libc::setgid(gid) != 0 {
                return Err(io::Error::last_os_error());
            }
            if uid != euid && libc::setuid(uid) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// Start `argv` as `run_as`: stdio on /dev/null, in its own process group,
/// PATH as the only environment variable, not killed when the handle is
/// dropped. A script without `#!` (ENOEXEC) and a leading redirection like
/// `</dev/tcp/…` run through `/bin/sh -c`, as keepalived does.
///
/// No parent-death signal is set: PR_SET_PDEATHSIG fires when the *thread*
/// that forked exits, and tokio's threads come and go.
///
/// Must be called within a tokio runtime.
pub fn spawn(argv: &[String], run_as: &RunAs) -> Result<Child, CommandError> {
    let (program, args) = argv.split_first().ok_or(CommandError::Empty)?;
    let via_shell = || {
        let script = shell_command(argv);
        command("/bin/sh", &["-c".to_string(), script], run_as)
            .spawn()
            .map_err(|source| CommandError::Spawn {
                program: program.clone(),
                source,
            })
    };
    if program.starts_with('<') || program.starts_with('>') {
        return via_shell();
    }
    match command(program, args, run_as).spawn() {
        Ok(child) => Ok(child),
        Err(e) if e.raw_os_error() == Some(libc::ENOEXEC) => via_shell(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(CommandError::NotFound {
            program: program.clone(),
        }),
        Err(source) => Err(CommandError::Spawn {
            program: program.clone(),
            source,
        }),
    }
}

/// How a waited-for command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Exited(i32),
    Signalled(i32),
    /// Still running at the timeout: its process group was killed and it was
    /// reaped.
    TimedOut,
    /// waitpid failed (the errno); should not happen since we own the child.
    WaitFailed(i32),
}

impl Outcome {
    pub fn success(self) -> bool {
        self == Outcome::Exited(0)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Exited(code) => write!(f, "exit status {code}"),
            Outcome::Signalled(sig) => write!(f, "killed by signal {sig}"),
            Outcome::TimedOut => f.write_str("timed out"),
            Outcome::WaitFailed(errno) => {
                write!(f, "waitpid: {}", io::Error::from_raw_os_error(*errno))
            }
        }
    }
}

fn outcome(status: io::Result<std::process::ExitStatus>) -> Outcome {
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(code), _) => Outcome::Exited(code),
            (None, Some(sig)) => Outcome::Signalled(sig),
            (None, None) => Outcome::WaitFailed(0),
        },
        Err(e) => Outcome::WaitFailed(e.raw_os_error().unwrap_or(0)),
    }
}

/// SIGKILL the process group led by `child` (spawned by [`spawn`], so its pid
/// is its group id). Only while it is not reaped: after that the id may be
/// reused.
pub fn kill_group(child: &Child) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        // ESRCH: the whole group is already gone.
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// Kills the group if the wait is abandoned (the future dropped) before the
/// child was reaped, so a cancelled wait leaves nothing running.
struct KillOnCancel(Option<i32>);

impl Drop for KillOnCancel {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
    }
}

/// Wait for `child` at most `timeout`; then SIGKILL its whole process group
/// and reap it, so no zombie remains (grandchildren that left the group
/// cannot be reached). If this future is dropped before the child is reaped,
/// the group is killed (tokio then reaps the child in the background).
pub async fn wait_or_kill(child: &mut Child, timeout: Duration) -> Outcome {
    let mut guard = KillOnCancel(child.id().and_then(|p| i32::try_from(p).ok()));
    let result = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => outcome(status),
        Err(_) => {
            kill_group(child);
            let _ = child.wait().await;
            Outcome::TimedOut
        }
    };
    guard.0 = None;
    result
}

/// Wait for `child` without a bound.
pub async fn wait(child: &mut Child) -> Outcome {
    outcome(child.wait().await)
}

/// Kill `child`'s process group and reap it.
pub async fn kill_and_reap(child: &mut Child) {
    kill_group(child);
    let _ = child.wait().await;
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn split(s: &str) -> Vec<String> {
        split_command(s).unwrap()
    }

    #[test]
    fn splits_like_keepalived() {
        assert_eq!(split("/bin/check"), ["/bin/check"]);
        assert_eq!(split("  /bin/check  a\tb \n"), ["/bin/check", "a", "b"]);
        assert_eq!(split("/x 'a b' \"c d\""), ["/x", "a b", "c d"]);
        assert_eq!(split("/x a'b c'd"), ["/x", "ab cd"]);
        assert_eq!(
            split("/x \"it's\" 'say \"hi\"'"),
            ["/x", "it's", "say \"hi\""]
        );
        assert_eq!(split("/x '' \"\""), ["/x", "", ""]);
        assert_eq!(split(r"/x a\ b"), ["/x", "a b"]);
        assert_eq!(split(r#"/x \"q\" \'"#), ["/x", "\"q\"", "'"]);
        assert_eq!(split(r"/x \\"), ["/x", "\\"]);
        // Escapes work inside single quotes too (unlike a shell).
        assert_eq!(split(r"/x 'a\'b'"), ["/x", "a'b"]);
        assert_eq!(split(r"/x a\tb \n"), ["/x", "a\tb", "\n"]);
        assert_eq!(
            split(r"/x \x41\x4a \101 \cA \E \q"),
            ["/x", "AJ", "A", "\x01", "\x1b", "q"]
        );
        // \x without a hex digit is a plain x; a NUL cuts the word.
        assert_eq!(split(r"/x \xg ab\0cd"), ["/x", "xg", "ab"]);
        assert_eq!(split("/x é"), ["/x", "é"]);
    }

    #[test]
    fn split_errors() {
        assert!(matches!(split_command(""), Err(CommandError::Empty)));
        assert!(matches!(split_command(" \t "), Err(CommandError::Empty)));
        let e = split_command("/x 'abc").unwrap_err();
        assert!(matches!(
            e,
            CommandError::UnterminatedQuote { quote: '\'', .. }
        ));
        assert_eq!(e.to_string(), "command `/x 'abc`: missing terminating '");
        assert!(matches!(
            split_command("/x \"a'b"),
            Err(CommandError::UnterminatedQuote { quote: '"', .. })
        ));
        assert!(matches!(
            split_command("/x a\\"),
            Err(CommandError::TrailingBackslash { .. })
        ));
        assert!(matches!(
            split_command(r"/x \xff"),
            Err(CommandError::NotUtf8 { .. })
        ));
    }

    #[test]
    fn shell_command_quotes() {
        let argv = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            shell_command(&argv(&["/x", "a b", "it's"])),
            r"'/x' 'a b' 'it'\''s'"
        );
        assert_eq!(shell_command(&argv(&["</dev/null"])), "</dev/null");
    }

    #[test]
    fn resolves_users() {
        let root = resolve_user(
            Some(&ScriptUser {
                user: "root".into(),
                group: None,
            }),
            None,
        )
        .unwrap();
        assert_eq!((root.uid, root.gid, root.user.as_str()), (0, 0, "root"));
        let nobody = ScriptUser {
            user: "nobody".into(),
            group: Some("root".into()),
        };
        // The script's own user wins over the global one.
        let r = resolve_user(
            Some(&nobody),
            Some(&ScriptUser {
                user: "root".into(),
                group: None,
            }),
        )
        .unwrap();
        assert_eq!((r.uid, r.gid), (65534, 0));
        let r = resolve_user(None, Some(&nobody)).unwrap();
        assert_eq!(r.uid, 65534);
        let missing = ScriptUser {
            user: "xvrrpd-no-such-user".into(),
            group: None,
        };
        let e = resolve_user(Some(&missing), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "script user `xvrrpd-no-such-user` does not exist"
        );
        let bad_group = ScriptUser {
            user: "root".into(),
            group: Some("xvrrpd-no-such-group".into()),
        };
        assert!(matches!(
            resolve_user(Some(&bad_group), None),
            Err(CommandError::NoSuchGroup { .. })
        ));
        // Neither given: keepalived_script if it exists, else ourselves.
        let d = resolve_user(None, None).unwrap();
        match User::from_name(DEFAULT_SCRIPT_USER).unwrap() {
            Some(u) => assert_eq!(d.uid, u.uid.as_raw()),
            None => assert_eq!(d.uid, nix::unistd::geteuid().as_raw()),
        }
    }

    /// A fresh directory under the temp dir, removed on drop.
    pub(crate) struct TempDir(pub PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> Self {
            static COUNTER: AtomicU32 = AtomicU32::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("xvrrpd-{tag}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir(&dir).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            TempDir(dir)
        }

        pub(crate) fn path(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }

        /// Write an executable (0755) script.
        pub(crate) fn script(&self, name: &str, body: &str) -> PathBuf {
            let path = self.path(name);
            std::fs::write(&path, body).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    pub(crate) fn root() -> RunAs {
        RunAs {
            uid: 0,
            gid: 0,
            user: "root".into(),
        }
    }

    /// Whether `pid` no longer runs: gone from /proc, or a zombie that is not
    /// our child (this sandbox's init does not reap orphans, so a killed
    /// grandchild may stay a zombie of pid 1).
    pub(crate) fn is_gone(pid: u32) -> bool {
        match proc_stat(pid) {
            None => true,
            Some((state, ppid, _)) => state == 'Z' && ppid != std::process::id(),
        }
    }

    /// (state, ppid, comm) from /proc/PID/stat.
    pub(crate) fn proc_stat(pid: u32) -> Option<(char, u32, String)> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let comm = stat.get(open + 1..close)?.to_string();
        let mut rest = stat.get(close + 1..)?.split_whitespace();
        let state = rest.next()?.chars().next()?;
        let ppid = rest.next()?.parse().ok()?;
        Some((state, ppid, comm))
    }

    /// Our children in state Z whose name starts with `prefix` (other tests
    /// in this binary spawn children of their own, which are not ours to
    /// judge).
    pub(crate) fn our_zombies(prefix: &str) -> Vec<(u32, String)> {
        let me = std::process::id();
        let mut found = Vec::new();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return found;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            if let Some((state, ppid, comm)) = proc_stat(pid) {
                if state == 'Z' && ppid == me && comm.starts_with(prefix) {
                    found.push((pid, comm));
                }
            }
        }
        found
    }

    pub(crate) fn read_pid(path: &Path) -> u32 {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(pid) = std::fs::read_to_string(path)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                return pid;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} never written",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[tokio::test]
    async fn runs_and_reports_exit_status() {
        let dir = TempDir::new("cmd");
        let ok = dir.script("xvt_ok", "#!/bin/sh\nexit 0\n");
        let three = dir.script("xvt_three", "#!/bin/sh\nexit 3\n");
        for (path, want) in [(ok, Outcome::Exited(0)), (three, Outcome::Exited(3))] {
            let mut child = spawn(&[path.display().to_string()], &root()).unwrap();
            assert_eq!(wait_or_kill(&mut child, Duration::from_secs(5)).await, want);
        }
        let killer = dir.script("xvt_killself", "#!/bin/sh\nkill -TERM $$\n");
        let mut child = spawn(&[killer.display().to_string()], &root()).unwrap();
        assert_eq!(
            wait_or_kill(&mut child, Duration::from_secs(5)).await,
            Outcome::Signalled(libc::SIGTERM)
        );
    }

    #[tokio::test]
    async fn arguments_environment_and_user() {
        let dir = TempDir::new("cmd");
        let out = dir.path("out");
        std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o777)).unwrap();
        let rec = dir.script(
            "xvt_rec",
            &format!(
                "#!/bin/sh\n{{ printf '%s\\n' \"$@\"; id -u; id -g; id -G; env | sort; }} > {}\n",
                out.display()
            ),
        );
        let nobody = RunAs {
            uid: 65534,
            gid: 65534,
            user: "nobody".into(),
        };
        let argv = vec![
            rec.display().to_string(),
            "a b".into(),
            "".into(),
            "c".into(),
        ];
        let mut child = spawn(&argv, &nobody).unwrap();
        assert_eq!(
            wait_or_kill(&mut child, Duration::from_secs(5)).await,
            Outcome::Exited(0)
        );
        let text = std::fs::read_to_string(&out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(&lines[..6], ["a b", "", "c", "65534", "65534", "65534"]);
        // Only PATH (plus what sh sets itself: PWD, maybe SHLVL/_).
        assert!(lines.iter().any(|l| l.starts_with("PATH=")), "{text}");
        assert!(!lines.iter().any(|l| l.starts_with("HOME=")), "{text}");
    }

    #[tokio::test]
    async fn script_without_shebang_and_missing_program() {
        let dir = TempDir::new("cmd");
        let out = dir.path("out");
        let plain = dir.script(
            "xvt_plain",
            &format!("echo ran \"$1\" > {}\nexit 4\n", out.display()),
        );
        let mut child = spawn(&[plain.display().to_string(), "it's".into()], &root()).unwrap();
        assert_eq!(
            wait_or_kill(&mut child, Duration::from_secs(5)).await,
            Outcome::Exited(4)
        );
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "ran it's\n");

        let missing = dir.path("missing").display().to_string();
        let e = spawn(std::slice::from_ref(&missing), &root()).unwrap_err();
        assert!(matches!(e, CommandError::NotFound { .. }), "{e}");
        assert_eq!(e.to_string(), format!("{missing}: not found"));
        let e = spawn(&["xvrrpd-no-such-command".into()], &root()).unwrap_err();
        assert!(matches!(e, CommandError::NotFound { .. }), "{e}");
        assert!(matches!(spawn(&[], &root()), Err(CommandError::Empty)));

        // A leading redirection runs through /bin/sh (keepalived's idiom for
        // "this file can be opened").
        let mut child = spawn(&["</dev/null".into()], &root()).unwrap();
        assert!(wait_or_kill(&mut child, Duration::from_secs(5))
            .await
            .success());
        let mut child = spawn(&[format!("<{missing}")], &root()).unwrap();
        assert!(!wait_or_kill(&mut child, Duration::from_secs(5))
            .await
            .success());

        // A bare name is looked up on PATH.
        let mut child = spawn(&["true".into()], &root()).unwrap();
        assert!(wait_or_kill(&mut child, Duration::from_secs(5))
            .await
            .success());
        assert!(find_program("sh").unwrap().is_absolute());
        assert!(find_program("xvrrpd-no-such-command").is_err());
    }

    #[tokio::test]
    async fn timeout_kills_the_process_group_and_reaps() {
        let dir = TempDir::new("cmd");
        let hang = dir.script(
            "xvt_hang",
            &format!(
                "#!/bin/sh\nsleep 100 &\necho $! > {}\necho $$ > {}\nsleep 100\n",
                dir.path("child.pid").display(),
                dir.path("script.pid").display()
            ),
        );
        let mut child = spawn(&[hang.display().to_string()], &root()).unwrap();
        let started = std::time::Instant::now();
        let outcome = wait_or_kill(&mut child, Duration::from_millis(500)).await;
        assert_eq!(outcome, Outcome::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(5));
        let script = read_pid(&dir.path("script.pid"));
        let grandchild = read_pid(&dir.path("child.pid"));
        wait_until(|| is_gone(script) && is_gone(grandchild)).await;
        wait_until(|| our_zombies("xvt_").is_empty()).await;
    }

    /// Poll `cond` for up to 5 s.
    pub(crate) async fn wait_until(mut cond: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !cond() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "condition not met in 5 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[test]
    fn security_accepts_root_owned_paths() {
        let dir = TempDir::new("sec");
        let ok = dir.script("check.sh", "#!/bin/sh\n");
        // /tmp is world-writable but sticky: fine for a root-owned file in it.
        check_security(&ok, &root()).unwrap();
        check_security(Path::new("/bin/sh"), &root()).unwrap();
        // A root-owned symlink to it is fine too.
        let link = dir.path("link.sh");
        std::os::unix::fs::symlink(&ok, &link).unwrap();
        check_security(&link, &root()).unwrap();
    }

    #[test]
    fn security_refuses_writable_paths() {
        let dir = TempDir::new("sec");
        let file = dir.script("check.sh", "#!/bin/sh\n");
        let refuse = |path: &Path, detail: &str| {
            let e = check_security(path, &root()).unwrap_err();
            assert!(matches!(e, CommandError::Insecure { .. }), "{e}");
            assert_eq!(
                e.to_string(),
                format!(
                    "{}: {detail}; refusing to run it with enable_script_security",
                    path.display()
                )
            );
        };

        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o757)).unwrap();
        refuse(&file, "world-writable");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o775)).unwrap();
        nix::unistd::chown(&file, None, Some(nix::unistd::Gid::from_raw(65534))).unwrap();
        refuse(&file, "writable by gid 65534 (group)");
        nix::unistd::chown(
            &file,
            Some(nix::unistd::Uid::from_raw(65534)),
            Some(nix::unistd::Gid::from_raw(0)),
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
        refuse(&file, "writable by uid 65534 (owner)");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o555)).unwrap();
        refuse(&file, "owned by uid 65534, who can make it writable");
        nix::unistd::chown(&file, Some(nix::unistd::Uid::from_raw(0)), None).unwrap();
        check_security(&file, &root()).unwrap();

        // A world-writable directory (no sticky bit) on the way.
        std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o777)).unwrap();
        refuse(
            &file,
            &format!("{} is a world-writable directory", dir.0.display()),
        );
        // With the sticky bit a root-owned file in it is fine (like /tmp).
        std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o1777)).unwrap();
        check_security(&file, &root()).unwrap();
        std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();

        // A link to an insecure file: the target is checked too.
        let sub = dir.path("sub");
        std::fs::create_dir(&sub).unwrap();
        let target = sub.join("real.sh");
        std::fs::write(&target, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o757)).unwrap();
        let link = dir.path("link.sh");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        refuse(&link, &format!("{} world-writable", target.display()));

        // Run as nobody, the path is not policed (keepalived's rule), but it
        // must be executable by nobody.
        let nobody = RunAs {
            uid: 65534,
            gid: 65534,
            user: "nobody".into(),
        };
        check_security(&link, &nobody).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(matches!(
            check_security(&link, &nobody),
            Err(CommandError::NotExecutable { .. })
        ));

        let e = check_security(&dir.path("missing.sh"), &root()).unwrap_err();
        assert!(matches!(e, CommandError::NotFound { .. }), "{e}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = check_security(&file, &root()).unwrap_err();
        assert!(matches!(e, CommandError::NotExecutable { .. }), "{e}");
        assert!(matches!(
            check_security(&dir.0, &root()),
            Err(CommandError::NotRegular { .. })
        ));
    }
}
