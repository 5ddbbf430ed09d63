//! The CLI's side: one request, one answer, with a timeout so a wedged daemon cannot hang
//! the command.

use std::io::{self, Read, Write};
use std::path::Path;

use super::frame::{self, MAX_REQUEST, MAX_RESPONSE};
use super::{Request, Response};

/// Longest wait for any read or write (a reload parses the config while we wait).
pub const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn invalid(e: impl ToString) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Send `req` to the daemon listening on `path` and wait for its answer.
pub fn request(path: &Path, req: &Request) -> io::Result<Response> {
    let mut s = crate::sys::unix::connect(path, TIMEOUT)?;
    let mut out = Vec::new();
    frame::encode(req, MAX_REQUEST, &mut out).map_err(invalid)?;
    // A daemon refusing us (not root) answers and closes before reading: the write may
    // fail with EPIPE while its answer is waiting to be read, so read before reporting it.
    let written = s.write_all(&out);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some((resp, _)) = frame::decode::<Response>(&buf, MAX_RESPONSE).map_err(invalid)? {
            return Ok(resp);
        }
        let n = match s.read(&mut chunk) {
            Ok(n) => n,
            Err(e) => return Err(written.err().unwrap_or(e)),
        };
        if n == 0 {
            written?;
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the daemon closed the connection without answering",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
