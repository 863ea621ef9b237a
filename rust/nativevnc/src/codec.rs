//! Reading and writing big-endian RFB fields.
//!
//! A [`Reader`] is a cursor over the bytes received so far. Running out of bytes is
//! [`Incomplete`]: the caller keeps the bytes and tries again when more arrive. A value that can never be
//! valid is a [`ProtocolError`]. [`ReadError`] carries either, so parsers can use `?` for both.

use crate::error::ProtocolError;

/// The input ends before the value does; more bytes are needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Incomplete;

/// Why a parse stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    Incomplete,
    Invalid(ProtocolError),
}

impl From<Incomplete> for ReadError {
    fn from(_: Incomplete) -> Self {
        ReadError::Incomplete
    }
}

impl From<ProtocolError> for ReadError {
    fn from(e: ProtocolError) -> Self {
        ReadError::Invalid(e)
    }
}

pub type Parse<T> = Result<T, ReadError>;

/// A cursor over a byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn consumed(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The unread bytes, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Incomplete> {
        if self.remaining() < n {
            return Err(Incomplete);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], Incomplete> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub fn skip(&mut self, n: usize) -> Result<(), Incomplete> {
        self.take(n).map(|_| ())
    }

    pub fn u8(&mut self) -> Result<u8, Incomplete> {
        Ok(self.array::<1>()?[0])
    }

    pub fn u16(&mut self) -> Result<u16, Incomplete> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub fn u32(&mut self) -> Result<u32, Incomplete> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub fn i32(&mut self) -> Result<i32, Incomplete> {
        Ok(i32::from_be_bytes(self.array()?))
    }
}

/// Big-endian writers on a byte vector.
pub trait Put {
    fn put_u8(&mut self, v: u8);
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    fn put_i32(&mut self, v: i32);
}

impl Put for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }

    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }

    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }

    fn put_i32(&mut self, v: i32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_big_endian_fields() {
        let mut r = Reader::new(&[1, 0x02, 0x03, 0xff, 0xff, 0xfe, 0xfc, 9]);
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u16(), Ok(0x0203));
        assert_eq!(r.i32(), Ok(-260));
        assert_eq!(r.consumed(), 7);
        assert_eq!(r.remaining(), 1);
        assert_eq!(r.u16(), Err(Incomplete));
        assert_eq!(r.u8(), Ok(9), "a failed read consumes nothing");
    }

    #[test]
    fn writes_big_endian_fields() {
        let mut v = Vec::new();
        v.put_u8(3);
        v.put_u16(0x1234);
        v.put_u32(0xdeadbeef);
        v.put_i32(-223);
        assert_eq!(v, [3, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0xff, 0xff, 0xff, 0x21]);
    }
}
