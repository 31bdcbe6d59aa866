//! Where the recorder's maps are pinned.
//!
//! bpffs is one per host (per mount namespace), shared by every network
//! namespace, so two daemons in two namespaces must not share a directory.
//! The default name is the network namespace's: its `ip netns` name when it
//! has one, `default` for the host's, else `netns-<inode>`. The layout version
//! is part of the path because a pinned map is reused by name, unchecked.

use std::{
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use thiserror::Error;
use tracing::info;
use vrrp_common::MAP_LAYOUT_VERSION;

pub const BPFFS: &str = "/sys/fs/bpf";
const BPF_FS_MAGIC: nix::sys::statfs::FsType = nix::sys::statfs::FsType(0xcafe4a11);

#[derive(Debug, Error)]
pub enum PinError {
    #[error("stat {path}: {source}")]
    Stat {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("mount -t bpf bpf {BPFFS}: {0} (run it as root, or pass --pin-dir on a bpffs)")]
    Mount(#[source] nix::Error),
    #[error("creating pin directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid pin name {0:?}: use letters, digits, '-', '_' and '.'")]
    BadName(String),
}

/// `/sys/fs/bpf/xvrrpd/v<layout>`.
pub fn root() -> PathBuf {
    Path::new(BPFFS)
        .join("xvrrpd")
        .join(format!("v{MAP_LAYOUT_VERSION}"))
}

/// The pin directory for `name` (or the namespace's default name).
pub fn dir(name: Option<&str>) -> Result<PathBuf, PinError> {
    let name = match name {
        Some(n) => n.to_owned(),
        None => default_name()?,
    };
    let valid = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid {
        return Err(PinError::BadName(name));
    }
    Ok(root().join(name))
}

fn inode(path: &Path) -> Result<u64, PinError> {
    fs::metadata(path)
        .map(|m| m.ino())
        .map_err(|source| PinError::Stat {
            path: path.to_owned(),
            source,
        })
}

/// The current network namespace's name, as explained in the module doc.
pub fn default_name() -> Result<String, PinError> {
    let ours = inode(Path::new("/proc/self/ns/net"))?;
    if let Ok(entries) = fs::read_dir("/run/netns") {
        for entry in entries.flatten() {
            if fs::metadata(entry.path()).map(|m| m.ino()).ok() == Some(ours) {
                return Ok(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    if inode(Path::new("/proc/1/ns/net")).ok() == Some(ours) {
        return Ok("default".to_owned());
    }
    Ok(format!("netns-{ours}"))
}

/// Mounts bpffs on /sys/fs/bpf if it is not there yet, then creates `dir`.
pub fn prepare_dir(dir: &Path) -> Result<(), PinError> {
    if dir.starts_with(BPFFS) {
        let is_bpffs = nix::sys::statfs::statfs(BPFFS)
            .map(|s| s.filesystem_type() == BPF_FS_MAGIC)
            .unwrap_or(false);
        if !is_bpffs {
            nix::mount::mount(
                Some("bpf"),
                BPFFS,
                Some("bpf"),
                nix::mount::MsFlags::empty(),
                None::<&str>,
            )
            .map_err(PinError::Mount)?;
            info!("mounted bpffs on {BPFFS}");
        }
    }
    fs::create_dir_all(dir).map_err(|source| PinError::CreateDir {
        path: dir.to_owned(),
        source,
    })
}

/// Removes the pins and the directory; errors are ignored (best effort at exit).
pub fn remove_dir(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let _ = fs::remove_file(e.path());
        }
    }
    let _ = fs::remove_dir(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated_and_versioned() {
        let d = dir(Some("lab-1")).unwrap();
        assert!(d.ends_with(format!("xvrrpd/v{MAP_LAYOUT_VERSION}/lab-1")));
        for bad in ["", "..", "a/b", "x y"] {
            assert!(matches!(dir(Some(bad)), Err(PinError::BadName(_))), "{bad}");
        }
    }

    #[test]
    fn default_name_is_stable() {
        assert_eq!(default_name().unwrap(), default_name().unwrap());
    }
}
