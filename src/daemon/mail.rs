//! E-mail alerts (keepalived `smtp_alert`): one mail per state change of an instance with
//! `smtp_alert`, to every `notification_email`, through `smtp_server`.
//!
//! One mail at a time over one non-blocking TCP connection, driven by the poll loop like a
//! TCP check: the fd is polled for what `check::smtp::SmtpSession` needs, and a timer holds
//! its deadline (`smtp_connect_timeout` for the connect, twice that for the whole mail). A
//! dead, black-holed or slow server therefore costs only that mail, never an advert. Mails
//! wait in a bounded queue; when it is full the new mail is dropped and counted.

use super::event_loop::Ctx;
use super::ids::Part;
use super::{Interest, Read};
use crate::base::{Duration, Instant};
use crate::check::notify::ReasonText;
use crate::check::smtp::{rfc5322_date, Input, Mail, SmtpSession, Status};
use crate::config::Config;
use crate::sys::tcp;
use crate::vrrp::instance::Transition;
use core::net::SocketAddr;
use nix::errno::Errno;
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd};

/// Mails waiting for the one connection.
pub const MAIL_QUEUE: usize = 16;

struct Settings {
    server: SocketAddr,
    from: String,
    to: Vec<String>,
    router_id: String,
    connect_timeout: Duration,
    /// Per instance (config order): whether its transitions are mailed.
    alert: Vec<bool>,
}

struct Active {
    session: SmtpSession,
    fd: OwnedFd,
    registered: Option<Interest>,
    /// For the log line.
    subject: String,
}

/// Mail counters for the state dump and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MailStats {
    pub delivered: u32,
    pub failed: u32,
    /// Dropped because the queue was full.
    pub dropped: u32,
}

/// See the module docs.
pub struct Mailer {
    settings: Option<Settings>,
    queue: VecDeque<Mail>,
    active: Option<Active>,
    stats: MailStats,
}

struct RawFd(std::os::fd::RawFd);
impl AsRawFd for RawFd {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0
    }
}

fn settings(cfg: &Config) -> Option<Settings> {
    let alert: Vec<bool> = cfg.instances.iter().map(|i| i.smtp_alert).collect();
    if !alert.iter().any(|a| *a) {
        return None;
    }
    let g = &cfg.globals;
    let Some(server) = g.smtp_server else {
        log::warn!("smtp_alert is on but globals.smtp_server is not set: no e-mail alerts");
        return None;
    };
    if g.notification_email.is_empty() {
        log::warn!("smtp_alert is on but globals.notification_email is empty: no e-mail alerts");
        return None;
    }
    Some(Settings {
        server,
        from: g.notification_email_from.clone(),
        to: g.notification_email.clone(),
        router_id: g.router_id.clone(),
        connect_timeout: g.smtp_connect_timeout,
        alert,
    })
}

const TOKEN: super::Token = Part::Notify.token(0);
const TIMER: super::TimerId = Part::Notify.timer(1);

impl Mailer {
    pub fn new(cfg: &Config) -> Mailer {
        Mailer {
            settings: settings(cfg),
            queue: VecDeque::with_capacity(MAIL_QUEUE),
            active: None,
            stats: MailStats::default(),
        }
    }

    /// New configuration: queued mails and the one being sent are kept.
    pub fn reload(&mut self, cfg: &Config) {
        self.settings = settings(cfg);
    }

    pub fn stats(&self) -> MailStats {
        self.stats
    }

    /// Queue the alert for transition `t` of instance `name` if it has `smtp_alert`.
    pub fn instance_transition(&mut self, t: &Transition, name: &str) {
        let Some(s) = &self.settings else { return };
        if !s.alert.get(usize::from(t.inst)).copied().unwrap_or(false) {
            return;
        }
        // INIT is not a state an operator is told about (like notify).
        if t.to == crate::vrrp::instance::State::Init || t.from == t.to {
            return;
        }
        let reason = ReasonText::new(t.reason);
        let subject = format!(
            "[{}] VRRP Instance {name} - Entering {} state",
            s.router_id, t.to
        );
        let mut body = format!(
            "router_id: {}\ninstance: {name}\nold state: {}\nnew state: {}\nreason: {}\npriority: {}\n",
            s.router_id,
            t.from,
            t.to,
            reason.as_str(),
            t.priority
        );
        if let Some(m) = t.master {
            body.push_str(&format!("master: {m}\n"));
        }
        if self.queue.len() >= MAIL_QUEUE {
            self.stats.dropped += 1;
            log::warn!(
                "e-mail alert queue full ({MAIL_QUEUE}): dropped \"{subject}\" ({} dropped so far)",
                self.stats.dropped
            );
            return;
        }
        self.queue.push_back(Mail {
            from: s.from.clone(),
            to: s.to.clone(),
            subject,
            body,
        });
    }

