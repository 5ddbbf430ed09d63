//! Netlink and generic-netlink framing, written directly (no libnl). Pure: no syscalls. Used by
//! the rtnetlink codec [`route`] (a fixed ifinfomsg/ifaddrmsg header, then attributes; its
//! socket is `sys::rtnl`) and by IPVS (generic netlink: genlmsghdr, then attributes; its socket
//! is `sys::genl`).
//!
//! ```text
//!  nlmsghdr (16)                          genlmsghdr (4)    attributes
//! +--------+------+-------+-----+-----+  +---+---+-----+  +------+------+-------+-----+
//! | len u32|type  |flags  |seq  |pid  |  |cmd|ver|resvd|  |len   |type  |value  |pad  |
//! |        |u16   |u16    |u32  |u32  |  |u8 |u8 |u16  |  |u16   |u16   |...    |to 4 |
//! +--------+------+-------+-----+-----+  +---+---+-----+  +------+------+-------+-----+
//! ```
//! All integers are host order (little-endian on every target we ship to except MIPS BE,
//! where the kernel also speaks big-endian: netlink is host order by definition), except the
//! few attributes the kernel defines as network order (IPVS ports, IPv4 netmask).
//!
//! [`MsgWriter`] builds a message into a caller-provided buffer (no allocation) and reports
//! overflow instead of panicking. [`Messages`] and [`Attrs`] walk kernel replies with every
//! length checked against the bytes actually present.

pub mod consts;
pub mod route;

use consts::*;

/// Why a buffer could not be built or parsed. Kernel input never panics; it ends up here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NlError {
    /// The output buffer is too small for the message being built.
    BufferFull,
    /// A netlink header claims fewer than 16 bytes or more than the buffer holds.
    BadMessageLength,
    /// An attribute header claims fewer than 4 bytes or more than its container holds.
    BadAttrLength,
    /// A fixed-size attribute has the wrong size.
    BadAttrSize { kind: u16 },
    /// A message is too short for its genl header or error struct.
    Truncated,
    /// A required attribute is missing.
    MissingAttr { kind: u16 },
    /// An attribute has a value this code does not accept (e.g. an unknown address family).
    BadValue { kind: u16 },
}

impl core::fmt::Display for NlError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NlError::BufferFull => write!(f, "netlink buffer full"),
            NlError::BadMessageLength => write!(f, "netlink message length out of bounds"),
            NlError::BadAttrLength => write!(f, "netlink attribute length out of bounds"),
            NlError::BadAttrSize { kind } => write!(f, "attribute {kind} has the wrong size"),
            NlError::Truncated => write!(f, "netlink message truncated"),
            NlError::MissingAttr { kind } => write!(f, "attribute {kind} missing"),
            NlError::BadValue { kind } => write!(f, "attribute {kind} has an unsupported value"),
        }
    }
}

/// Netlink alignment: headers and attribute values are padded to 4 bytes.
pub const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Builds one netlink message (header, genl header, attributes) in place.
pub struct MsgWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
    /// Offsets of open nests, whose length is patched when they close.
    nests: [usize; 4],
    depth: usize,
    err: Option<NlError>,
}

impl<'a> MsgWriter<'a> {
    /// Starts a message: nlmsghdr with len patched by [`finish`](Self::finish). pid is left 0
    /// so the kernel routes the reply to this socket's port.
    pub fn new(buf: &'a mut [u8], nl_type: u16, flags: u16, seq: u32) -> Self {
        let mut w = MsgWriter {
            buf,
            len: 0,
            nests: [0; 4],
            depth: 0,
            err: None,
        };
        w.put(&0u32.to_ne_bytes());
        w.put(&nl_type.to_ne_bytes());
        w.put(&flags.to_ne_bytes());
        w.put(&seq.to_ne_bytes());
        w.put(&0u32.to_ne_bytes());
        w
    }

    /// Starts a generic netlink request: nlmsghdr + genlmsghdr {cmd, version, 0}.
    pub fn genl(
        buf: &'a mut [u8],
        family: u16,
        flags: u16,
        seq: u32,
        cmd: u8,
        version: u8,
    ) -> Self {
        let mut w = Self::new(buf, family, flags, seq);
        w.put(&[cmd, version, 0, 0]);
        w
    }

    /// A fixed family header after nlmsghdr (rtnetlink's ifinfomsg, ifaddrmsg...), padded
    /// to 4 bytes. Call before any attribute.
    pub fn header(&mut self, bytes: &[u8]) {
        self.put(bytes);
        self.pad();
    }

