//! Whole advert frames, sent in batches: one AF_PACKET socket per
//! interface, one `sendmmsg` for every multicast advert due at the same
//! moment on it, past the qdisc.
//!
//! A master of many instances at short intervals sends tens of thousands of
//! adverts a second. A multicast advert needs no routing and no neighbour
//! lookup (its MAC follows from the group), so its frame is built once per
//! priority and only handed to the driver. Unicast adverts still go through
//! the raw IP socket ([`super::socket`]), which resolves the next hop.

use std::{
    io,
    mem::{size_of, zeroed},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum FramesError {
    #[error("interface index {ifindex}: {call}: {source}")]
    Syscall {
        call: &'static str,
        ifindex: u32,
        #[source]
        source: io::Error,
    },
}

/// Most frames one `sendmmsg` carries (the kernel's UIO_MAXIOV).
const MAX_BATCH: usize = 1024;

/// A send-only AF_PACKET socket bound to one interface.
#[derive(Debug)]
pub struct FrameSender {
    fd: OwnedFd,
    ifindex: u32,
}

impl FrameSender {
    pub fn open(ifindex: u32) -> Result<Self, FramesError> {
        let err = |call| {
            move |source| FramesError::Syscall {
                call,
                ifindex,
                source,
            }
        };
        // Protocol 0: this socket receives nothing.
        // SAFETY: plain socket(2); the fd is owned right away.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(err("socket(AF_PACKET)")(io::Error::last_os_error()));
        }
        // SAFETY: fd is a fresh, valid descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_ll is plain data; all-zero is valid.
        let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: binding a valid sockaddr_ll of the right length.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc != 0 {
            return Err(err("bind(AF_PACKET)")(io::Error::last_os_error()));
        }
        // Straight to the driver: adverts must not wait in a queue behind
        // bulk traffic. Not fatal where unsupported.
        let one: libc::c_int = 1;
        // SAFETY: a valid c_int for PACKET_QDISC_BYPASS.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_QDISC_BYPASS,
                (&one as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as u32,
            )
        };
        Ok(FrameSender { fd, ifindex })
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Sends every frame, as few `sendmmsg` calls as it takes; returns how
    /// many went out.
    pub fn send_batch(&self, frames: &[&[u8]]) -> Result<usize, FramesError> {
        let mut sent = 0;
        for chunk in frames.chunks(MAX_BATCH) {
            let mut iovecs: Vec<libc::iovec> = chunk
                .iter()
                .map(|f| libc::iovec {
                    iov_base: f.as_ptr() as *mut libc::c_void,
                    iov_len: f.len(),
                })
                .collect();
            let mut headers: Vec<libc::mmsghdr> = iovecs
                .iter_mut()
                .map(|iov| {
                    // SAFETY: msghdr is plain data; all-zero is valid.
                    let mut h: libc::mmsghdr = unsafe { zeroed() };
                    h.msg_hdr.msg_iov = iov;
                    h.msg_hdr.msg_iovlen = 1;
                    h
                })
                .collect();
            let mut offset = 0;
            while offset < headers.len() {
                // SAFETY: every header points at one live iovec, each over
                // a frame borrowed for the duration of the call.
                let n = unsafe {
                    libc::sendmmsg(
                        self.fd.as_raw_fd(),
                        headers[offset..].as_mut_ptr(),
                        (headers.len() - offset) as u32,
                        0,
                    )
                };
                if n < 0 {
                    let source = io::Error::last_os_error();
                    if source.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    return Err(FramesError::Syscall {
                        call: "sendmmsg",
                        ifindex: self.ifindex,
                        source,
                    });
                }
                offset += n as usize;
                sent += n as usize;
            }
        }
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{
        network::testns::{Capture, VethPair},
        packet::{build_frame, parse_frame, Advert, Auth, FrameSpec, Version},
    };

    #[test]
    fn a_batch_reaches_the_wire_frame_for_frame() {
        crate::testing::require_root!();
        let pair = VethPair::new();
        let cap = Capture::open(&pair.b, &pair.b_if);
        let adverts: Vec<Vec<u8>> = (1..=40u8)
            .map(|vrid| {
                let advert = Advert {
                    version: Version::V3,
                    vrid,
                    priority: 200,
                    interval_cs: 1,
                    addrs: vec!["192.0.2.100".parse().unwrap()],
                    auth: Auth::None,
                };
                let spec = FrameSpec::multicast("192.0.2.1".parse().unwrap());
                build_frame(&spec, &advert).unwrap()
            })
            .collect();
        let a_if = pair.a_if.clone();
        let sent = pair.a.run(move || async move {
            let ifindex = nix::net::if_::if_nametoindex(a_if.as_str()).unwrap();
            let tx = FrameSender::open(ifindex).unwrap();
            let frames: Vec<&[u8]> = adverts.iter().map(Vec::as_slice).collect();
            tx.send_batch(&frames).unwrap()
        });
        assert_eq!(sent, 40);
        let got = cap.collect(Duration::from_millis(500), |f| parse_frame(f).is_ok());
        let vrids: Vec<u8> = got
            .iter()
            .map(|f| parse_frame(f).unwrap().advert.vrid)
            .collect();
        assert_eq!(vrids, (1..=40).collect::<Vec<u8>>());
    }
}