    /// Start the next mail if none is under way, finish the current one if it ended, and keep
    /// the fd interest and the deadline timer in step with the session.
    pub fn settle(&mut self, ctx: &mut Ctx, now: Instant) {
        loop {
            if let Some(a) = &self.active {
                if !a.session.finished() {
                    break;
                }
                self.close(ctx);
                continue;
            }
            let Some(mail) = self.queue.pop_front() else {
                break;
            };
            let Some(s) = &self.settings else {
                // Alerts were switched off by a reload: what is queued is dropped.
                self.queue.clear();
                break;
            };
            let mut session = SmtpSession::new(
                &mail,
                &s.router_id,
                &rfc5322_date(crate::sys::clock::unix_seconds()),
                now,
                s.connect_timeout,
                s.connect_timeout * 2,
            );
            match tcp::connect(s.server) {
                Ok(fd) => {
                    self.active = Some(Active {
                        session,
                        fd,
                        registered: None,
                        subject: mail.subject,
                    });
                }
                Err(e) => {
                    session.handle(now, Input::IoFailed);
                    self.stats.failed += 1;
                    log::warn!(
                        "e-mail alert \"{}\" to {}: connect: {e}",
                        mail.subject,
                        s.server
                    );
                }
            }
        }
        let Some(a) = self.active.as_mut() else {
            ctx.cancel(TIMER);
            return;
        };
        let want = if a.session.connecting() || !a.session.tx_pending().is_empty() {
            Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        match a.registered {
            Some(cur) if cur == want => {}
            Some(_) => {
                ctx.set_interest(TOKEN, want);
                a.registered = Some(want);
            }
            None => match ctx.register(TOKEN, &RawFd(a.fd.as_raw_fd()), want) {
                Ok(()) => a.registered = Some(want),
                Err(e) => {
                    log::error!("e-mail alert: {e}");
                }
            },
        }
        match a.session.poll_at() {
            Some(at) => {
                if let Err(e) = ctx.arm(TIMER, at) {
                    log::error!("e-mail alert timer: {e}");
                }
            }
            None => {
                ctx.cancel(TIMER);
            }
        }
    }

    fn close(&mut self, ctx: &mut Ctx) {
        let Some(a) = self.active.take() else { return };
        if a.registered.is_some() {
            ctx.deregister(TOKEN);
        }
        let server = self.settings.as_ref().map(|s| s.server.to_string());
        let server = server.as_deref().unwrap_or("smtp_server");
        match a.session.status() {
            Status::Delivered => {
                self.stats.delivered += 1;
                log::info!("e-mail alert \"{}\" sent through {server}", a.subject);
            }
            Status::Failed(e) => {
                self.stats.failed += 1;
                log::warn!(
                    "e-mail alert \"{}\" not sent through {server}: {e} ({} failed so far)",
                    a.subject,
                    self.stats.failed
                );
            }
            Status::Running => {}
        }
    }

    /// The deadline timer fired.
    pub fn on_timer(&mut self, now: Instant) {
        if let Some(a) = self.active.as_mut() {
            a.session.handle(now, Input::Tick);
        }
    }

    /// The connection's fd is ready: complete the connect, write, or read (bounded: one read
    /// of at most 2 KiB per wake-up, the loop comes back for more).
    pub fn on_readable(&mut self, ctx: &mut Ctx, now: Instant) -> Read {
        // This part owns the fd being read: it settles its own connection at once (like a
        // probe), nothing is handed to another part.
        let r = self.read_step(now);
        self.settle(ctx, now);
        r
    }

    fn read_step(&mut self, now: Instant) -> Read {
        let Some(a) = self.active.as_mut() else {
            return Read::Drained;
        };
        let s = &mut a.session;
        if s.connecting() {
            let input = match tcp::connect_result(&a.fd) {
                Ok(()) => Input::Connected,
                Err(_) => Input::IoFailed,
            };
            s.handle(now, input);
            return Read::Drained;
        }
        if !s.tx_pending().is_empty() {
            match tcp::write(&a.fd, s.tx_pending()) {
                Ok(n) => {
                    s.handle(now, Input::Sent(n));
                }
                Err(Errno::EAGAIN) => {}
                Err(_) => {
                    s.handle(now, Input::IoFailed);
                }
            }
            return Read::Drained;
        }
        let mut buf = [0u8; 2048];
        match tcp::read(&a.fd, &mut buf) {
            Ok(0) => {
                s.handle(now, Input::Closed);
                Read::Drained
            }
            Ok(n) => {
                s.handle(now, Input::Received(&buf[..n]));
                Read::Drained
            }
            Err(Errno::EAGAIN) => Read::Drained,
            Err(_) => {
                s.handle(now, Input::IoFailed);
                Read::Drained
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrrp::instance::{Reason, State};

    fn config(alert: &str) -> Config {
        let text = format!(
            "config globals 'globals'\n\toption router_id 'r9'\n\
             \tlist notification_email 'noc@x'\n\toption smtp_server '10.0.0.25'\n\
             \toption smtp_alert '{alert}'\n\
             config instance 'a'\n\toption interface 'br-lan'\n\toption vrid '1'\n\tlist vip '10.0.0.1'\n\
             config instance 'b'\n\toption interface 'br-lan'\n\toption vrid '2'\n\
             \toption smtp_alert '0'\n\tlist vip '10.0.0.2'\n"
        );
        Config::parse_str("test", &text).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn moved(inst: u16, from: State, to: State) -> Transition {
        Transition {
            inst,
            from,
            to,
            reason: Reason::Startup,
            priority: 100,
            master: None,
        }
    }

    #[test]
    fn one_mail_per_transition_of_an_alerting_instance_with_states_and_reason() {
        let mut m = Mailer::new(&config("1"));
        m.instance_transition(&moved(0, State::Init, State::Backup), "a");
        m.instance_transition(&moved(0, State::Backup, State::Master), "a");
        m.instance_transition(&moved(0, State::Master, State::Init), "a");
        m.instance_transition(&moved(1, State::Backup, State::Master), "b");
        assert_eq!(
            m.queue.len(),
            2,
            "INIT and instance b (smtp_alert 0) are not mailed"
        );
        let mail = &m.queue[1];
        assert_eq!(mail.subject, "[r9] VRRP Instance a - Entering MASTER state");
        assert_eq!(mail.to, ["noc@x"]);
        assert_eq!(mail.from, "minivrrp@localhost");
        for want in [
            "router_id: r9\n",
            "instance: a\n",
            "old state: BACKUP\n",
            "new state: MASTER\n",
        ] {
            assert!(mail.body.contains(want), "{want:?} in {}", mail.body);
        }
        let reason = format!("reason: {}\n", Reason::Startup);
        assert!(mail.body.contains(&reason), "{}", mail.body);
    }

    #[test]
    fn queue_holds_sixteen_mails_and_counts_what_overflows() {
        let mut m = Mailer::new(&config("1"));
        for k in 0..MAIL_QUEUE + 3 {
            let (from, to) = if k % 2 == 0 {
                (State::Backup, State::Master)
            } else {
                (State::Master, State::Backup)
            };
            m.instance_transition(&moved(0, from, to), "a");
        }
        assert_eq!(m.queue.len(), MAIL_QUEUE);
        assert_eq!(m.stats().dropped, 3);
    }

    #[test]
    fn no_alerts_without_smtp_alert_server_or_recipients() {
        let mut m = Mailer::new(&config("0"));
        m.instance_transition(&moved(0, State::Backup, State::Master), "a");
        assert!(m.queue.is_empty());
        let mut c = config("1");
        c.globals.smtp_server = None;
        let mut m = Mailer::new(&c);
        m.instance_transition(&moved(0, State::Backup, State::Master), "a");
        assert!(m.queue.is_empty());
    }
}
