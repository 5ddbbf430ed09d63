//! A plain SMTP client (RFC 5321) as a pure state machine, for e-mail alerts.
//!
//! One [`SmtpSession`] delivers one mail over one connection: greeting, `HELO`, `MAIL FROM`,
//! one `RCPT TO` per recipient, `DATA`, the dot-stuffed message ending in `.`, `QUIT`. It
//! never touches a socket or a clock: the daemon connects, writes [`SmtpSession::tx_pending`],
//! and feeds back what happened as an [`Input`]. Every wait has a deadline
//! ([`SmtpSession::poll_at`]), so a dead or slow server only ever costs this mail, never the
//! poll loop.

use crate::base::Instant;
use core::time::Duration;

/// A server reply line longer than this is garbage (RFC 5321 4.5.3.1.5 allows 512 octets).
const MAX_REPLY_LINE: usize = 512;
/// Lines of one multi-line reply we accept before calling it garbage (EHLO lists ~10).
const MAX_REPLY_LINES: usize = 64;

/// What the daemon observed on the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input<'a> {
    /// Time passed; deadlines are checked.
    Tick,
    /// The non-blocking connect completed.
    Connected,
    /// The connect, a read or a write failed (the errno text is the daemon's to log).
    IoFailed,
    /// Bytes read from the server.
    Received(&'a [u8]),
    /// This many bytes of `tx_pending()` were written.
    Sent(usize),
    /// The server closed the connection (read returned 0).
    Closed,
}

/// The step of the dialogue a reply answers, named after the command (RFC 5321 4.3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Connect,
    Greeting,
    Helo,
    MailFrom,
    RcptTo,
    Data,
    Message,
    Quit,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Connect => "connect",
            Stage::Greeting => "greeting",
            Stage::Helo => "HELO",
            Stage::MailFrom => "MAIL FROM",
            Stage::RcptTo => "RCPT TO",
            Stage::Data => "DATA",
            Stage::Message => "end of data",
            Stage::Quit => "QUIT",
        }
    }
}

/// Why a mail was not delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpError {
    /// Connect did not complete within the connect timeout.
    ConnectTimeout,
    /// The whole exchange exceeded the per-mail deadline.
    Timeout(Stage),
    /// The server answered with this code where another class was required.
    Rejected(Stage, u16),
    /// The server sent something that is not an SMTP reply.
    Garbage(Stage),
    /// The connection failed or was closed before the message was accepted.
    Io(Stage),
}

impl core::fmt::Display for SmtpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SmtpError::ConnectTimeout => write!(f, "connect timed out"),
            SmtpError::Timeout(s) => write!(f, "timed out waiting at {}", s.as_str()),
            SmtpError::Rejected(s, c) => write!(f, "server replied {c} to {}", s.as_str()),
            SmtpError::Garbage(s) => write!(f, "malformed reply at {}", s.as_str()),
            SmtpError::Io(s) => write!(f, "connection lost at {}", s.as_str()),
        }
    }
}

/// Where the session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Running,
    /// The server accepted the message (250 after `.`). Reported once.
    Delivered,
    Failed(SmtpError),
}

/// One mail: envelope and the text parts of the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    /// Body lines; line endings are normalised to CRLF and leading dots stuffed on sending.
    pub body: String,
}

