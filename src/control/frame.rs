//! Framing of control messages:
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 payload length N (u32, little endian)         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |              payload: N bytes of postcard ...                 |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |        CRC-32 (ISO-HDLC) of length + payload (u32, LE)        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The length is checked against the reader's limit before anything else, so a garbage
//! prefix claiming 4 GB costs nothing; the CRC catches a torn or foreign stream before
//! postcard sees it.

use crc::{Crc, CRC_32_ISO_HDLC};
use serde::{de::DeserializeOwned, Serialize};

static CRC32: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);

/// Bytes around the payload: length prefix and CRC.
pub const OVERHEAD: usize = 8;
/// Largest request payload the daemon reads (a request names at most an instance).
pub const MAX_REQUEST: usize = 256;
/// Largest response payload the client accepts (a status of every instance, check and real
/// server the config limits allow fits).
pub const MAX_RESPONSE: usize = 4 << 20;

/// Why a frame could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The length prefix exceeds the reader's limit.
    Oversize { len: u32, max: usize },
    /// The CRC does not match the bytes.
    Crc,
    /// The CRC matched but postcard could not decode the payload (another version?).
    Decode,
    /// The message does not fit the writer's limit.
    TooLarge,
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FrameError::Oversize { len, max } => write!(f, "frame of {len} bytes, limit {max}"),
            FrameError::Crc => f.write_str("CRC mismatch"),
            FrameError::Decode => f.write_str("undecodable message"),
            FrameError::TooLarge => f.write_str("message too large"),
        }
    }
}

/// Append the frame of `msg` to `out`.
pub fn encode<T: Serialize>(msg: &T, max: usize, out: &mut Vec<u8>) -> Result<(), FrameError> {
    let payload = postcard::to_allocvec(msg).map_err(|_| FrameError::TooLarge)?;
    if payload.len() > max {
        return Err(FrameError::TooLarge);
    }
    let start = out.len();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&payload);
    let crc = CRC32.checksum(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// Bytes the frame at the start of `buf` occupies, once its length prefix is there:
/// `Ok(None)` = need more bytes to know.
pub fn frame_len(buf: &[u8], max: usize) -> Result<Option<usize>, FrameError> {
    let Some(prefix) = buf.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    if len as usize > max {
        return Err(FrameError::Oversize { len, max });
    }
    Ok(Some(len as usize + OVERHEAD))
}

/// Decode the frame at the start of `buf`: `Ok(None)` while it is incomplete (a partial
/// read), else the message and how many bytes it used.
pub fn decode<T: DeserializeOwned>(
    buf: &[u8],
    max: usize,
) -> Result<Option<(T, usize)>, FrameError> {
    let Some(total) = frame_len(buf, max)? else {
        return Ok(None);
    };
    let Some(frame) = buf.get(..total) else {
        return Ok(None);
    };
    let (body, crc) = frame.split_at(total - 4);
    let crc = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if CRC32.checksum(body) != crc {
        return Err(FrameError::Crc);
    }
    let msg = postcard::from_bytes(&body[4..]).map_err(|_| FrameError::Decode)?;
    Ok(Some((msg, total)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{Request, Response};

    fn framed(r: &Request) -> Vec<u8> {
        let mut v = Vec::new();
        encode(r, MAX_REQUEST, &mut v).unwrap();
        v
    }

    #[test]
    fn round_trip_every_request() {
        for r in [
            Request::Status,
            Request::Maintenance(true),
            Request::Priority {
                name: "vi1".into(),
                priority: Some(200),
            },
            Request::Priority {
                name: "vi1".into(),
                priority: None,
            },
            Request::Reload,
            Request::Garp { name: "x".into() },
        ] {
            let f = framed(&r);
            let (back, used): (Request, usize) = decode(&f, MAX_REQUEST).unwrap().unwrap();
            assert_eq!(back, r);
            assert_eq!(used, f.len());
        }
    }

    #[test]
    fn partial_reads_are_incomplete_until_the_last_byte() {
        let f = framed(&Request::Garp { name: "vi1".into() });
        for cut in 0..f.len() {
            assert_eq!(
                decode::<Request>(&f[..cut], MAX_REQUEST),
                Ok(None),
                "cut {cut}"
            );
        }
        // Bytes after the frame are not part of it.
        let mut two = f.clone();
        two.extend_from_slice(&f);
        let (_, used): (Request, usize) = decode(&two, MAX_REQUEST).unwrap().unwrap();
        assert_eq!(used, f.len());
    }

    #[test]
    fn any_flipped_bit_is_a_crc_error() {
        let f = framed(&Request::Maintenance(false));
        for byte in 4..f.len() {
            for bit in 0..8 {
                let mut g = f.clone();
                g[byte] ^= 1 << bit;
                assert_eq!(
                    decode::<Request>(&g, MAX_REQUEST),
                    Err(FrameError::Crc),
                    "byte {byte} bit {bit}"
                );
            }
        }
    }

    #[test]
    fn oversize_length_is_refused_before_the_payload_arrives() {
        let mut g = vec![0u8; 4];
        g[..4].copy_from_slice(&(MAX_REQUEST as u32 + 1).to_le_bytes());
        assert_eq!(
            decode::<Request>(&g, MAX_REQUEST),
            Err(FrameError::Oversize {
                len: MAX_REQUEST as u32 + 1,
                max: MAX_REQUEST
            })
        );
        let mut out = Vec::new();
        let big = Request::Garp {
            name: "x".repeat(MAX_REQUEST),
        };
        assert_eq!(
            encode(&big, MAX_REQUEST, &mut out),
            Err(FrameError::TooLarge)
        );
        assert!(out.is_empty());
    }

    #[test]
    fn valid_crc_over_garbage_is_a_decode_error() {
        let payload = [0xffu8, 0xff, 0xff, 0xff, 0xff];
        let mut f = (payload.len() as u32).to_le_bytes().to_vec();
        f.extend_from_slice(&payload);
        let crc = CRC32.checksum(&f);
        f.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(
            decode::<Response>(&f, MAX_RESPONSE),
            Err(FrameError::Decode)
        );
    }
}