    fn put(&mut self, bytes: &[u8]) {
        if self.err.is_some() {
            return;
        }
        let end = self.len + bytes.len();
        match self.buf.get_mut(self.len..end) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.len = end;
            }
            None => self.err = Some(NlError::BufferFull),
        }
    }

    fn pad(&mut self) {
        let padded = align4(self.len);
        while self.len < padded && self.err.is_none() {
            self.put(&[0]);
        }
    }

    fn patch_u16(&mut self, at: usize, v: u16) {
        if let Some(dst) = self.buf.get_mut(at..at + 2) {
            dst.copy_from_slice(&v.to_ne_bytes());
        }
    }

    /// One attribute: header (len excludes padding), value, zero padding to 4 bytes.
    pub fn attr(&mut self, kind: u16, value: &[u8]) {
        let len = NLA_HDRLEN + value.len();
        if len > u16::MAX as usize {
            self.err = Some(NlError::BufferFull);
            return;
        }
        self.put(&(len as u16).to_ne_bytes());
        self.put(&kind.to_ne_bytes());
        self.put(value);
        self.pad();
    }

    pub fn attr_u8(&mut self, kind: u16, v: u8) {
        self.attr(kind, &[v]);
    }
    pub fn attr_u16(&mut self, kind: u16, v: u16) {
        self.attr(kind, &v.to_ne_bytes());
    }
    pub fn attr_be16(&mut self, kind: u16, v: u16) {
        self.attr(kind, &v.to_be_bytes());
    }
    pub fn attr_u32(&mut self, kind: u16, v: u32) {
        self.attr(kind, &v.to_ne_bytes());
    }
    /// NUL-terminated string, as the kernel's NLA_NUL_STRING policy wants.
    pub fn attr_str(&mut self, kind: u16, s: &str) {
        let len = NLA_HDRLEN + s.len() + 1;
        if len > u16::MAX as usize {
            self.err = Some(NlError::BufferFull);
            return;
        }
        self.put(&(len as u16).to_ne_bytes());
        self.put(&kind.to_ne_bytes());
        self.put(s.as_bytes());
        self.put(&[0]);
        self.pad();
    }

    /// Opens a nested attribute. The type carries NLA_F_NESTED, as ipvsadm sends it.
    pub fn nest_start(&mut self, kind: u16) {
        if self.depth >= self.nests.len() {
            self.err = Some(NlError::BufferFull);
            return;
        }
        self.nests[self.depth] = self.len;
        self.depth += 1;
        self.put(&0u16.to_ne_bytes());
        self.put(&(kind | NLA_F_NESTED).to_ne_bytes());
    }

    pub fn nest_end(&mut self) {
        if self.depth == 0 {
            return;
        }
        self.depth -= 1;
        let start = self.nests[self.depth];
        let len = self.len - start;
        if len > u16::MAX as usize {
            self.err = Some(NlError::BufferFull);
            return;
        }
        self.patch_u16(start, len as u16);
    }

    /// Patches nlmsg_len and returns the finished message length.
    pub fn finish(self) -> Result<usize, NlError> {
        if let Some(e) = self.err {
            return Err(e);
        }
        let len = self.len as u32;
        if let Some(dst) = self.buf.get_mut(0..4) {
            dst.copy_from_slice(&len.to_ne_bytes());
        }
        Ok(self.len)
    }
}

fn ne_u16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|s| u16::from_ne_bytes([s[0], s[1]]))
}

fn ne_u32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

/// One netlink message as received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NlMsg<'a> {
    pub nl_type: u16,
    pub flags: u16,
    pub seq: u32,
    pub pid: u32,
    /// Everything after the 16-byte header, up to nlmsg_len.
    pub payload: &'a [u8],
}

impl<'a> NlMsg<'a> {
    /// The genl header and the attribute stream after it.
    pub fn genl(&self) -> Result<(u8, Attrs<'a>), NlError> {
        let cmd = *self.payload.first().ok_or(NlError::Truncated)?;
        let attrs = self.payload.get(GENL_HDRLEN..).ok_or(NlError::Truncated)?;
        Ok((cmd, Attrs::new(attrs)))
    }

    /// For NLMSG_ERROR: the (negative) errno, 0 for an ACK.
    pub fn error_code(&self) -> Result<i32, NlError> {
        ne_u32(self.payload, 0)
            .map(|c| c as i32)
            .ok_or(NlError::Truncated)
    }

