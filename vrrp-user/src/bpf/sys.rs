//! The few bpf(2) commands aya 0.14 does not expose for someone else's
//! programs: what the libxdp protocol needs to read a dispatcher, pin its
//! components and link them into a new one, and what finds our programs
//! among those attached to an interface.

use std::{
    ffi::CString,
    io,
    os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
    path::{Path, PathBuf},
};

use aya_obj::{
    btf::BtfKind,
    generated::{bpf_btf_info, bpf_cmd, bpf_map_info, bpf_prog_info},
};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SysError {
    #[error("bpf({call}): {source}")]
    Call {
        call: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("bpf({call}) on {path}: {source}")]
    Path {
        call: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("program {id} has no BTF")]
    NoBtf { id: u32 },
    #[error("BTF of program {id}: {detail}")]
    Btf { id: u32, detail: String },
}

/// `union bpf_attr` as BPF_OBJ_PIN and BPF_OBJ_GET read it.
#[repr(C)]
#[derive(Default)]
struct ObjAttr {
    pathname: u64,
    bpf_fd: u32,
    file_flags: u32,
}

/// As BPF_*_GET_FD_BY_ID read it.
#[repr(C)]
#[derive(Default)]
struct IdAttr {
    id: u32,
    next_id: u32,
    open_flags: u32,
}

/// As BPF_OBJ_GET_INFO_BY_FD reads it.
#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// As BPF_LINK_CREATE reads it for a program extension (`target_btf_id`
/// is the first member of the union after `flags`).
#[repr(C)]
#[derive(Default)]
struct LinkAttr {
    prog_fd: u32,
    target_fd: u32,
    attach_type: u32,
    flags: u32,
    target_btf_id: u32,
    _pad: u32,
    _rest: [u64; 2],
}

/// As BPF_MAP_LOOKUP_ELEM reads it.
#[repr(C)]
#[derive(Default)]
struct LookupAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

fn bpf<T>(cmd: bpf_cmd, attr: &mut T) -> io::Result<i64> {
    // SAFETY: `attr` is a live, initialised attribute struct of the size
    // passed; the kernel reads (and for info commands writes) within it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn fd_result(call: &'static str, r: io::Result<i64>) -> Result<OwnedFd, SysError> {
    let fd = r.map_err(|source| SysError::Call { call, source })?;
    // SAFETY: the kernel returned a new descriptor that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn c_path(path: &Path) -> io::Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path with a NUL byte"))
}

/// BPF_OBJ_GET: a descriptor of the object pinned at `path`.
pub fn obj_get(path: &Path) -> Result<OwnedFd, SysError> {
    let err = |source| SysError::Path {
        call: "BPF_OBJ_GET",
        path: path.to_owned(),
        source,
    };
    let name = c_path(path).map_err(err)?;
    let mut attr = ObjAttr {
        pathname: name.as_ptr() as u64,
        ..Default::default()
    };
    let fd = bpf(bpf_cmd::BPF_OBJ_GET, &mut attr).map_err(err)?;
    // SAFETY: as in fd_result.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// BPF_OBJ_PIN: pins the program, map or link `fd` at `path`.
pub fn obj_pin(fd: BorrowedFd<'_>, path: &Path) -> Result<(), SysError> {
    let err = |source| SysError::Path {
        call: "BPF_OBJ_PIN",
        path: path.to_owned(),
        source,
    };
    let name = c_path(path).map_err(err)?;
    let mut attr = ObjAttr {
        pathname: name.as_ptr() as u64,
        bpf_fd: fd.as_raw_fd() as u32,
        ..Default::default()
    };
    bpf(bpf_cmd::BPF_OBJ_PIN, &mut attr).map_err(err)?;
    Ok(())
}

/// A program by its ID.
pub fn prog_fd_by_id(id: u32) -> Result<OwnedFd, SysError> {
    let mut attr = IdAttr {
        id,
        ..Default::default()
    };
    fd_result(
        "BPF_PROG_GET_FD_BY_ID",
        bpf(bpf_cmd::BPF_PROG_GET_FD_BY_ID, &mut attr),
    )
}

/// A map by its ID.
pub fn map_fd_by_id(id: u32) -> Result<OwnedFd, SysError> {
    let mut attr = IdAttr {
        id,
        ..Default::default()
    };
    fd_result(
        "BPF_MAP_GET_FD_BY_ID",
        bpf(bpf_cmd::BPF_MAP_GET_FD_BY_ID, &mut attr),
    )
}

fn info_by_fd<T>(fd: BorrowedFd<'_>, info: &mut T, call: &'static str) -> Result<(), SysError> {
    let mut attr = InfoAttr {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: std::mem::size_of::<T>() as u32,
        info: info as *mut T as u64,
    };
    bpf(bpf_cmd::BPF_OBJ_GET_INFO_BY_FD, &mut attr)
        .map(|_| ())
        .map_err(|source| SysError::Call { call, source })
}

/// What the protocol and the position reports need to know of a program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgInfo {
    pub id: u32,
    pub name: String,
    pub btf_id: u32,
    pub map_ids: Vec<u32>,
    pub tag: [u8; 8],
}

