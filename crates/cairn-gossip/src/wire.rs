//! Bounded binary reading and writing shared by the foca codec and the
//! envelope: every length read from the network is checked against the
//! bytes actually present, so a malformed packet becomes an error, never a
//! panic or a large allocation.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::error::DecodeError;

/// A cursor over received bytes.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.bytes(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// A string with a one-byte length prefix.
    pub(crate) fn str8(&mut self) -> Result<&'a str, DecodeError> {
        let n = usize::from(self.u8()?);
        std::str::from_utf8(self.bytes(n)?).map_err(|_| DecodeError::Utf8)
    }

    pub(crate) fn socket_addr(&mut self) -> Result<SocketAddr, DecodeError> {
        let ip = match self.u8()? {
            4 => {
                let b = self.bytes(4)?;
                IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
            }
            6 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(self.bytes(16)?);
                IpAddr::V6(Ipv6Addr::from(a))
            }
            other => return Err(DecodeError::BadTag("address family", other)),
        };
        Ok(SocketAddr::new(ip, self.u16()?))
    }
}

/// Appends big-endian fields to a byte vector.
pub(crate) trait Writer {
    fn wr(&mut self, bytes: &[u8]);

    fn wr_u8(&mut self, v: u8) {
        self.wr(&[v]);
    }
    fn wr_u16(&mut self, v: u16) {
        self.wr(&v.to_be_bytes());
    }
    fn wr_u32(&mut self, v: u32) {
        self.wr(&v.to_be_bytes());
    }
    fn wr_u64(&mut self, v: u64) {
        self.wr(&v.to_be_bytes());
    }
    /// Callers guarantee `s.len() <= 255` (checked when the value is built).
    fn wr_str8(&mut self, s: &str) {
        let n = u8::try_from(s.len()).unwrap_or(u8::MAX);
        self.wr_u8(n);
        self.wr(&s.as_bytes()[..usize::from(n)]);
    }
    fn wr_socket_addr(&mut self, addr: SocketAddr) {
        match addr.ip() {
            IpAddr::V4(ip) => {
                self.wr_u8(4);
                self.wr(&ip.octets());
            }
            IpAddr::V6(ip) => {
                self.wr_u8(6);
                self.wr(&ip.octets());
            }
        }
        self.wr_u16(addr.port());
    }
}

impl Writer for Vec<u8> {
    fn wr(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}
