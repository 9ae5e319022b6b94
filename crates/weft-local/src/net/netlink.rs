//! Netlink messages built by hand: a header, the family's fixed header, and attributes (nested
//! where needed), sent on a socket that waits for the kernel's acknowledgement of each one.
//! Enough for rtnetlink (links, addresses, routes) and nfnetlink (nftables batches); no
//! external tools and no C library.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, sendto,
    setsockopt, socket, sockopt,
};
use nix::sys::time::TimeVal;

pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
pub const NLM_F_APPEND: u16 = 0x800;
const NLMSG_ERROR: u16 = 2;
const NLA_F_NESTED: u16 = 0x8000;
const HEADER: usize = 16;

/// One netlink message under construction.
#[derive(Debug, Clone)]
pub struct Msg {
    buf: Vec<u8>,
    nests: Vec<usize>,
    /// What the message does, for errors: `adding link weft0`.
    pub what: String,
}

impl Msg {
    pub fn new(ty: u16, flags: u16, what: impl Into<String>) -> Msg {
        let mut buf = vec![0u8; HEADER];
        buf[4..6].copy_from_slice(&ty.to_ne_bytes());
        buf[6..8].copy_from_slice(&flags.to_ne_bytes());
        Msg {
            buf,
            nests: Vec::new(),
            what: what.into(),
        }
    }

    fn flags(&self) -> u16 {
        u16::from_ne_bytes([self.buf[6], self.buf[7]])
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    /// The family's fixed header (`ifinfomsg`, `nfgenmsg`, …).
    pub fn raw(mut self, bytes: &[u8]) -> Msg {
        self.buf.extend_from_slice(bytes);
        self.pad();
        self
    }

    pub fn attr(mut self, ty: u16, data: &[u8]) -> Msg {
        let len = (4 + data.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
        self
    }

    /// A NUL-terminated string.
    pub fn str(self, ty: u16, s: &str) -> Msg {
        let mut data = s.as_bytes().to_vec();
        data.push(0);
        self.attr(ty, &data)
    }

    /// A u32 in host byte order (rtnetlink).
    pub fn u32(self, ty: u16, v: u32) -> Msg {
        self.attr(ty, &v.to_ne_bytes())
    }

    /// A u32 in network byte order (nftables).
    pub fn be32(self, ty: u16, v: u32) -> Msg {
        self.attr(ty, &v.to_be_bytes())
    }

    /// Opens a nested attribute; [`Msg::end`] closes it.
    pub fn begin(mut self, ty: u16) -> Msg {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        self
    }

    pub fn end(mut self) -> Msg {
        let start = self.nests.pop().expect("end() without begin()");
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    fn finish(&mut self, seq: u32) {
        debug_assert!(self.nests.is_empty(), "unclosed nested attribute");
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
    }
}

/// A netlink socket of one protocol, in the network namespace of the thread that opened it.
#[derive(Debug)]
pub struct Socket {
    fd: OwnedFd,
    seq: u32,
}

impl Socket {
    pub fn open(protocol: SockProtocol) -> io::Result<Socket> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            protocol,
        )?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
        let timeout = TimeVal::from(libc_timeval(Duration::from_secs(5)));
        setsockopt(&fd, sockopt::ReceiveTimeout, &timeout)?;
        Ok(Socket { fd, seq: 0 })
    }

    /// Sends `msgs` in one datagram and waits for the acknowledgement of every message that
    /// asked for one; the first refusal is returned, naming the message.
    pub fn request(&mut self, mut msgs: Vec<Msg>) -> io::Result<()> {
        let base = self.seq + 1;
        let mut out = Vec::new();
        let mut waiting = Vec::new();
        for (i, m) in msgs.iter_mut().enumerate() {
            let seq = base + i as u32;
            m.finish(seq);
            if m.flags() & NLM_F_ACK != 0 {
                waiting.push(seq);
            }
            out.extend_from_slice(&m.buf);
        }
        self.seq = base + msgs.len() as u32;
        sendto(
            self.fd.as_raw_fd(),
            &out,
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )?;
        let mut buf = vec![0u8; 65536];
        while !waiting.is_empty() {
            let n = recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()).map_err(|e| {
                if e == nix::errno::Errno::EAGAIN {
                    io::Error::new(io::ErrorKind::TimedOut, "no answer from the kernel")
                } else {
                    e.into()
                }
            })?;
            for (seq, errno) in acks(&buf[..n]) {
                waiting.retain(|s| *s != seq);
                if errno != 0 {
                    let what = seq
                        .checked_sub(base)
                        .and_then(|i| msgs.get(i as usize))
                        .map_or("a netlink request", |m| m.what.as_str());
                    let e = io::Error::from_raw_os_error(-errno);
                    return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
                }
            }
        }
        Ok(())
    }
}

fn libc_timeval(d: Duration) -> nix::libc::timeval {
    nix::libc::timeval {
        tv_sec: d.as_secs() as _,
        tv_usec: d.subsec_micros() as _,
    }
}

/// The (sequence number, error) of every acknowledgement in a datagram; 0 is success.
fn acks(mut data: &[u8]) -> Vec<(u32, i32)> {
    let mut out = Vec::new();
    while data.len() >= HEADER {
        let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
        let ty = u16::from_ne_bytes([data[4], data[5]]);
        if len < HEADER || len > data.len() {
            break;
        }
        if ty == NLMSG_ERROR && len >= HEADER + 4 + HEADER {
            let errno = i32::from_ne_bytes([data[16], data[17], data[18], data[19]]);
            // The refused message's own header follows the error code.
            let seq = u32::from_ne_bytes([data[28], data[29], data[30], data[31]]);
            out.push((seq, errno));
        }
        let step = len.div_ceil(4) * 4;
        data = &data[step.min(data.len())..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_nests_measure_their_content() {
        let mut m = Msg::new(16, NLM_F_REQUEST, "test")
            .raw(&[1, 2, 3])
            .begin(18)
            .str(1, "veth")
            .end();
        m.finish(7);
        let b = &m.buf;
        assert_eq!(b.len(), 16 + 4 + 4 + 12);
        assert_eq!(
            u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize,
            b.len()
        );
        assert_eq!(u32::from_ne_bytes([b[8], b[9], b[10], b[11]]), 7);
        // Nest header: its own 4 bytes + the string attribute (4 + "veth\0" padded to 8).
        assert_eq!(u16::from_ne_bytes([b[20], b[21]]), 16);
        assert_eq!(u16::from_ne_bytes([b[22], b[23]]), 18 | NLA_F_NESTED);
        assert_eq!(&b[28..33], b"veth\0");
    }

    #[test]
    fn acknowledgements_carry_the_refused_sequence_number() {
        let mut ack = Vec::new();
        ack.extend_from_slice(&36u32.to_ne_bytes());
        ack.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        ack.extend_from_slice(&[0; 10]);
        ack.extend_from_slice(&(-17i32).to_ne_bytes());
        let mut echoed = [0u8; 16];
        echoed[8..12].copy_from_slice(&42u32.to_ne_bytes());
        ack.extend_from_slice(&echoed);
        assert_eq!(acks(&ack), [(42, -17)]);
    }
}