/// The message as sent after `DATA`: headers, a blank line, the dot-stuffed body and the
/// terminating `.` line (RFC 5321 4.5.2 transparency, 4.1.1.4 end of data).
pub fn render_message(mail: &Mail, helo: &str, date: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + mail.body.len());
    let header = |out: &mut Vec<u8>, name: &str, value: &str| {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        // A CR or LF in a value would start a new header; configured text never holds one,
        // but an instance name or reason must not be able to forge headers either.
        out.extend(value.bytes().filter(|b| *b != b'\r' && *b != b'\n'));
        out.extend_from_slice(b"\r\n");
    };
    header(&mut out, "Date", date);
    header(&mut out, "From", &mail.from);
    header(&mut out, "To", &mail.to.join(", "));
    header(&mut out, "Subject", &mail.subject);
    header(&mut out, "X-Mailer", helo);
    out.extend_from_slice(b"\r\n");
    for line in mail.body.lines() {
        if line.starts_with('.') {
            out.push(b'.');
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// An RFC 5322 3.3 date in UTC, e.g. `Fri, 04 Dec 2026 20:39:27 +0000`, from Unix seconds.
pub fn rfc5322_date(unix_secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_secs / 86_400;
    let rem = unix_secs % 86_400;
    // Civil date from a day count (H. Hinnant's days_from_civil inverse), day 0 = 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} +0000",
        DAYS[(days % 7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// One mail over one SMTP connection.
pub struct SmtpSession {
    stage: Stage,
    /// Index of the recipient whose `RCPT TO` awaits its reply.
    rcpt: usize,
    to: Vec<String>,
    from: String,
    helo: String,
    message: Vec<u8>,
    tx: Vec<u8>,
    tx_off: usize,
    /// The reply line being received.
    line: Vec<u8>,
    /// Lines of the current multi-line reply received so far.
    reply_lines: usize,
    connect_deadline: Instant,
    deadline: Instant,
    /// The message was accepted; only QUIT remains, whose outcome does not matter.
    delivered: bool,
    status: Status,
}

impl SmtpSession {
    /// A session that starts once the daemon's connect is under way at `now`. `helo` is the
    /// name announced in HELO (the router id), `date` the `Date:` header value.
    pub fn new(
        mail: &Mail,
        helo: &str,
        date: &str,
        now: Instant,
        connect_timeout: Duration,
        mail_timeout: Duration,
    ) -> Self {
        SmtpSession {
            stage: Stage::Connect,
            rcpt: 0,
            to: mail.to.clone(),
            from: mail.from.clone(),
            helo: helo.to_string(),
            message: render_message(mail, helo, date),
            tx: Vec::new(),
            tx_off: 0,
            line: Vec::new(),
            reply_lines: 0,
            connect_deadline: now + connect_timeout,
            deadline: now + mail_timeout.max(connect_timeout),
            delivered: false,
            status: Status::Running,
        }
    }

    pub fn stage(&self) -> Stage {
        self.stage
    }

    pub fn status(&self) -> Status {
        self.status
    }

    /// Bytes still to write.
    pub fn tx_pending(&self) -> &[u8] {
        &self.tx[self.tx_off..]
    }

    /// True while the connect has not completed (poll for POLLOUT).
    pub fn connecting(&self) -> bool {
        self.stage == Stage::Connect && self.status == Status::Running
    }

    /// When `Tick` must be fed next.
    pub fn poll_at(&self) -> Option<Instant> {
        if self.status != Status::Running {
            return None;
        }
        Some(if self.stage == Stage::Connect {
            self.connect_deadline.min(self.deadline)
        } else {
            self.deadline
        })
    }

    pub fn handle(&mut self, now: Instant, input: Input) -> Status {
        if let Input::Sent(n) = input {
            // Also after delivery: QUIT is still being written.
            self.tx_off = (self.tx_off + n).min(self.tx.len());
            if self.tx_off == self.tx.len() {
                self.tx.clear();
                self.tx_off = 0;
            }
            return self.status;
        }
        if self.status != Status::Running {
            if matches!(input, Input::IoFailed | Input::Closed) {
                // Delivered but QUIT cannot be written any more: nothing is left to send.
                self.tx.clear();
                self.tx_off = 0;
            }
            return self.status;
        }
        match input {
            Input::Tick => {
                if self.stage == Stage::Connect && now >= self.connect_deadline {
                    return self.fail(SmtpError::ConnectTimeout);
                }
                if now >= self.deadline {
                    return self.end_or_fail(SmtpError::Timeout(self.stage));
                }
            }
            Input::Connected => {
                if self.stage == Stage::Connect {
                    self.stage = Stage::Greeting;
                }
            }
            Input::IoFailed | Input::Closed => return self.end_or_fail(SmtpError::Io(self.stage)),
            Input::Sent(_) => {}
            Input::Received(data) => {
                if self.stage == Stage::Connect {
                    // Data before the connect was reported: the connect evidently completed.
                    self.stage = Stage::Greeting;
                }
                for &b in data {
                    if b != b'\n' {
                        if self.line.len() >= MAX_REPLY_LINE {
                            return self.end_or_fail(SmtpError::Garbage(self.stage));
                        }
                        self.line.push(b);
                        continue;
                    }
                    let st = self.reply_line();
                    self.line.clear();
                    if st != Status::Running {
                        return st;
                    }
                }
            }
        }
        self.status
    }

    /// A complete reply line (RFC 5321 4.2): `CODE-text` continues, `CODE text` or `CODE` ends.
    fn reply_line(&mut self) -> Status {
        let line = self.line.strip_suffix(b"\r").unwrap_or(&self.line);
        let code = match line.get(..3) {
            Some(d) if d.iter().all(u8::is_ascii_digit) && (b'2'..=b'5').contains(&d[0]) => {
                u16::from(d[0] - b'0') * 100 + u16::from(d[1] - b'0') * 10 + u16::from(d[2] - b'0')
            }
            _ => return self.end_or_fail(SmtpError::Garbage(self.stage)),
        };
        match line.get(3) {
            Some(b'-') => {
                self.reply_lines += 1;
                if self.reply_lines > MAX_REPLY_LINES {
                    return self.end_or_fail(SmtpError::Garbage(self.stage));
                }
                Status::Running
            }
            None | Some(b' ') => {
                self.reply_lines = 0;
                self.reply(code)
            }
            Some(_) => self.end_or_fail(SmtpError::Garbage(self.stage)),
        }
    }

    /// A complete reply: check its code against the stage (RFC 5321 4.3.2) and send the next
    /// command.
    fn reply(&mut self, code: u16) -> Status {
        let ok = match self.stage {
            Stage::Connect | Stage::Greeting => code == 220,
            Stage::Data => code == 354,
            Stage::Quit => true,
            // 250, or 251 "user not local; will forward" for RCPT.
            Stage::RcptTo => code == 250 || code == 251,
            _ => code == 250,
        };
        if !ok {
            return self.end_or_fail(SmtpError::Rejected(self.stage, code));
        }
        match self.stage {
            Stage::Connect | Stage::Greeting => {
                let cmd = format!("HELO {}\r\n", self.helo);
                self.send(cmd.as_bytes(), Stage::Helo);
            }
            Stage::Helo => {
                let cmd = format!("MAIL FROM:<{}>\r\n", self.from);
                self.send(cmd.as_bytes(), Stage::MailFrom);
            }
            Stage::MailFrom | Stage::RcptTo => {
                if self.stage == Stage::RcptTo {
                    self.rcpt += 1;
                }
                match self.to.get(self.rcpt) {
                    Some(to) => {
                        let cmd = format!("RCPT TO:<{to}>\r\n");
                        self.send(cmd.as_bytes(), Stage::RcptTo);
                    }
                    None => self.send(b"DATA\r\n", Stage::Data),
                }
            }
            Stage::Data => {
                let msg = core::mem::take(&mut self.message);
                self.send(&msg, Stage::Message);
            }
            Stage::Message => {
                self.delivered = true;
                self.send(b"QUIT\r\n", Stage::Quit);
                self.status = Status::Delivered;
                return self.status;
            }
            Stage::Quit => {}
        }
        Status::Running
    }

    fn send(&mut self, bytes: &[u8], next: Stage) {
        self.tx.extend_from_slice(bytes);
        self.stage = next;
    }

    /// After the message was accepted nothing can fail any more: QUIT is a courtesy.
    fn end_or_fail(&mut self, e: SmtpError) -> Status {
        if self.delivered {
            return self.status;
        }
        self.fail(e)
    }

    fn fail(&mut self, e: SmtpError) -> Status {
        self.status = Status::Failed(e);
        self.status
    }

    /// True when the connection can be closed: failed, or delivered and QUIT written.
    pub fn finished(&self) -> bool {
        match self.status {
            Status::Running => false,
            Status::Failed(_) => true,
            Status::Delivered => self.tx_pending().is_empty(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Instant = Instant::from_secs(100);

    fn mail(to: &[&str], body: &str) -> Mail {
        Mail {
            from: "r1@example.org".into(),
            to: to.iter().map(|s| s.to_string()).collect(),
            subject: "[r1] VRRP Instance vi1 - Entering MASTER state".into(),
            body: body.into(),
        }
    }

    fn session(m: &Mail) -> SmtpSession {
        SmtpSession::new(
            m,
            "r1",
            "Fri, 04 Dec 2026 20:39:27 +0000",
            T0,
            Duration::from_secs(30),
            Duration::from_secs(60),
        )
    }

    /// Takes everything the session wants to write, as text.
    fn take(s: &mut SmtpSession, now: Instant) -> String {
        let out = String::from_utf8(s.tx_pending().to_vec()).unwrap();
        s.handle(now, Input::Sent(out.len()));
        out
    }

    fn reply(s: &mut SmtpSession, text: &str) -> Status {
        s.handle(T0, Input::Received(text.as_bytes()))
    }

    #[test]
    fn whole_dialogue_helo_mail_rcpt_per_recipient_data_dot_quit_4_3_2() {
        let m = mail(&["a@x", "b@x"], "line one\n.hidden dot\n..two\nend");
        let mut s = session(&m);
        assert!(s.connecting());
        assert_eq!(s.handle(T0, Input::Connected), Status::Running);
        assert_eq!(take(&mut s, T0), "", "the client waits for the greeting");
        // Greeting split over two reads, multi-line.
        assert_eq!(reply(&mut s, "220-mx.example ESMTP\r\n22"), Status::Running);
        assert_eq!(take(&mut s, T0), "");
        reply(&mut s, "0 ready\r\n");
        assert_eq!(take(&mut s, T0), "HELO r1\r\n");
        reply(&mut s, "250 mx\r\n");
        assert_eq!(take(&mut s, T0), "MAIL FROM:<r1@example.org>\r\n");
        reply(&mut s, "250 2.1.0 Ok\r\n");
        assert_eq!(take(&mut s, T0), "RCPT TO:<a@x>\r\n");
        reply(&mut s, "250 Ok\r\n");
        assert_eq!(take(&mut s, T0), "RCPT TO:<b@x>\r\n");
        reply(&mut s, "251 forwarding\r\n");
        assert_eq!(take(&mut s, T0), "DATA\r\n");
        reply(&mut s, "354 End data with <CR><LF>.<CR><LF>\r\n");
        let msg = take(&mut s, T0);
        assert!(
            msg.starts_with("Date: Fri, 04 Dec 2026 20:39:27 +0000\r\n"),
            "{msg}"
        );
        assert!(
            msg.contains("\r\nFrom: r1@example.org\r\nTo: a@x, b@x\r\n"),
            "{msg}"
        );
        assert!(msg.contains("\r\nSubject: [r1] VRRP Instance vi1 - Entering MASTER state\r\n"));
        assert!(
            msg.ends_with("\r\n\r\nline one\r\n..hidden dot\r\n...two\r\nend\r\n.\r\n"),
            "dot-stuffed body and end marker (RFC 5321 4.5.2): {msg:?}"
        );
        assert_eq!(s.status(), Status::Running, "not delivered before the 250");
        assert_eq!(reply(&mut s, "250 queued as 1234\r\n"), Status::Delivered);
        assert!(!s.finished(), "QUIT still to write");
        assert_eq!(take(&mut s, T0), "QUIT\r\n");
        assert!(s.finished());
        assert_eq!(s.poll_at(), None);
        // Whatever the server does now does not change the outcome.
        assert_eq!(s.handle(T0, Input::Closed), Status::Delivered);
    }

    #[test]
    fn bare_lf_replies_and_code_only_lines_are_accepted() {
        let mut s = session(&mail(&["a@x"], "x"));
        s.handle(T0, Input::Connected);
        reply(&mut s, "220\n");
        assert_eq!(take(&mut s, T0), "HELO r1\r\n");
    }

    fn at_stage(stage: Stage) -> SmtpSession {
        let mut s = session(&mail(&["a@x"], "x"));
        s.handle(T0, Input::Connected);
        for (st, r) in [
            (Stage::Greeting, "220 hi\r\n"),
            (Stage::Helo, "250 ok\r\n"),
            (Stage::MailFrom, "250 ok\r\n"),
            (Stage::RcptTo, "250 ok\r\n"),
            (Stage::Data, "354 go\r\n"),
            (Stage::Message, "250 ok\r\n"),
        ] {
            if s.stage() == stage {
                return s;
            }
            assert_eq!(s.stage(), st);
            reply(&mut s, r);
            take(&mut s, T0);
        }
        s
    }

    #[test]
    fn an_error_reply_at_each_stage_fails_the_mail_with_stage_and_code() {
        for (stage, code) in [
            (Stage::Greeting, 554),
            (Stage::Helo, 501),
            (Stage::MailFrom, 550),
            (Stage::RcptTo, 550),
            (Stage::Data, 451),
            (Stage::Message, 552),
        ] {
            let mut s = at_stage(stage);
            assert_eq!(
                reply(&mut s, &format!("{code} no\r\n")),
                Status::Failed(SmtpError::Rejected(stage, code)),
                "{stage:?}"
            );
            assert!(s.finished());
            assert_eq!(s.poll_at(), None);
        }
        // A 250 where 354 is required is a rejection too.
        let mut s = at_stage(Stage::Data);
        assert_eq!(
            reply(&mut s, "250 ok\r\n"),
            Status::Failed(SmtpError::Rejected(Stage::Data, 250))
        );
    }

    #[test]
    fn garbage_from_the_server_fails_the_mail() {
        for junk in [
            "HTTP/1.1 400 Bad Request\r\n",
            "22\r\n",
            "220x\r\n",
            "999 what\r\n",
            "\r\n",
        ] {
            let mut s = session(&mail(&["a@x"], "x"));
            s.handle(T0, Input::Connected);
            assert_eq!(
                reply(&mut s, junk),
                Status::Failed(SmtpError::Garbage(Stage::Greeting)),
                "{junk:?}"
            );
        }
        let mut s = session(&mail(&["a@x"], "x"));
        s.handle(T0, Input::Connected);
        let endless = vec![b'2'; MAX_REPLY_LINE + 1];
        assert_eq!(
            s.handle(T0, Input::Received(&endless)),
            Status::Failed(SmtpError::Garbage(Stage::Greeting)),
            "a line without end is cut off at 512 bytes"
        );
        let mut s = session(&mail(&["a@x"], "x"));
        s.handle(T0, Input::Connected);
        let many = "220-more\r\n".repeat(MAX_REPLY_LINES + 1);
        assert_eq!(
            reply(&mut s, &many),
            Status::Failed(SmtpError::Garbage(Stage::Greeting)),
            "an endless multi-line reply"
        );
    }

    #[test]
    fn connect_timeout_then_mail_deadline() {
        let mut s = session(&mail(&["a@x"], "x"));
        assert_eq!(s.poll_at(), Some(T0 + Duration::from_secs(30)));
        assert_eq!(
            s.handle(T0 + Duration::from_secs(29), Input::Tick),
            Status::Running
        );
        assert_eq!(
            s.handle(T0 + Duration::from_secs(30), Input::Tick),
            Status::Failed(SmtpError::ConnectTimeout)
        );
        // Connected, but the server never greets (a tarpit): the per-mail deadline ends it.
        let mut s = session(&mail(&["a@x"], "x"));
        s.handle(T0 + Duration::from_secs(1), Input::Connected);
        assert_eq!(s.poll_at(), Some(T0 + Duration::from_secs(60)));
        assert_eq!(
            s.handle(T0 + Duration::from_secs(35), Input::Tick),
            Status::Running,
            "the connect timeout no longer applies"
        );
        assert_eq!(
            s.handle(T0 + Duration::from_secs(60), Input::Tick),
            Status::Failed(SmtpError::Timeout(Stage::Greeting))
        );
    }

    #[test]
    fn connection_lost_before_acceptance_fails_after_it_does_not() {
        let mut s = at_stage(Stage::RcptTo);
        assert_eq!(
            s.handle(T0, Input::Closed),
            Status::Failed(SmtpError::Io(Stage::RcptTo))
        );
        let mut s = session(&mail(&["a@x"], "x"));
        assert_eq!(
            s.handle(T0, Input::IoFailed),
            Status::Failed(SmtpError::Io(Stage::Connect))
        );
        let mut s = at_stage(Stage::Message);
        assert_eq!(reply(&mut s, "250 ok\r\n"), Status::Delivered);
        assert!(!s.finished());
        assert_eq!(s.handle(T0, Input::IoFailed), Status::Delivered);
        assert!(s.finished(), "QUIT is dropped with the connection");
    }

    #[test]
    fn partial_writes_keep_the_rest_pending() {
        let mut s = session(&mail(&["a@x"], "x"));
        s.handle(T0, Input::Connected);
        reply(&mut s, "220 hi\r\n");
        s.handle(T0, Input::Sent(3));
        assert_eq!(s.tx_pending(), b"O r1\r\n");
        s.handle(T0, Input::Sent(100));
        assert_eq!(s.tx_pending(), b"");
    }

    #[test]
    fn header_values_cannot_inject_headers() {
        let mut m = mail(&["a@x"], "x");
        m.subject = "evil\r\nBcc: everyone@x".into();
        let msg = String::from_utf8(render_message(&m, "r1", "d")).unwrap();
        assert!(msg.contains("Subject: evilBcc: everyone@x\r\n"), "{msg}");
    }

    #[test]
    fn rfc5322_dates() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_796_416_767),
            "Fri, 04 Dec 2026 20:39:27 +0000"
        );
    }
}