    /// For NLMSG_ERROR: the (negative) errno, 0 for an ACK, and the echoed request's seq.
    pub fn error(&self) -> Result<(i32, u32), NlError> {
        let code = self.error_code()?;
        // Echoed request header: len, type, flags, seq, pid.
        let seq = ne_u32(self.payload, 4 + 8).ok_or(NlError::Truncated)?;
        Ok((code, seq))
    }
}

/// Iterates the netlink messages in one recv buffer. Stops (yielding one error) at the first
/// header whose length does not fit, so a corrupt buffer is never read past its end.
pub struct Messages<'a> {
    buf: &'a [u8],
    failed: bool,
}

impl<'a> Messages<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Messages { buf, failed: false }
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<NlMsg<'a>, NlError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.buf.is_empty() {
            return None;
        }
        let header = (
            ne_u32(self.buf, 0),
            ne_u16(self.buf, 4),
            ne_u16(self.buf, 6),
            ne_u32(self.buf, 8),
            ne_u32(self.buf, 12),
        );
        let (Some(len), Some(nl_type), Some(flags), Some(seq), Some(pid)) = header else {
            self.failed = true;
            return Some(Err(NlError::BadMessageLength));
        };
        let len = len as usize;
        if len < NLMSG_HDRLEN || len > self.buf.len() {
            self.failed = true;
            return Some(Err(NlError::BadMessageLength));
        }
        let payload = &self.buf[NLMSG_HDRLEN..len];
        // The next message starts at the aligned end; the last one may be unpadded.
        let next = align4(len).min(self.buf.len());
        self.buf = &self.buf[next..];
        Some(Ok(NlMsg {
            nl_type,
            flags,
            seq,
            pid,
            payload,
        }))
    }
}

/// One attribute: type without the NESTED/BYTEORDER flags, and its unpadded value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr<'a> {
    pub kind: u16,
    pub nested: bool,
    pub value: &'a [u8],
}

impl<'a> Attr<'a> {
    pub fn nested(&self) -> Attrs<'a> {
        Attrs::new(self.value)
    }
    pub fn u8(&self) -> Result<u8, NlError> {
        match self.value {
            [v] => Ok(*v),
            _ => Err(NlError::BadAttrSize { kind: self.kind }),
        }
    }
    pub fn u16(&self) -> Result<u16, NlError> {
        match self.value {
            [a, b] => Ok(u16::from_ne_bytes([*a, *b])),
            _ => Err(NlError::BadAttrSize { kind: self.kind }),
        }
    }
    pub fn be16(&self) -> Result<u16, NlError> {
        self.u16().map(u16::from_be)
    }
    pub fn u32(&self) -> Result<u32, NlError> {
        match self.value {
            [a, b, c, d] => Ok(u32::from_ne_bytes([*a, *b, *c, *d])),
            _ => Err(NlError::BadAttrSize { kind: self.kind }),
        }
    }
    /// A NUL-terminated string; bytes after the first NUL are ignored, invalid UTF-8 is an error.
    pub fn str(&self) -> Result<&'a str, NlError> {
        let end = self
            .value
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.value.len());
        core::str::from_utf8(&self.value[..end]).map_err(|_| NlError::BadValue { kind: self.kind })
    }
}

/// Iterates an attribute stream (a message body or a nest's value).
#[derive(Clone)]
pub struct Attrs<'a> {
    buf: &'a [u8],
    failed: bool,
}

impl<'a> Attrs<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Attrs { buf, failed: false }
    }

    /// The first attribute of this type, if any. Malformed streams yield an error.
    pub fn find(&self, kind: u16) -> Result<Option<Attr<'a>>, NlError> {
        for a in self.clone() {
            let a = a?;
            if a.kind == kind {
                return Ok(Some(a));
            }
        }
        Ok(None)
    }

    pub fn get(&self, kind: u16) -> Result<Attr<'a>, NlError> {
        self.find(kind)?.ok_or(NlError::MissingAttr { kind })
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>, NlError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.buf.len() < NLA_HDRLEN {
            // Fewer than 4 trailing bytes can only be padding.
            return None;
        }
        let (Some(len), Some(raw_type)) = (ne_u16(self.buf, 0), ne_u16(self.buf, 2)) else {
            self.failed = true;
            return Some(Err(NlError::BadAttrLength));
        };
        let len = len as usize;
        if len < NLA_HDRLEN || len > self.buf.len() {
            self.failed = true;
            return Some(Err(NlError::BadAttrLength));
        }
        let value = &self.buf[NLA_HDRLEN..len];
        let next = align4(len).min(self.buf.len());
        self.buf = &self.buf[next..];
        Some(Ok(Attr {
            kind: raw_type & NLA_TYPE_MASK,
            nested: raw_type & NLA_F_NESTED != 0,
            value,
        }))
    }
}