/// A program's ID, name, BTF and maps.
pub fn prog_info(fd: BorrowedFd<'_>) -> Result<ProgInfo, SysError> {
    const CALL: &str = "BPF_OBJ_GET_INFO_BY_FD(program)";
    // SAFETY: plain integers and arrays; all zeroes is valid.
    let mut info: bpf_prog_info = unsafe { std::mem::zeroed() };
    info_by_fd(fd, &mut info, CALL)?;
    let mut map_ids = vec![0u32; info.nr_map_ids as usize];
    if !map_ids.is_empty() {
        // SAFETY: as above.
        let mut again: bpf_prog_info = unsafe { std::mem::zeroed() };
        again.nr_map_ids = map_ids.len() as u32;
        again.map_ids = map_ids.as_mut_ptr() as u64;
        info_by_fd(fd, &mut again, CALL)?;
        map_ids.truncate(again.nr_map_ids as usize);
    }
    let name: Vec<u8> = info
        .name
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    Ok(ProgInfo {
        id: info.id,
        name: String::from_utf8_lossy(&name).into_owned(),
        btf_id: info.btf_id,
        map_ids,
        tag: info.tag,
    })
}

/// What the protocol checks of a dispatcher's configuration map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapInfo {
    pub id: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
}

pub fn map_info(fd: BorrowedFd<'_>) -> Result<MapInfo, SysError> {
    // SAFETY: plain integers and arrays; all zeroes is valid.
    let mut info: bpf_map_info = unsafe { std::mem::zeroed() };
    info_by_fd(fd, &mut info, "BPF_OBJ_GET_INFO_BY_FD(map)")?;
    Ok(MapInfo {
        id: info.id,
        key_size: info.key_size,
        value_size: info.value_size,
        max_entries: info.max_entries,
        map_flags: info.map_flags,
    })
}

/// The value at `key` (4 bytes) of a map whose values are `value_size` long.
pub fn map_lookup(fd: BorrowedFd<'_>, key: u32, value_size: u32) -> Result<Vec<u8>, SysError> {
    let mut value = vec![0u8; value_size as usize];
    let mut attr = LookupAttr {
        map_fd: fd.as_raw_fd() as u32,
        key: &key as *const u32 as u64,
        value: value.as_mut_ptr() as u64,
        ..Default::default()
    };
    bpf(bpf_cmd::BPF_MAP_LOOKUP_ELEM, &mut attr).map_err(|source| SysError::Call {
        call: "BPF_MAP_LOOKUP_ELEM",
        source,
    })?;
    Ok(value)
}

/// The type ID of the function `name` in the BTF a loaded program carries.
pub fn func_btf_id(prog: &ProgInfo, name: &str) -> Result<u32, SysError> {
    if prog.btf_id == 0 {
        return Err(SysError::NoBtf { id: prog.id });
    }
    let mut attr = IdAttr {
        id: prog.btf_id,
        ..Default::default()
    };
    let btf = fd_result(
        "BPF_BTF_GET_FD_BY_ID",
        bpf(bpf_cmd::BPF_BTF_GET_FD_BY_ID, &mut attr),
    )?;
    let mut data = vec![0u8; 4096];
    loop {
        // SAFETY: plain integers; all zeroes is valid.
        let mut info: bpf_btf_info = unsafe { std::mem::zeroed() };
        info.btf = data.as_mut_ptr() as u64;
        info.btf_size = data.len() as u32;
        use std::os::fd::AsFd;
        info_by_fd(btf.as_fd(), &mut info, "BPF_OBJ_GET_INFO_BY_FD(btf)")?;
        if info.btf_size as usize > data.len() {
            data.resize(info.btf_size as usize, 0);
            continue;
        }
        data.truncate(info.btf_size as usize);
        break;
    }
    let btf = aya::Btf::parse(&data, aya::Endianness::default()).map_err(|e| SysError::Btf {
        id: prog.id,
        detail: e.to_string(),
    })?;
    btf.id_by_type_name_kind(name, BtfKind::Func)
        .map_err(|e| SysError::Btf {
            id: prog.id,
            detail: format!("function {name}: {e}"),
        })
}

/// BPF_LINK_CREATE of a program extension: `prog` replaces the function
/// `btf_id` of `target`. The link holds the attachment while it is open
/// or pinned.
pub fn link_extension(
    prog: BorrowedFd<'_>,
    target: BorrowedFd<'_>,
    btf_id: u32,
) -> Result<OwnedFd, SysError> {
    let mut attr = LinkAttr {
        prog_fd: prog.as_raw_fd() as u32,
        target_fd: target.as_raw_fd() as u32,
        // The attach type of an extension link is 0.
        attach_type: 0,
        target_btf_id: btf_id,
        ..Default::default()
    };
    fd_result(
        "BPF_LINK_CREATE(freplace)",
        bpf(bpf_cmd::BPF_LINK_CREATE, &mut attr),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_layouts_match_the_kernel() {
        // Offsets of union bpf_attr members the kernel reads (uapi/linux/bpf.h).
        assert_eq!(std::mem::size_of::<ObjAttr>(), 16);
        assert_eq!(std::mem::size_of::<IdAttr>(), 12);
        assert_eq!(std::mem::size_of::<InfoAttr>(), 16);
        assert_eq!(std::mem::offset_of!(LinkAttr, target_btf_id), 16);
        assert_eq!(std::mem::offset_of!(LookupAttr, key), 8);
        assert_eq!(std::mem::offset_of!(LookupAttr, value), 16);
    }

    #[test]
    fn missing_pins_name_the_path() {
        let e = obj_get(Path::new("/sys/fs/bpf/xvrrpd-no-such-pin")).unwrap_err();
        assert!(e.to_string().contains("xvrrpd-no-such-pin"), "{e}");
    }
}
