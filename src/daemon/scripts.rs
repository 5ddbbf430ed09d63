//! The programs a configuration runs (notify commands, the pre-master hook, track scripts,
//! script checks, the hotplug hook): resolved once per configuration, at start and before a
//! reload is applied, and pinned (`sys::process::pin`) so every later run executes the file
//! that was resolved and checked here, never a fresh PATH lookup or symbolic link.
//!
//! Command lines are split into words the way keepalived splits them (quotes and
//! backslashes, no shell): `a && b` runs `a` with the arguments `&&` and `b`. A shell runs
//! only when the command names one (`/bin/sh -c '...'`).
//!
//! keepalived `enable_script_security`: when we run as root, every program that would run as
//! root (no `script_user`, no script `user`) must be a file only root can change
//! (`sys::file::only_root_can_change`), or the configuration is refused. A shell is the one
//! program whose check says nothing about what it runs: with `-c` (a command line) it is
//! refused; with a script file as its first argument, that file is checked too, and must be
//! named by its real path (no symbolic link the shell would follow later).

use crate::check::notify::split_command;
use crate::config::Config;
use crate::sys::file;
use crate::sys::process::{self, Pin};

/// Programs that run what their arguments say; checking the file says nothing about that.
const SHELLS: [&str; 7] = ["sh", "ash", "bash", "dash", "ksh", "mksh", "zsh"];

/// One command line of the configuration: its owner (for errors), the line, and whether it
/// would run as root.
type Line<'a> = (&'a str, &'a str, bool);

fn lines(cfg: &Config) -> Vec<Line<'_>> {
    let as_root = |user: &Option<String>| {
        let u = user.as_ref().or(cfg.globals.script_user.as_ref());
        u.and_then(|u| process::lookup_user(u))
            .is_none_or(|(uid, _)| uid == 0)
    };
    let root = as_root(&None);
    let mut out: Vec<Line<'_>> = Vec::new();
    let notifies = cfg
        .instances
        .iter()
        .map(|i| (&i.name, &i.notify))
        .chain(cfg.sync_groups.iter().map(|g| (&g.name, &g.notify)));
    for (name, n) in notifies {
        for line in [&n.master, &n.backup, &n.fault, &n.stop, &n.any]
            .into_iter()
            .flatten()
        {
            out.push((name, line, root));
        }
    }
    for i in &cfg.instances {
        if let Some(line) = &i.notify_pre_master {
            out.push((&i.name, line, root));
        }
    }
    for vs in &cfg.virtual_servers {
        for line in [&vs.quorum_up, &vs.quorum_down].into_iter().flatten() {
            out.push((&vs.name, line, root));
        }
        for rs in &vs.real_servers {
            for line in [&rs.notify_up, &rs.notify_down].into_iter().flatten() {
                out.push((&rs.name, line, root));
            }
        }
    }
    // conntrackd's primary-backup steps (`option conntrackd`) run through the notify queue
    // as root, like the role commands (whose programs are named by absolute paths).
    for i in cfg.instances.iter().filter(|i| i.conntrackd.is_some()) {
        out.push((&i.name, "conntrackd", true));
    }
    for s in &cfg.scripts {
        out.push((&s.name, &s.command, as_root(&s.user)));
    }
    // Real servers' script checks (keepalived MISC_CHECK) under the same rule.
    for c in &cfg.checks {
        if let Some(line) = &c.command {
            out.push((&c.name, line, as_root(&c.user)));
        }
    }
    out
}

fn base_name(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// The words a shell would run, when `argv` starts a shell (`sh ...`, `busybox sh ...`).
fn shell_args<'v>(argv: &'v [String], file: &str) -> Option<&'v [String]> {
    let first = base_name(argv.first()?);
    if first == "busybox" {
        let applet = argv.get(1)?;
        return SHELLS.contains(&base_name(applet)).then(|| &argv[2..]);
    }
    (SHELLS.contains(&first) || SHELLS.contains(&base_name(file))).then(|| &argv[1..])
}

/// Under `enable_script_security`: `Ok` when what a root shell will run is known and only
/// root can change it (see the module docs).
fn check_shell(args: &[String]) -> Result<(), String> {
    let mut rest = args.iter();
    let script = loop {
        match rest.next() {
            // `sh` alone reads its stdin, which is /dev/null.
            None => return Ok(()),
            Some(a) if a == "--" => break rest.next(),
            Some(a) if a.starts_with('-') || a.starts_with('+') => {
                if a.starts_with('-') && a.contains('c') {
                    return Err("a shell command line (-c) cannot be checked: put the \
                         commands in a script file only root can change"
                        .into());
                }
            }
            Some(a) => break Some(a),
        }
    };
    let Some(script) = script else {
        return Ok(());
    };
    let (_, real) = file::resolve_program(script)?;
    if !script.starts_with('/') || real != *script {
        return Err(format!(
            "the shell's script {script} must be named by its real path ({real})"
        ));
    }
    file::only_root_can_change(&real)
}

/// Resolve every program of `cfg` (and the hotplug hook) for [`process::pin`]. `Err` names
/// the first program `enable_script_security` refuses; a program that cannot be resolved
/// otherwise is logged and does not run until a reload resolves it (keepalived disables such
/// a script the same way).
pub fn prepare(cfg: &Config, hotplug: Option<&str>) -> Result<Vec<Pin>, String> {
    let secure = cfg.globals.enable_script_security && crate::sys::unix::effective_uid() == 0;
    let mut pins: Vec<Pin> = Vec::new();
    let hook = hotplug.map(|h| ("hotplug", h, false));
    for (owner, line, as_root) in lines(cfg).into_iter().chain(hook) {
        // An unsplittable line is a config error validation already reported.
        let argv = match split_command(line) {
            Some(v) if !v.is_empty() => v,
            _ => continue,
        };
        let name = &argv[0];
        let resolved = file::resolve_program(name);
        let refuse = |why: String| {
            format!("{owner}: script {name} refused by enable_script_security: {why}")
        };
        match &resolved {
            Ok((_, real)) if secure && as_root => {
                file::only_root_can_change(real).map_err(refuse)?;
                if let Some(args) = shell_args(&argv, real) {
                    check_shell(args).map_err(refuse)?;
                }
            }
            Err(why) if secure && as_root => return Err(refuse(why.clone())),
            Err(why) if !pins.iter().any(|p| &p.name == name) => {
                log::warn!("{owner}: {name}: {why}; it does not run until a reload finds it");
            }
            _ => {}
        }
        if pins.iter().any(|p| &p.name == name) {
            continue;
        }
        pins.push(match resolved {
            Ok((found, real)) => Pin {
                name: name.clone(),
                found,
                exec: Some(real),
            },
            Err(_) => Pin {
                name: name.clone(),
                found: name.clone(),
                exec: None,
            },
        });
    }
    Ok(pins)
}