/// Builds CTRL_CMD_GETFAMILY for `name`, sent to GENL_ID_CTRL (vector V1).
pub fn encode_get_family(buf: &mut [u8], seq: u32, name: &str) -> Result<usize, NlError> {
    let mut w = MsgWriter::genl(
        buf,
        GENL_ID_CTRL,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        CTRL_CMD_GETFAMILY,
        1,
    );
    w.attr_str(CTRL_ATTR_FAMILY_NAME, name);
    w.finish()
}

/// Reads the family id out of a CTRL_CMD_NEWFAMILY reply (vector V2).
pub fn decode_family_id(msg: &NlMsg<'_>) -> Result<u16, NlError> {
    let (cmd, attrs) = msg.genl()?;
    if msg.nl_type != GENL_ID_CTRL || cmd != CTRL_CMD_NEWFAMILY {
        return Err(NlError::BadValue { kind: 0 });
    }
    attrs.get(CTRL_ATTR_FAMILY_ID)?.u16()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_padding_and_nest_length() {
        let mut buf = [0u8; 64];
        let mut w = MsgWriter::genl(&mut buf, 0x20, 5, 1, 1, 1);
        w.nest_start(1);
        w.attr_u16(1, 2);
        w.attr_str(6, "rr");
        w.nest_end();
        let n = w.finish().unwrap();
        assert_eq!(n, 16 + 4 + 4 + 8 + 8);
        // Netlink headers and integer attributes are in host byte order (the test also runs
        // on big-endian mips_24kc under qemu).
        let ne = |v: u16| v.to_ne_bytes();
        assert_eq!(&buf[20..24], &[ne(20), ne(1 | 0x8000)].concat()[..]);
        assert_eq!(&buf[24..32], &[ne(6), ne(1), ne(2), [0, 0]].concat()[..]);
        assert_eq!(
            &buf[32..40],
            &[ne(7), ne(6), [b'r', b'r'], [0, 0]].concat()[..]
        );
    }

    #[test]
    fn writer_reports_full_buffer_instead_of_panicking() {
        let mut buf = [0u8; 24];
        let mut w = MsgWriter::genl(&mut buf, 0x20, 5, 1, 1, 1);
        w.attr_u32(1, 7);
        assert_eq!(w.finish(), Err(NlError::BufferFull));
    }

    #[test]
    fn message_length_beyond_buffer_is_an_error() {
        let mut buf = [0u8; 20];
        buf[0] = 200;
        let mut it = Messages::new(&buf);
        assert_eq!(it.next(), Some(Err(NlError::BadMessageLength)));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn attribute_length_beyond_container_is_an_error() {
        let buf = [40u8, 0, 1, 0, 0, 0, 0, 0];
        let mut it = Attrs::new(&buf);
        assert_eq!(it.next(), Some(Err(NlError::BadAttrLength)));
        assert_eq!(it.next(), None);
        let short = [2u8, 0, 1, 0];
        assert_eq!(Attrs::new(&short).next(), Some(Err(NlError::BadAttrLength)));
    }

    #[test]
    fn every_truncation_of_a_message_is_rejected_without_panic() {
        let mut buf = [0u8; 64];
        let mut w = MsgWriter::genl(&mut buf, 0x20, 5, 1, 1, 1);
        w.nest_start(1);
        w.attr_u32(5, 7);
        w.attr_str(6, "wlc");
        w.nest_end();
        let n = w.finish().unwrap();
        for cut in 1..n {
            // The header claims n bytes, so every shorter buffer is rejected as a whole.
            let mut it = Messages::new(&buf[..cut]);
            assert_eq!(it.next(), Some(Err(NlError::BadMessageLength)), "cut {cut}");
            // The attribute stream alone, cut short: an error or a clean end, never a panic.
            let attrs = &buf[20..cut.max(20)];
            let parsed: Vec<_> = Attrs::new(attrs).collect();
            let full = cut >= n;
            assert!(full || parsed.is_empty() || parsed.iter().any(|a| a.is_err()));
        }
    }
}
