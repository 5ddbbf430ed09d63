//! OpenWrt packaging: the .ipk that openwrt/build-ipk.sh makes, and the procd init script
//! driven through tests/openwrt/rc.common + procd-stub.sh (a recording stand-in for procd's
//! shell API: procd itself is not exercised here).
//!
//! The packaged binary is the one cargo built for this test run (CARGO_BIN_EXE_minivrrp):
//! packaging does not care which target it was built for, and the host can run it for the
//! `minivrrp check` steps.

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_minivrrp");

/// The binary to package: the static release build when tests/run.sh built one first
/// (MINIVRRP_RELEASE_BIN; small, so gzip is quick), else the debug binary of this test run.
fn package_bin() -> String {
    std::env::var("MINIVRRP_RELEASE_BIN")
        .ok()
        .filter(|p| Path::new(p).is_file())
        .unwrap_or_else(|| BIN.to_string())
}
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A scratch directory under the system temp dir, removed on drop (also when a test fails).
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("minivrrp-owrt-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn tools_present(test: &str, tools: &[&str]) -> bool {
    tools.iter().all(|t| common::require_tool(test, t))
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"))
}

fn run_ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs openwrt/build-ipk.sh for `board` with extra args; returns the .ipk path it printed.
fn build_ipk(board: &str, out_dir: &Path, extra: &[&str]) -> PathBuf {
    let stdout = run_ok(
        Command::new("sh")
            .arg(Path::new(ROOT).join("openwrt/build-ipk.sh"))
            .args(extra)
            .arg("--bin")
            .arg(package_bin())
            .arg("--out")
            .arg(out_dir)
            .arg(board),
    );
    let ipk = PathBuf::from(stdout.trim());
    assert!(
        ipk.is_file(),
        "build-ipk.sh printed {ipk:?}, which is not a file"
    );
    ipk
}

fn version() -> String {
    format!("{}-r1", env!("CARGO_PKG_VERSION"))
}

/// Parses an opkg control file: "Field: value" lines, continuation lines start with a space.
fn parse_control(text: &str) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in text.lines() {
        if line.starts_with(' ') {
            let key = last.clone().expect("continuation line before any field");
            let v: &mut String = fields.get_mut(&key).expect("field exists");
            v.push('\n');
            v.push_str(line.trim());
        } else if let Some((k, v)) = line.split_once(':') {
            fields.insert(k.to_string(), v.trim().to_string());
            last = Some(k.to_string());
        } else {
            panic!("bad control line {line:?}");
        }
    }
    fields
}

/// `tar tvzf` listing as (path, mode string, owner/group) for each member.
fn tar_listing(archive: &Path) -> Vec<(String, String, String)> {
    let text = run_ok(Command::new("tar").arg("-tvzf").arg(archive));
    text.lines()
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            assert!(cols.len() >= 6, "unexpected tar -tv line {l:?}");
            (
                cols[cols.len() - 1].to_string(),
                cols[0].to_string(),
                cols[1].to_string(),
            )
        })
        .collect()
}

fn extract_tgz(archive: &Path, into: &Path) {
    fs::create_dir_all(into).expect("mkdir");
    run_ok(
        Command::new("tar")
            .arg("-xzf")
            .arg(archive)
            .arg("-C")
            .arg(into),
    );
}

/// Unpacks a tar-format ipk into `dir`/outer, `dir`/control and `dir`/data.
fn unpack_ipk(ipk: &Path, dir: &Path) {
    let outer = dir.join("outer");
    extract_tgz(ipk, &outer);
    extract_tgz(&outer.join("control.tar.gz"), &dir.join("control"));
    extract_tgz(&outer.join("data.tar.gz"), &dir.join("data"));
}

#[test]
fn ipk_outer_is_gzip_tar_of_debian_binary_data_control_like_ipkg_build() {
    let test = "ipk_outer_tar";
    if !tools_present(test, &["tar", "gzip"]) {
        return;
    }
    let s = Scratch::new(test);
    let ipk = build_ipk("x86_64", &s.path("out"), &[]);
    assert_eq!(
        ipk.file_name().and_then(|n| n.to_str()),
        Some(format!("minivrrp_{}_x86_64.ipk", version()).as_str())
    );
    let names: Vec<String> = tar_listing(&ipk).into_iter().map(|(p, _, _)| p).collect();
    assert_eq!(
        names,
        ["./debian-binary", "./data.tar.gz", "./control.tar.gz"]
    );
    unpack_ipk(&ipk, &s.0);
    assert_eq!(
        fs::read_to_string(s.path("outer/debian-binary")).unwrap(),
        "2.0\n"
    );
}

#[test]
fn ipk_control_has_opkg_fields_conffiles_and_default_maintainer_scripts() {
    let test = "ipk_control";
    if !tools_present(test, &["tar", "gzip"]) {
        return;
    }
    let s = Scratch::new(test);
    let ipk = build_ipk("x86_64", &s.path("out"), &[]);
    unpack_ipk(&ipk, &s.0);

    let control = parse_control(&fs::read_to_string(s.path("control/control")).unwrap());
    assert_eq!(control["Package"], "minivrrp");
    assert_eq!(control["Version"], version());
    assert_eq!(control["Depends"], "libc");
    assert_eq!(control["Source"], "feeds/minivrrp/minivrrp");
    assert_eq!(control["SourceName"], "minivrrp");
    assert_eq!(control["License"], env!("CARGO_PKG_LICENSE"));
    assert_eq!(control["LicenseFiles"], "LICENSE");
    assert!(
        control["Maintainer"].contains(" <") && control["Maintainer"].ends_with('>'),
        "Maintainer must be 'Name <e-mail>': {:?}",
        control["Maintainer"]
    );
    assert_eq!(control["Section"], "net");
    assert_eq!(control["Architecture"], "x86_64");
    assert!(
        control["Description"].contains("VRRP"),
        "{:?}",
        control["Description"]
    );
    // Installed-Size is the uncompressed data tar, as OpenWrt's ipkg-build computes it.
    let data_tar = run(Command::new("gzip")
        .arg("-dc")
        .arg(s.path("outer/data.tar.gz")))
    .stdout;
    assert_eq!(control["Installed-Size"], data_tar.len().to_string());

    assert_eq!(
        fs::read_to_string(s.path("control/conffiles")).unwrap(),
        "/etc/config/minivrrp\n/etc/hotplug.d/minivrrp/50-example\n"
    );
    let postinst = fs::read_to_string(s.path("control/postinst")).unwrap();
    assert!(postinst.starts_with("#!/bin/sh\n"));
    assert!(postinst.contains("IPKG_NO_SCRIPT"));
    assert!(postinst.contains("default_postinst $0 $@"));
    let prerm = fs::read_to_string(s.path("control/prerm")).unwrap();
    assert!(prerm.contains("default_prerm $0 $@"));
    // The package's own step, which default_postinst sources: it records the config's
    // checksum for reload_config (the day-one walk in tests/lab/openwrt_day_one.rs runs it).
    let step = fs::read_to_string(s.path("control/postinst-pkg")).unwrap();
    assert!(step.starts_with("#!/bin/sh\n"), "{step}");
    assert!(step.contains("uci show minivrrp"), "{step}");
    assert!(!step.contains("$$"), "make's $$ left in: {step}");
    for script in ["postinst", "prerm", "postinst-pkg"] {
        run_ok(
            Command::new("sh")
                .arg("-n")
                .arg(s.path(&format!("control/{script}"))),
        );
    }

    let listing = tar_listing(&s.path("outer/control.tar.gz"));
    let modes: BTreeMap<_, _> = listing
        .iter()
        .map(|(p, m, o)| (p.as_str(), (m.as_str(), o.as_str())))
        .collect();
    assert_eq!(modes["./control"], ("-rw-r--r--", "0/0"));
    assert_eq!(modes["./conffiles"], ("-rw-r--r--", "0/0"));
    assert_eq!(modes["./postinst"], ("-rwxr-xr-x", "0/0"));
    assert_eq!(modes["./prerm"], ("-rwxr-xr-x", "0/0"));
    assert_eq!(modes["./postinst-pkg"], ("-rwxr-xr-x", "0/0"));
}

#[test]
fn ipk_data_holds_binary_config_init_script_and_hook_with_modes_and_root_owner() {
    let test = "ipk_data";
    if !tools_present(test, &["tar", "gzip"]) {
        return;
    }
    let s = Scratch::new(test);
    let ipk = build_ipk("x86_64", &s.path("out"), &[]);
    unpack_ipk(&ipk, &s.0);

    let listing = tar_listing(&s.path("outer/data.tar.gz"));
    let files: Vec<(&str, &str)> = listing
        .iter()
        .filter(|(_, m, _)| m.starts_with('-'))
        .map(|(p, m, _)| (p.as_str(), m.as_str()))
        .collect();
    assert_eq!(
        files,
        [
            ("./etc/config/minivrrp", "-rw-------"),
            ("./etc/hotplug.d/minivrrp/50-example", "-rw-r--r--"),
            ("./etc/init.d/minivrrp", "-rwxr-xr-x"),
            ("./lib/upgrade/keep.d/minivrrp", "-rw-r--r--"),
            ("./usr/libexec/rpcd/minivrrp", "-rwxr-xr-x"),
            ("./usr/sbin/minivrrp", "-rwxr-xr-x"),
        ]
    );
    for (path, mode, owner) in &listing {
        assert_eq!(owner, "0/0", "{path} not owned by root");
        if mode.starts_with('d') {
            assert_eq!(mode, "drwxr-xr-x", "{path}");
        }
    }
    // The payload is the files themselves, unchanged.
    assert_eq!(
        fs::read(s.path("data/usr/sbin/minivrrp")).unwrap(),
        fs::read(package_bin()).unwrap()
    );
    for rel in [
        "etc/config/minivrrp",
        "etc/init.d/minivrrp",
        "etc/hotplug.d/minivrrp/50-example",
        "lib/upgrade/keep.d/minivrrp",
        "usr/libexec/rpcd/minivrrp",
    ] {
        assert_eq!(
            fs::read(s.path(&format!("data/{rel}"))).unwrap(),
            fs::read(Path::new(ROOT).join("rootfs").join(rel)).unwrap(),
            "{rel}"
        );
    }
}

#[test]
fn ipk_two_builds_are_byte_identical() {
    let test = "ipk_reproducible";
    if !tools_present(test, &["tar", "gzip"]) {
        return;
    }
    let s = Scratch::new(test);
    let a = fs::read(build_ipk("x86_64", &s.path("a"), &[])).unwrap();
    let b = fs::read(build_ipk("x86_64", &s.path("b"), &[])).unwrap();
    assert!(a == b, "two builds differ");
}

#[test]
fn ipk_ar_outer_format_is_gone() {
    // opkg-lede reads only a gzip'd tar outer container (libbb/unarchive.c deb_extract).
    if !tools_present("ipk_no_ar", &["sh"]) {
        return;
    }
    let s = Scratch::new("ipk_no_ar");
    let out = run(Command::new("sh")
        .arg(Path::new(ROOT).join("openwrt/build-ipk.sh"))
        .arg("--ar")
        .arg("--bin")
        .arg(package_bin())
        .arg("--out")
        .arg(s.path("out"))
        .arg("x86_64"));
    assert!(!out.status.success(), "--ar still accepted");
}

#[test]
fn ipk_architecture_and_name_follow_the_board_profile() {
    let test = "ipk_arch";
    if !tools_present(test, &["tar", "gzip"]) {
        return;
    }
    let s = Scratch::new(test);
    for (board, arch) in [
        ("x86_64", "x86_64"),
        ("aarch64_cortex-a53", "aarch64_cortex-a53"),
        ("aarch64_generic", "aarch64_generic"),
        ("aarch64_cortex-a72", "aarch64_cortex-a72"),
        ("armv7", "arm_cortex-a7_neon-vfpv4"),
        ("arm_cortex-a9_vfpv3-d16", "arm_cortex-a9_vfpv3-d16"),
        ("arm_cortex-a15_neon-vfpv4", "arm_cortex-a15_neon-vfpv4"),
        ("mipsel_24kc", "mipsel_24kc"),
        ("mips", "mips_24kc"),
    ] {
        let out = s.path(board);
        let ipk = build_ipk(board, &out, &[]);
        assert_eq!(
            ipk.file_name().and_then(|n| n.to_str()).map(str::to_owned),
            Some(format!("minivrrp_{}_{arch}.ipk", version()))
        );
        let dir = s.path(&format!("{board}-x"));
        unpack_ipk(&ipk, &dir);
        let control = parse_control(&fs::read_to_string(dir.join("control/control")).unwrap());
        assert_eq!(control["Architecture"], arch, "board {board}");
    }
}

#[test]
fn installed_package_init_script_parses_and_shipped_config_passes_check() {
    let test = "ipk_installed";
    if !tools_present(test, &["tar", "gzip", "sh"]) {
        return;
    }
    let s = Scratch::new(test);
    let ipk = build_ipk("x86_64", &s.path("out"), &[]);
    unpack_ipk(&ipk, &s.0);
    let root = s.path("data");
    run_ok(
        Command::new("sh")
            .arg("-n")
            .arg(root.join("etc/init.d/minivrrp")),
    );
    run_ok(
        Command::new("sh")
            .arg("-n")
            .arg(root.join("etc/hotplug.d/minivrrp/50-example")),
    );
    let init = fs::read_to_string(root.join("etc/init.d/minivrrp")).unwrap();
    assert!(init.starts_with("#!/bin/sh /etc/rc.common\n"));
    // The installed binary validates the installed config.
    let out = run(Command::new(root.join("usr/sbin/minivrrp"))
        .arg("check")
        .arg("-f")
        .arg(root.join("etc/config/minivrrp")));
    assert!(
        out.status.code() == Some(0),
        "minivrrp check rejected the shipped config: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the init script through the rc.common stand-in; returns (exit code, record lines).
fn rc(action: &str, s: &Scratch, conf: &Path, running: bool) -> (Option<i32>, Vec<String>) {
    rc_with("sh", action, s, conf, running)
}

/// [`rc`] with a chosen shell: OpenWrt runs init scripts with busybox ash, the host's `sh`
/// is usually dash or bash.
fn rc_with(
    shell: &str,
    action: &str,
    s: &Scratch,
    conf: &Path,
    running: bool,
) -> (Option<i32>, Vec<String>) {
    rc_prog(shell, action, s, conf, running, Path::new(BIN))
}

/// [`rc_with`] with a chosen binary standing in for /usr/sbin/minivrrp.
fn rc_prog(
    shell: &str,
    action: &str,
    s: &Scratch,
    conf: &Path,
    running: bool,
    prog: &Path,
) -> (Option<i32>, Vec<String>) {
    let record = s.path("record");
    let _ = fs::remove_file(&record);
    fs::write(&record, "").unwrap();
    let stubs = Path::new(ROOT).join("tests/openwrt");
    let path = format!(
        "{}:{}",
        stubs.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new(shell);
    if shell == "busybox" {
        cmd.arg("sh");
    }
    let out = run(cmd
        .arg(stubs.join("rc.common"))
        .arg(Path::new(ROOT).join("rootfs/etc/init.d/minivrrp"))
        .arg(action)
        .env("PATH", path)
        .env("PROCD_RECORD", &record)
        .env("PROCD_RUNNING", if running { "1" } else { "0" })
        .env("STUB_PROG", prog)
        .env("STUB_CONF", conf));
    let lines = fs::read_to_string(&record)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    (out.status.code(), lines)
}

fn shipped_config(s: &Scratch) -> PathBuf {
    let conf = s.path("minivrrp.conf");
    fs::copy(Path::new(ROOT).join("rootfs/etc/config/minivrrp"), &conf).unwrap();
    conf
}

/// The shipped config after the owner enabled it (`uci set minivrrp.globals.enabled=1`).
fn enabled_config(s: &Scratch) -> PathBuf {
    let conf = s.path("enabled.conf");
    let text = fs::read_to_string(Path::new(ROOT).join("rootfs/etc/config/minivrrp")).unwrap();
    let line = "\toption enabled '0'\n";
    assert!(text.contains(line), "shipped config lacks {line:?}");
    fs::write(&conf, text.replace(line, "\toption enabled '1'\n")).unwrap();
    conf
}

/// The procd instance name the init script uses for `prog`: "bin_" and the first 12 hex
/// digits of its md5, so a replaced binary is a new instance (see the init script).
fn instance_name(prog: &Path) -> String {
    let sum = run_ok(Command::new("md5sum").arg(prog));
    format!("bin_{}", &sum[..12])
}

/// A config no valid parser accepts: VRID 300 is outside 1..=255 (RFC 5798 5.2.3) and
/// priority 0 is reserved for the leaving master (RFC 5798 5.2.4).
fn broken_config(s: &Scratch) -> PathBuf {
    let conf = s.path("broken.conf");
    fs::write(
        &conf,
        "config instance 'vi1'\n\toption interface 'br-lan'\n\toption vrid '300'\n\
         \toption priority '0'\n\tlist vip '10.0.0.254/24'\n",
    )
    .unwrap();
    conf
}

fn logger_lines(lines: &[String]) -> Vec<&String> {
    lines.iter().filter(|l| l.starts_with("logger ")).collect()
}

#[test]
fn init_script_defaults_are_procd_and_installed_paths() {
    if !tools_present("init_defaults", &["sh"]) {
        return;
    }
    let s = Scratch::new("init_defaults");
    let conf = shipped_config(&s);
    let (_, lines) = rc("start", &s, &conf, false);
    assert_eq!(
        lines.first().map(String::as_str),
        Some("defaults USE_PROCD=1 PROG=/usr/sbin/minivrrp CONF=/etc/config/minivrrp")
    );
}

#[test]
fn init_start_opens_one_foreground_instance_with_respawn_file_watch_and_reload_trigger() {
    if !tools_present("init_start", &["sh", "md5sum"]) {
        return;
    }
    let s = Scratch::new("init_start");
    let conf = enabled_config(&s);
    let (code, lines) = rc("start", &s, &conf, false);
    assert_eq!(code, Some(0), "{lines:#?}");
    let conf = conf.display();
    let expected = [
        "open_service minivrrp".to_string(),
        format!("open_instance {}", instance_name(Path::new(BIN))),
        format!("set_param command {BIN} -f {conf}"),
        // No values: procd.sh fills in the system's respawn defaults.
        "set_param respawn".to_string(),
        "set_param stdout 1".to_string(),
        "set_param stderr 1".to_string(),
        format!("set_param file {conf}"),
        "set_param reload_signal HUP".to_string(),
        "set_param term_timeout 10".to_string(),
        // The daemon's default sched_priority (globals), read from the effective config.
        "set_param limits memlock=unlimited rtprio=10 10".to_string(),
        "close_instance".to_string(),
        "add_reload_trigger minivrrp".to_string(),
        "close_service".to_string(),
    ];
    let got: Vec<&str> = lines[1..]
        .iter()
        .map(|l| {
            if l.starts_with("open_service ") {
                "open_service minivrrp"
            } else {
                l.trim_end()
            }
        })
        .collect();
    assert_eq!(got, expected.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(logger_lines(&lines).is_empty(), "{lines:#?}");
}

/// procd's rtprio limit follows globals `sched_priority`, so the daemon may take the priority
/// it is configured for even without CAP_SYS_NICE.
#[test]
fn init_start_gives_procd_the_configured_real_time_priority_as_rtprio_limit() {
    if !tools_present("init_rtprio", &["sh", "md5sum"]) {
        return;
    }
    let s = Scratch::new("init_rtprio");
    let conf = enabled_config(&s);
    let text = fs::read_to_string(&conf).unwrap();
    let text = text.replacen(
        "\toption enabled '1'\n",
        "\toption enabled '1'\n\toption sched_priority '30'\n",
        1,
    );
    fs::write(&conf, text).unwrap();
    let (code, lines) = rc("start", &s, &conf, false);
    assert_eq!(code, Some(0), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.trim_end() == "set_param limits memlock=unlimited rtprio=30 30"),
        "{lines:#?}"
    );
}

#[test]
fn init_start_with_the_shipped_disabled_config_starts_nothing_and_logs_how_to_enable() {
    if !tools_present("init_disabled", &["sh"]) {
        return;
    }
    let s = Scratch::new("init_disabled");
    let conf = shipped_config(&s);
    for action in ["start", "reload"] {
        let (code, lines) = rc(action, &s, &conf, false);
        // Success: default_postinst runs start right after installing, and a disabled
        // service is not an error.
        assert_eq!(code, Some(0), "{action}: {lines:#?}");
        assert!(
            !lines.iter().any(|l| l.starts_with("open_instance")),
            "{action} opened an instance of the disabled example: {lines:#?}"
        );
        // The service is still registered (with no instance, which also stops one that
        // runs) so that enabling and reload_config starts it.
        assert!(
            lines.iter().any(|l| l == "add_reload_trigger minivrrp"),
            "{lines:#?}"
        );
        let logged = logger_lines(&lines);
        assert_eq!(logged.len(), 1, "{logged:#?}");
        assert!(
            logged[0].starts_with("logger -t minivrrp -p daemon.notice disabled")
                && logged[0].contains("uci set minivrrp.globals.enabled=1"),
            "{logged:#?}"
        );
    }
}

#[test]
fn shipped_config_says_how_to_enable_it() {
    let text = fs::read_to_string(Path::new(ROOT).join("rootfs/etc/config/minivrrp")).unwrap();
    let globals = text
        .split("\nconfig ")
        .find(|sec| sec.starts_with("globals"))
        .expect("globals section");
    assert!(globals.contains("\toption enabled '0'\n"), "{globals}");
    assert!(
        globals.contains("uci set minivrrp.globals.enabled=1"),
        "{globals}"
    );
}

#[test]
fn init_start_with_broken_config_refuses_and_logs_the_error() {
    if !tools_present("init_broken", &["sh"]) {
        return;
    }
    let s = Scratch::new("init_broken");
    let conf = broken_config(&s);
    let (code, lines) = rc("start", &s, &conf, false);
    assert_ne!(
        code,
        Some(0),
        "start succeeded with a broken config: {lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("open_instance")),
        "instance opened: {lines:#?}"
    );
    let logged = logger_lines(&lines);
    assert!(
        logged
            .iter()
            .all(|l| l.starts_with("logger -t minivrrp -p daemon.err ")),
        "{logged:#?}"
    );
    // The check's own `FILE:LINE: ...` diagnostic reaches the log, then the refusal.
    let conf = conf.display().to_string();
    assert!(
        logged.iter().any(|l| l.contains(&format!("{conf}:"))),
        "{logged:#?}"
    );
    assert!(
        logged.iter().any(|l| l.contains("not starting")),
        "{logged:#?}"
    );
}

/// procd replaces the instance list of a service with the one `close_service` sends; an
/// empty one stops the running daemon. With a broken config and a running daemon, the
/// script must send nothing at all.
#[test]
fn init_start_and_reload_with_broken_config_leave_a_running_daemon_alone() {
    if !tools_present("init_broken_running", &["sh"]) {
        return;
    }
    let s = Scratch::new("init_broken_running");
    let conf = broken_config(&s);
    for action in ["start", "reload"] {
        let (code, lines) = rc(action, &s, &conf, true);
        assert_ne!(code, Some(0), "{action}: {lines:#?}");
        assert!(
            !lines.iter().any(|l| l == "close_service"),
            "{action} sent procd a service without the running instance: {lines:#?}"
        );
        assert!(
            !lines.iter().any(|l| l.starts_with("send_signal")),
            "{lines:#?}"
        );
        let logged = logger_lines(&lines);
        let c = conf.display().to_string();
        assert!(
            logged.iter().any(|l| l.contains(&format!("{c}:"))),
            "{logged:#?}"
        );
        assert!(
            logged.iter().any(|l| l.ends_with(&format!(
                "daemon.err not reloading: {c} is invalid, the running daemon keeps its config"
            ))),
            "{logged:#?}"
        );
    }
}

/// reload is start: procd compares the config's hash and sends reload_signal itself, so
/// its stored hash stays current (a HUP sent by hand left the old one, and the next
/// start signalled again).
#[test]
fn init_reload_hands_the_config_to_procd_which_sends_the_hup() {
    if !tools_present("init_reload", &["sh", "md5sum"]) {
        return;
    }
    let s = Scratch::new("init_reload");
    let conf = enabled_config(&s);
    let (code, lines) = rc("reload", &s, &conf, true);
    assert_eq!(code, Some(0), "{lines:#?}");
    assert!(
        !lines.iter().any(|l| l.starts_with("send_signal")),
        "{lines:#?}"
    );
    let (_, start) = rc("start", &s, &conf, true);
    assert_eq!(lines, start, "reload and start differ");
    assert!(
        lines.iter().any(|l| l == "set_param reload_signal HUP"),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l == &format!("set_param file {}", conf.display())),
        "{lines:#?}"
    );
}

/// An upgrade replaces /usr/sbin/minivrrp and runs start. With reload_signal, procd would
/// only HUP the old binary on a changed parameter, so the new binary must be a new
/// instance name: procd then stops the old instance and starts the new one.
#[test]
fn init_instance_name_follows_the_binary_so_an_upgrade_restarts_it() {
    if !tools_present("init_upgrade", &["sh", "md5sum"]) {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new("init_upgrade");
    let conf = enabled_config(&s);
    let old = s.path("minivrrp-old");
    let new = s.path("minivrrp-new");
    fs::copy(BIN, &old).unwrap();
    // Same program, different bytes: trailing data after the ELF image is ignored.
    let mut bytes = fs::read(BIN).unwrap();
    bytes.extend_from_slice(b"upgrade");
    fs::write(&new, bytes).unwrap();
    fs::set_permissions(&new, fs::Permissions::from_mode(0o755)).unwrap();
    let opened = |prog: &Path| -> String {
        let (code, lines) = rc_prog("sh", "start", &s, &conf, true, prog);
        assert_eq!(code, Some(0), "{lines:#?}");
        lines
            .into_iter()
            .find(|l| l.starts_with("open_instance "))
            .unwrap_or_else(|| panic!("no instance for {prog:?}"))
    };
    let first = opened(&old);
    assert_eq!(first, format!("open_instance {}", instance_name(&old)));
    assert_eq!(opened(&old), first, "same binary, same instance");
    assert_ne!(opened(&new), first, "a new binary must be a new instance");
}

#[test]
fn init_stop_leaves_termination_to_procd_sigterm() {
    if !tools_present("init_stop", &["sh"]) {
        return;
    }
    let s = Scratch::new("init_stop");
    let conf = shipped_config(&s);
    let (code, lines) = rc("stop", &s, &conf, true);
    assert_eq!(code, Some(0), "{lines:#?}");
    // procd_kill = SIGTERM, then SIGKILL after term_timeout; no signal of our own.
    assert_eq!(&lines[1..], ["lock", "kill minivrrp"]);
}

#[test]
fn init_enable_starts_after_netifd_and_stops_before_it() {
    if !tools_present("init_enable", &["sh"]) {
        return;
    }
    let s = Scratch::new("init_enable");
    let conf = shipped_config(&s);
    let (code, lines) = rc("enable", &s, &conf, false);
    assert_eq!(code, Some(0), "{lines:#?}");
    let line = lines
        .iter()
        .find(|l| l.starts_with("enable "))
        .expect("enable recorded");
    let num = |key: &str| -> u32 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{key} in {line:?}"))
    };
    // /etc/init.d/network has START=20 STOP=90: netifd must have created the devices before
    // we start, and at shutdown we must leave (priority-0 advert) while links are still up.
    assert!(num("START=") > 20, "{line}");
    assert!(num("STOP=") < 90, "{line}");
}

#[test]
fn hotplug_example_hook_does_nothing_for_every_action() {
    if !tools_present("hotplug_example", &["sh"]) {
        return;
    }
    let hook = Path::new(ROOT).join("rootfs/etc/hotplug.d/minivrrp/50-example");
    for action in [
        "NOTIFY_MASTER",
        "NOTIFY_BACKUP",
        "NOTIFY_FAULT",
        "NOTIFY_STOP",
    ] {
        for ty in ["INSTANCE", "GROUP"] {
            // hotplug-call sources the hook; do the same in a shell with an empty PATH so
            // any command it tried to run would fail and show up on stderr.
            let out = run(Command::new("/bin/sh")
                .arg("-c")
                .arg(". \"$1\"")
                .arg("hook")
                .arg(&hook)
                .env_clear()
                .env("PATH", "/nonexistent")
                .env("ACTION", action)
                .env("TYPE", ty)
                .env("NAME", "vi1"));
            assert!(out.status.success(), "{action}/{ty}: {}", out.status);
            assert!(
                out.stdout.is_empty() && out.stderr.is_empty(),
                "{action}/{ty} produced output"
            );
        }
    }
}

/// Writes a stand-in `minivrrp` whose `check` fails with two diagnostics in the format the
/// real one uses, to test the init script's refusal path independently of the parser.
fn failing_checker(s: &Scratch) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let fake = s.path("fake-minivrrp");
    fs::write(
        &fake,
        "#!/bin/sh\n[ \"$1\" = check ] || exit 3\n\
         echo \"$3:3: instance.vrid: 300 is outside 1..255\" >&2\n\
         echo \"$3:4: instance.priority: 0 is reserved\" >&2\nexit 1\n",
    )
    .unwrap();
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    fake
}

#[test]
fn init_start_logs_every_check_diagnostic_line_and_opens_no_instance() {
    if !tools_present("init_fake_check", &["sh"]) {
        return;
    }
    let s = Scratch::new("init_fake_check");
    let conf = shipped_config(&s);
    let fake = failing_checker(&s);
    let record = s.path("record");
    fs::write(&record, "").unwrap();
    let stubs = Path::new(ROOT).join("tests/openwrt");
    let path = format!(
        "{}:{}",
        stubs.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = run(Command::new("sh")
        .arg(stubs.join("rc.common"))
        .arg(Path::new(ROOT).join("rootfs/etc/init.d/minivrrp"))
        .arg("start")
        .env("PATH", path)
        .env("PROCD_RECORD", &record)
        .env("STUB_PROG", &fake)
        .env("STUB_CONF", &conf));
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<String> = fs::read_to_string(&record)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let c = conf.display();
    let logged: Vec<&str> = logger_lines(&lines)
        .into_iter()
        .map(String::as_str)
        .collect();
    assert_eq!(
        logged,
        [
            format!("logger -t minivrrp -p daemon.err {c}:3: instance.vrid: 300 is outside 1..255"),
            format!("logger -t minivrrp -p daemon.err {c}:4: instance.priority: 0 is reserved"),
            format!("logger -t minivrrp -p daemon.err not starting: {c} is invalid"),
        ]
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("open_instance")),
        "{lines:#?}"
    );
    // The service is still registered with its reload trigger, so fixing the file and
    // running reload_config starts it (see init_reload_starts_the_service_when_no_instance_runs).
    assert!(
        lines.iter().any(|l| l == "add_reload_trigger minivrrp"),
        "{lines:#?}"
    );
}

#[test]
fn ipk_postinst_runs_default_postinst_from_instroot_unless_no_script() {
    let test = "ipk_postinst";
    if !tools_present(test, &["tar", "gzip", "sh"]) {
        return;
    }
    let s = Scratch::new(test);
    let ipk = build_ipk("x86_64", &s.path("out"), &[]);
    unpack_ipk(&ipk, &s.0);
    // An image root whose functions.sh records what the maintainer scripts call.
    let instroot = s.path("instroot");
    fs::create_dir_all(instroot.join("lib")).unwrap();
    let calls = s.path("calls");
    fs::write(
        instroot.join("lib/functions.sh"),
        format!(
            "default_postinst() {{ echo \"postinst $*\" >>'{0}'; }}\n\
             default_prerm() {{ echo \"prerm $*\" >>'{0}'; }}\n",
            calls.display()
        ),
    )
    .unwrap();
    let script = |name: &str, no_script: &str| {
        run_ok(
            Command::new("sh")
                .arg(s.path(&format!("control/{name}")))
                .arg("install")
                .env("IPKG_INSTROOT", &instroot)
                .env("IPKG_NO_SCRIPT", no_script),
        );
    };
    script("postinst", "1");
    assert!(!calls.exists(), "postinst ran with IPKG_NO_SCRIPT=1");
    script("postinst", "");
    script("prerm", "");
    let postinst = s.path("control/postinst");
    let prerm = s.path("control/prerm");
    assert_eq!(
        fs::read_to_string(&calls).unwrap(),
        format!(
            "postinst {} install\nprerm {} install\n",
            postinst.display(),
            prerm.display()
        )
    );
}

#[test]
fn init_script_records_the_same_procd_calls_under_busybox_ash() {
    if !tools_present("init_busybox", &["sh", "busybox", "md5sum"]) {
        return;
    }
    let s = Scratch::new("init_busybox");
    let conf = enabled_config(&s);
    for (action, running) in [
        ("start", false),
        ("reload", true),
        ("stop", true),
        ("enable", false),
    ] {
        let host = rc_with("sh", action, &s, &conf, running);
        let ash = rc_with("busybox", action, &s, &conf, running);
        assert_eq!(ash.0, Some(0), "{action} under busybox ash: {:#?}", ash.1);
        assert_eq!(host, ash, "{action}: busybox ash and sh disagree");
    }
}

/// One member of a tar stream as opkg-lede's `get_header_tar` (libbb/unarchive.c) sees it.
struct TarMember {
    name: String,
    typeflag: u8,
    data: Vec<u8>,
}

fn octal(field: &[u8]) -> u64 {
    let text: String = field
        .iter()
        .take_while(|b| **b != 0)
        .map(|b| *b as char)
        .collect();
    u64::from_str_radix(text.trim(), 8).unwrap_or_else(|_| panic!("bad octal field {text:?}"))
}

/// Walks a tar the way opkg-lede does: 512-byte headers that must carry the "ustar" magic and
/// a valid checksum (unsigned sum with the checksum field as spaces), size in octal, data
/// padded to 512; stops at the first header that fails (opkg stops silently there too, so
/// the caller checks that every expected member was seen).
fn opkg_tar_members(tar: &[u8]) -> Vec<TarMember> {
    let mut members = Vec::new();
    let mut off = 0;
    while off + 512 <= tar.len() {
        let h = &tar[off..off + 512];
        if &h[257..262] != b"ustar" {
            break;
        }
        let sum: u64 = h[..148]
            .iter()
            .chain(&h[156..])
            .map(|b| u64::from(*b))
            .sum::<u64>()
            + 8 * 32;
        assert_eq!(
            sum,
            octal(&h[148..156]),
            "tar header checksum at offset {off}"
        );
        let name: String = h[..100]
            .iter()
            .take_while(|b| **b != 0)
            .map(|b| *b as char)
            .collect();
        assert_eq!(h[345], 0, "{name}: opkg-lede would join a ustar prefix");
        let size = octal(&h[124..136]) as usize;
        let typeflag = h[156];
        assert!(
            typeflag != b'L' && typeflag != b'K',
            "{name}: GNU long-name member"
        );
        off += 512;
        members.push(TarMember {
            name,
            typeflag,
            data: tar[off..off + size].to_vec(),
        });
        off += size.div_ceil(512) * 512;
    }
    members
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn gzip");
    let mut stdin = child.stdin.take().unwrap();
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "gzip -dc failed");
    out.stdout
}

/// opkg-lede's deb_extract: find `control.tar.gz`/`data.tar.gz` in the gzip'd outer tar
/// (a leading "./" is skipped), gunzip it and walk its tar.
fn opkg_extract(ipk: &[u8], inner: &str) -> Vec<TarMember> {
    let outer = opkg_tar_members(&gunzip(ipk));
    let member = outer
        .iter()
        .find(|m| m.name.strip_prefix("./").unwrap_or(&m.name) == inner)
        .unwrap_or_else(|| panic!("opkg-lede finds no {inner} in the outer tar"));
    opkg_tar_members(&gunzip(&member.data))
}

#[test]
fn ipk_reads_back_the_way_opkg_lede_reads_it() {
    let test = "ipk_opkg_lede";
    if !tools_present(test, &["tar", "gzip"]) {
        return;
    }
    let s = Scratch::new(test);
    let ipk = fs::read(build_ipk("mipsel_24kc", &s.path("out"), &[])).unwrap();
    // The outer format: gzip magic, then tar (ar's "!<arch>\n" would fail here).
    assert_eq!(&ipk[..2], &[0x1f, 0x8b], "outer container is not gzip");

    let control = opkg_extract(&ipk, "control.tar.gz");
    // opkg's pkg_extract_control_file_to_stream asks for "./control" / "control".
    let text = control
        .iter()
        .find(|m| m.name == "./control" && m.typeflag == b'0')
        .map(|m| String::from_utf8(m.data.clone()).unwrap())
        .expect("./control in control.tar.gz");
    let fields = parse_control(&text);
    assert_eq!(fields["Package"], "minivrrp");
    assert_eq!(fields["Architecture"], "mipsel_24kc");
    assert_eq!(fields["Depends"], "libc");
    for script in ["./postinst", "./prerm", "./conffiles"] {
        assert!(control.iter().any(|m| m.name == script), "{script} missing");
    }

    let data = opkg_extract(&ipk, "data.tar.gz");
    let files: Vec<&str> = data
        .iter()
        .filter(|m| m.typeflag == b'0')
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(
        files,
        [
            "./etc/config/minivrrp",
            "./etc/hotplug.d/minivrrp/50-example",
            "./etc/init.d/minivrrp",
            "./lib/upgrade/keep.d/minivrrp",
            "./usr/libexec/rpcd/minivrrp",
            "./usr/sbin/minivrrp",
        ]
    );
    let bin = data
        .iter()
        .find(|m| m.name == "./usr/sbin/minivrrp")
        .unwrap();
    assert!(
        bin.data == fs::read(package_bin()).unwrap(),
        "binary differs"
    );
    // Installed-Size is what the uncompressed data tar takes.
    let outer = opkg_tar_members(&gunzip(&ipk));
    let data_tgz = outer.iter().find(|m| m.name == "./data.tar.gz").unwrap();
    assert_eq!(
        fields["Installed-Size"],
        gunzip(&data_tgz.data).len().to_string()
    );
}

/// sysupgrade (package/base-files/files/sbin/sysupgrade, add_conffiles) keeps
/// `find $(non-comment lines of /etc/sysupgrade.conf /lib/upgrade/keep.d/*) -type f -o -type l`.
#[test]
fn sysupgrade_keeps_user_hooks_listed_in_keep_d() {
    let test = "keep_d";
    if !tools_present(test, &["tar", "gzip", "sh", "find", "sed"]) {
        return;
    }
    let s = Scratch::new(test);
    let ipk = build_ipk("x86_64", &s.path("out"), &[]);
    unpack_ipk(&ipk, &s.0);
    let root = s.path("data");
    // A user's own hook, next to the packaged example.
    fs::write(
        root.join("etc/hotplug.d/minivrrp/60-mine"),
        "logger \"$ACTION $NAME\"\n",
    )
    .unwrap();
    let keep = root.join("lib/upgrade/keep.d/minivrrp");
    let listed = run_ok(Command::new("sh").arg("-c").arg(
        "cd \"$1\" && find $(sed -ne '/^[[:space:]]*$/d; /^#/d; s|^/||; p' \"$2\") \\( -type f -o -type l \\) | sort",
    ).arg("keep").arg(&root).arg(&keep));
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        [
            "etc/hotplug.d/minivrrp/50-example",
            "etc/hotplug.d/minivrrp/60-mine"
        ]
    );
}

/// The SDK Makefile's Build/Prepare, run as make would run it (the $(CP)/$(INSTALL_DIR)
/// lines with the variables filled in), must give a tree cargo can build: Cargo.toml names
/// board/build.rs as its build script.
#[test]
fn sdk_makefile_prepare_gives_a_tree_cargo_builds() {
    let test = "sdk_prepare";
    if !tools_present(test, &["sh", "cp"]) {
        return;
    }
    let s = Scratch::new(test);
    let mk = fs::read_to_string(Path::new(ROOT).join("openwrt/minivrrp/Makefile")).unwrap();
    const HEAD: &str = "define Build/Prepare\n";
    let start = mk.find(HEAD).expect("Build/Prepare") + HEAD.len();
    let body = &mk[start..start + mk[start..].find("endef").unwrap()];
    let build_dir = s.path("build");
    let script = body
        .replace("\\\n", " ")
        .replace("$(INSTALL_DIR)", "install -d -m0755")
        .replace("$(CP)", "cp -fpR")
        .replace("$(PKG_BUILD_DIR)", &build_dir.display().to_string())
        .replace("$(MINIVRRP_SRC)", ROOT);
    run_ok(Command::new("sh").arg("-ec").arg(&script));
    // The same locked dependencies, offline; a target dir of its own that persists between
    // runs (under target/), so only the first run compiles the dependencies.
    let out = run(Command::new("cargo")
        .arg("check")
        .arg("--offline")
        .arg("--locked")
        .arg("--release")
        .arg("--bin")
        .arg("minivrrp")
        .current_dir(&build_dir)
        .env(
            "CARGO_TARGET_DIR",
            Path::new(ROOT).join("target/sdk-prepare"),
        ));
    assert!(
        out.status.success(),
        "cargo check in the prepared tree failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sdk_makefile_declares_license_maintainer_rebuild_inputs_kmods_and_the_ipk_conffiles() {
    let mk = fs::read_to_string(Path::new(ROOT).join("openwrt/minivrrp/Makefile")).unwrap();
    let var = |name: &str| -> String {
        let start = mk
            .find(&format!("\n{name}:="))
            .unwrap_or_else(|| panic!("{name} not set"))
            + name.len()
            + 3;
        let mut value = String::new();
        for line in mk[start..].lines() {
            value.push_str(line.trim_end_matches('\\'));
            value.push(' ');
            if !line.ends_with('\\') {
                break;
            }
        }
        value.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    assert_eq!(var("PKG_LICENSE"), env!("CARGO_PKG_LICENSE"));
    let license_file = var("PKG_LICENSE_FILES");
    assert!(
        Path::new(ROOT).join(&license_file).is_file(),
        "{license_file}"
    );
    let maintainer = var("PKG_MAINTAINER");
    assert!(
        maintainer.contains(" <") && maintainer.contains('@') && maintainer.ends_with('>'),
        "{maintainer}"
    );
    // Every input of the build is hashed into the .prepared stamp.
    let deps = var("PKG_FILE_DEPENDS");
    for input in [
        "Cargo.toml",
        "Cargo.lock",
        "src",
        "board/build.rs",
        "rootfs/etc",
    ] {
        assert!(
            deps.split(' ')
                .any(|d| d == format!("$(MINIVRRP_SRC)/{input}")),
            "{input} not in PKG_FILE_DEPENDS: {deps}"
        );
    }
    assert!(mk.contains("+MINIVRRP_VMAC:kmod-macvlan"), "kmod-macvlan");
    assert!(mk.contains("+MINIVRRP_IPVS:kmod-nf-ipvs"), "kmod-nf-ipvs");
    assert!(mk.contains("\tconfig MINIVRRP_IPVS\n"), "IPVS menu option");
    // The SDK package and build-ipk.sh mark the same conffiles.
    const HEAD: &str = "define Package/minivrrp/conffiles\n";
    let start = mk.find(HEAD).unwrap() + HEAD.len();
    let conffiles = &mk[start..start + mk[start..].find("endef").unwrap()];
    let s = Scratch::new("sdk_conffiles");
    if tools_present("sdk_conffiles", &["tar", "gzip"]) {
        let ipk = build_ipk("x86_64", &s.path("out"), &[]);
        unpack_ipk(&ipk, &s.0);
        assert_eq!(
            fs::read_to_string(s.path("control/conffiles")).unwrap(),
            conffiles
        );
    }
    assert!(
        mk.contains("$(PKG_BUILD_DIR)/rootfs/lib/upgrade/keep.d/minivrrp"),
        "keep.d not installed"
    );
}

/// Runs openwrt/build-ipk.sh --apk for `board`; returns the .apk path it printed.
fn build_apk(board: &str, out_dir: &Path) -> PathBuf {
    build_ipk(board, out_dir, &["--apk"])
}

/// A value of an apk v3 ADB block, decoded after the format's description (apk-tools
/// doc/apk-v3.5, src/adb.h): a u32 tag, 4 bits type, 28 bits immediate or offset.
#[derive(Debug, Clone)]
enum AdbVal {
    Null,
    Int(u64),
    Blob(Vec<u8>),
    /// Slots 1.. of an object or array (slot 0, the count, is dropped).
    Slots(Vec<u32>),
}

struct Adb<'a>(&'a [u8]);

impl Adb<'_> {
    fn u32_at(&self, off: usize) -> u32 {
        u32::from_le_bytes(self.0[off..off + 4].try_into().unwrap())
    }

    fn val(&self, v: u32) -> AdbVal {
        let off = (v & 0x0fff_ffff) as usize;
        match v & 0xf000_0000 {
            0x0000_0000 => {
                assert_eq!(off, 0, "only NULL is used as a special value here");
                AdbVal::Null
            }
            0x1000_0000 => AdbVal::Int(off as u64),
            0x2000_0000 => AdbVal::Int(u64::from(self.u32_at(off))),
            0x3000_0000 => {
                AdbVal::Int(u64::from_le_bytes(self.0[off..off + 8].try_into().unwrap()))
            }
            0x8000_0000 => {
                let n = self.0[off] as usize;
                AdbVal::Blob(self.0[off + 1..off + 1 + n].to_vec())
            }
            0x9000_0000 => {
                assert_eq!(off % 2, 0, "blob16 length unaligned");
                let n = u16::from_le_bytes([self.0[off], self.0[off + 1]]) as usize;
                AdbVal::Blob(self.0[off + 2..off + 2 + n].to_vec())
            }
            0xa000_0000 => {
                assert_eq!(off % 4, 0, "blob32 length unaligned");
                let n = self.u32_at(off) as usize;
                AdbVal::Blob(self.0[off + 4..off + 4 + n].to_vec())
            }
            0xd000_0000 | 0xe000_0000 => {
                assert_eq!(off % 4, 0, "object unaligned");
                let n = self.u32_at(off) as usize;
                assert!(n >= 1, "object without its count slot");
                AdbVal::Slots((1..n).map(|i| self.u32_at(off + 4 * i)).collect())
            }
            t => panic!("unknown ADB value type {t:#x}"),
        }
    }

    fn slots(&self, v: u32) -> Vec<u32> {
        match self.val(v) {
            AdbVal::Slots(s) => s,
            AdbVal::Null => Vec::new(),
            other => panic!("expected an object or array, got {other:?}"),
        }
    }

    /// Slot `i` (1-based, as the schema numbers them) of an object; NULL past the end.
    fn field(&self, obj: u32, i: usize) -> AdbVal {
        self.slots(obj)
            .get(i - 1)
            .map_or(AdbVal::Null, |v| self.val(*v))
    }

    fn raw_field(&self, obj: u32, i: usize) -> u32 {
        self.slots(obj).get(i - 1).copied().unwrap_or(0)
    }

    fn text(&self, obj: u32, i: usize) -> String {
        match self.field(obj, i) {
            AdbVal::Blob(b) => String::from_utf8(b).unwrap(),
            AdbVal::Null => String::new(),
            other => panic!("expected a string, got {other:?}"),
        }
    }

    fn int(&self, obj: u32, i: usize) -> u64 {
        match self.field(obj, i) {
            AdbVal::Int(n) => n,
            other => panic!("expected an int, got {other:?}"),
        }
    }
}

/// Inflates the raw deflate stream after "ADBd" (python3's zlib: the test has no crate for it).
fn inflate_raw(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("python3")
        .arg("-c")
        .arg("import sys, zlib; sys.stdout.buffer.write(zlib.decompress(sys.stdin.buffer.read(), -15))")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn python3");
    let mut stdin = child.stdin.take().unwrap();
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "raw inflate failed");
    out.stdout
}

/// One installed file as the package describes it.
#[derive(Debug)]
struct ApkFile {
    path: String,
    mode: u64,
    size: u64,
    sha256: Vec<u8>,
    data: Option<Vec<u8>>,
}

struct ApkPackage {
    info: BTreeMap<&'static str, String>,
    depends: Vec<String>,
    dirs: Vec<(String, u64)>,
    files: Vec<ApkFile>,
    scripts: BTreeMap<&'static str, String>,
}

/// Reads an apk v3 package: "ADBd" + raw deflate of "ADB." + schema "pckg", then blocks
/// (u32 tag: 2 bits type, 30 bits size including the tag; padded to 8): one ADB block,
/// then one DATA block per non-empty file, headed by its (path, file) indices.
fn read_apk(bytes: &[u8]) -> ApkPackage {
    assert_eq!(&bytes[..4], b"ADBd", "not a deflate-compressed ADB file");
    let s = inflate_raw(&bytes[4..]);
    assert_eq!(&s[..4], b"ADB.", "ADB magic");
    assert_eq!(&s[4..8], b"pckg", "package schema");
    let mut off = 8;
    let mut adb: Option<&[u8]> = None;
    let mut data_blocks: Vec<(u32, u32, &[u8])> = Vec::new();
    while off < s.len() {
        let tag = u32::from_le_bytes(s[off..off + 4].try_into().unwrap());
        let (kind, raw) = (tag >> 30, (tag & 0x3fff_ffff) as usize);
        assert!(
            raw >= 4 && off + raw <= s.len(),
            "block size {raw} at {off}"
        );
        let payload = &s[off + 4..off + raw];
        match kind {
            0 => {
                assert!(
                    adb.is_none() && data_blocks.is_empty(),
                    "ADB block not first/once"
                );
                adb = Some(payload);
            }
            2 => {
                assert!(adb.is_some(), "DATA before ADB");
                let p = u32::from_le_bytes(payload[..4].try_into().unwrap());
                let f = u32::from_le_bytes(payload[4..8].try_into().unwrap());
                data_blocks.push((p, f, &payload[8..]));
            }
            k => panic!("unexpected block type {k} (1 = SIG: OpenWrt packages are unsigned)"),
        }
        off += raw.div_ceil(8) * 8;
    }
    assert_eq!(off, s.len(), "trailing bytes");
    let adb = Adb(adb.expect("ADB block"));
    assert_eq!(adb.0[0], 0, "adb_compat_ver");
    let root = adb.u32_at(4);

    let pkginfo = adb.raw_field(root, 1);
    let mut info = BTreeMap::new();
    for (i, k) in [
        (1, "name"),
        (2, "version"),
        (4, "description"),
        (5, "arch"),
        (6, "license"),
        (7, "origin"),
        (8, "maintainer"),
    ] {
        info.insert(k, adb.text(pkginfo, i));
    }
    info.insert("installed-size", adb.int(pkginfo, 12).to_string());
    let depends = adb
        .slots(adb.raw_field(pkginfo, 15))
        .into_iter()
        .map(|d| adb.text(d, 1))
        .collect();

    let mut dirs = Vec::new();
    let mut files = Vec::new();
    for (pi, dir) in adb.slots(adb.raw_field(root, 2)).into_iter().enumerate() {
        let dname = adb.text(dir, 1);
        dirs.push((dname.clone(), adb.int(adb.raw_field(dir, 2), 1)));
        for (fi, file) in adb.slots(adb.raw_field(dir, 3)).into_iter().enumerate() {
            let name = adb.text(file, 1);
            let sha256 = match adb.field(file, 5) {
                AdbVal::Blob(b) => b,
                other => panic!("{name}: hash {other:?}"),
            };
            let data = data_blocks
                .iter()
                .find(|(p, f, _)| *p as usize == pi + 1 && *f as usize == fi + 1)
                .map(|(_, _, d)| d.to_vec());
            files.push(ApkFile {
                path: format!("/{dname}/{name}"),
                mode: adb.int(adb.raw_field(file, 2), 1),
                size: adb.int(file, 3),
                sha256,
                data,
            });
        }
    }
    let mut scripts = BTreeMap::new();
    let sc = adb.raw_field(root, 3);
    for (i, k) in [
        (2, "pre-install"),
        (3, "post-install"),
        (4, "pre-deinstall"),
        (5, "post-deinstall"),
        (6, "pre-upgrade"),
        (7, "post-upgrade"),
    ] {
        let t = adb.text(sc, i);
        if !t.is_empty() {
            scripts.insert(k, t);
        }
    }
    ApkPackage {
        info,
        depends,
        dirs,
        files,
        scripts,
    }
}

fn sha256_of(path: &Path) -> String {
    run_ok(Command::new("sha256sum").arg(path))[..64].to_string()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn apk_package_reads_back_with_info_files_conffiles_and_openwrt_scripts() {
    let test = "apk_read";
    if !tools_present(test, &["python3", "sha256sum", "sh"]) {
        return;
    }
    let s = Scratch::new(test);
    let apk = build_apk("mipsel_24kc", &s.path("out"));
    assert_eq!(
        apk.file_name().and_then(|n| n.to_str()),
        Some(format!("minivrrp-{}_mipsel_24kc.apk", version()).as_str())
    );
    let bytes = fs::read(&apk).unwrap();
    let pkg = read_apk(&bytes);
    assert_eq!(pkg.info["name"], "minivrrp");
    assert_eq!(pkg.info["version"], version());
    assert_eq!(pkg.info["arch"], "mipsel_24kc");
    assert_eq!(pkg.info["license"], env!("CARGO_PKG_LICENSE"));
    assert!(pkg.info["maintainer"].contains('@'), "{:?}", pkg.info);
    assert_eq!(pkg.depends, ["libc"]);
    for (dir, mode) in &pkg.dirs {
        assert_eq!(*mode, 0o755, "directory {dir:?}");
    }

    let paths: Vec<(&str, u64)> = pkg
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.mode))
        .collect();
    assert_eq!(
        paths,
        [
            ("/etc/config/minivrrp", 0o600),
            ("/etc/hotplug.d/minivrrp/50-example", 0o644),
            ("/etc/init.d/minivrrp", 0o755),
            ("/lib/apk/packages/minivrrp.conffiles", 0o644),
            ("/lib/apk/packages/minivrrp.conffiles_static", 0o644),
            ("/lib/apk/packages/minivrrp.list", 0o644),
            ("/lib/upgrade/keep.d/minivrrp", 0o644),
            ("/usr/libexec/rpcd/minivrrp", 0o755),
            ("/usr/sbin/minivrrp", 0o755),
        ]
    );
    let mut installed = 0;
    for f in &pkg.files {
        let data = f
            .data
            .as_ref()
            .unwrap_or_else(|| panic!("{}: no DATA block", f.path));
        assert_eq!(data.len() as u64, f.size, "{}", f.path);
        installed += f.size;
        // Each DATA block holds the file whose hash the ADB block records.
        let tmp = s.path("blob");
        fs::write(&tmp, data).unwrap();
        assert_eq!(sha256_of(&tmp), hex(&f.sha256), "{}", f.path);
    }
    assert_eq!(pkg.info["installed-size"], installed.to_string());
    let file = |p: &str| -> &Vec<u8> {
        pkg.files
            .iter()
            .find(|f| f.path == p)
            .unwrap()
            .data
            .as_ref()
            .unwrap()
    };
    assert!(*file("/usr/sbin/minivrrp") == fs::read(package_bin()).unwrap());
    assert!(
        *file("/etc/config/minivrrp")
            == fs::read(Path::new(ROOT).join("rootfs/etc/config/minivrrp")).unwrap()
    );
    // apk v3 has no conffile field: OpenWrt ships the lists as files.
    let conffiles =
        String::from_utf8(file("/lib/apk/packages/minivrrp.conffiles").clone()).unwrap();
    assert_eq!(
        conffiles,
        "/etc/config/minivrrp\n/etc/hotplug.d/minivrrp/50-example\n"
    );
    let statics =
        String::from_utf8(file("/lib/apk/packages/minivrrp.conffiles_static").clone()).unwrap();
    let want: String = ["etc/config/minivrrp", "etc/hotplug.d/minivrrp/50-example"]
        .iter()
        .map(|p| {
            format!(
                "/{p} {}\n",
                sha256_of(&Path::new(ROOT).join("rootfs").join(p))
            )
        })
        .collect();
    assert_eq!(statics, want);
    let list = String::from_utf8(file("/lib/apk/packages/minivrrp.list").clone()).unwrap();
    let want: String = pkg.files.iter().map(|f| format!("{}\n", f.path)).collect();
    assert_eq!(list, want);

    // The scripts package-pack.mk generates for apk.
    assert_eq!(
        pkg.scripts.keys().copied().collect::<Vec<_>>(),
        ["post-install", "post-upgrade", "pre-deinstall"]
    );
    for (k, script) in &pkg.scripts {
        assert!(script.starts_with("#!/bin/sh\n"), "{k}");
        assert!(script.contains("export pkgname=\"minivrrp\"\n"), "{k}");
        let p = s.path(k);
        fs::write(&p, script).unwrap();
        run_ok(Command::new("sh").arg("-n").arg(&p));
    }
    // After default_postinst, the package's own step (the feed Makefile's
    // Package/minivrrp/postinst without its #! line), as package-pack.mk appends it.
    let step = "default_postinst\nif [ -z \"${IPKG_INSTROOT}\" ] && command -v uci";
    for k in ["post-install", "post-upgrade"] {
        assert!(pkg.scripts[k].contains(step), "{k}: {}", pkg.scripts[k]);
        assert!(
            pkg.scripts[k].ends_with("  /var/run/config.check/minivrrp\"\n\t} >\"$md5file.minivrrp\" && mv \"$md5file.minivrrp\" \"$md5file\"\nfi\n"),
            "{k}: {}",
            pkg.scripts[k]
        );
    }
    assert!(pkg.scripts["post-upgrade"].starts_with("#!/bin/sh\nexport PKG_UPGRADE=1\n"));
    assert!(pkg.scripts["pre-deinstall"].ends_with("default_prerm\n"));

    // Reproducible like the ipk.
    let again = fs::read(build_apk("mipsel_24kc", &s.path("again"))).unwrap();
    assert!(again == bytes, "two .apk builds differ");
}

/// With apk-tools 3 at hand (MINIVRRP_APK=/path/to/apk; Debian has no package of it, see
/// openwrt/README.md), the package is also checked by apk itself: verify, install into an
/// empty root with a stub libc, upgrade over an edited config, remove.
#[test]
fn apk_package_installs_upgrades_and_removes_with_apk_tools_when_given() {
    let Some(apk_tool) = std::env::var_os("MINIVRRP_APK") else {
        eprintln!("apk-tools check not run: set MINIVRRP_APK to an apk-tools 3 binary");
        return;
    };
    let s = Scratch::new("apk_tools");
    let pkg = build_apk("x86_64", &s.path("out"));
    let apk = |args: &[&str]| -> String {
        run_ok(
            Command::new(&apk_tool)
                .args(["--root"])
                .arg(s.path("root"))
                .args(["--allow-untrusted", "--no-network", "--force-no-chroot"])
                .args(args),
        )
    };
    run_ok(
        Command::new(&apk_tool)
            .args(["verify", "--allow-untrusted"])
            .arg(&pkg),
    );
    // A stub libc, written by the same writer with no files.
    fs::create_dir_all(s.path("empty")).unwrap();
    run_ok(
        Command::new("python3")
            .arg(Path::new(ROOT).join("openwrt/apk-mkpkg.py"))
            .args([
                "--info",
                "name:libc",
                "--info",
                "version:1.2.5-r4",
                "--info",
                "arch:x86_64",
            ])
            .arg("--files")
            .arg(s.path("empty"))
            .arg("--output")
            .arg(s.path("libc.apk")),
    );
    fs::create_dir_all(s.path("root")).unwrap();
    let libc = s.path("libc.apk").display().to_string();
    let p = pkg.display().to_string();
    apk(&["add", "--initdb", "--arch", "x86_64", &libc, &p]);
    let root = s.path("root");
    assert!(fs::read(root.join("usr/sbin/minivrrp")).unwrap() == fs::read(package_bin()).unwrap());
    // Upgrade (release 2) over an edited config: the edit stays, the new one is .apk-new.
    let conf = root.join("etc/config/minivrrp");
    let edited = fs::read_to_string(&conf).unwrap().replace("'100'", "'120'");
    fs::write(&conf, &edited).unwrap();
    let pkg2 = build_ipk("x86_64", &s.path("out2"), &["--apk", "--release", "2"]);
    apk(&["add", &pkg2.display().to_string()]);
    assert_eq!(fs::read_to_string(&conf).unwrap(), edited);
    assert!(root.join("etc/config/minivrrp.apk-new").is_file());
    apk(&["del", "minivrrp"]);
    assert!(!root.join("usr/sbin/minivrrp").exists());
    assert_eq!(
        fs::read_to_string(&conf).unwrap(),
        edited,
        "apk del removed an edited config"
    );
}

/// The router boards and the SDK feed package are built the same way: without the `import`
/// feature (size; the converter runs on a PC build), while x86_64 keeps every feature. A
/// profile or Makefile that drifts from the other would ship a binary of another size and
/// feature set than board/README.md describes.
#[test]
fn router_profiles_and_feed_makefile_leave_out_import_and_x86_64_keeps_it() {
    let features = |board: &str| {
        let env = fs::read_to_string(Path::new(ROOT).join(format!("board/{board}.env"))).unwrap();
        let lines: Vec<&str> = env
            .lines()
            .filter_map(|l| l.strip_prefix("CARGO_FEATURES="))
            .collect();
        assert_eq!(lines.len(), 1, "{board}.env: one CARGO_FEATURES line");
        lines[0].to_string()
    };
    for board in [
        "mips_24kc",
        "mipsel_24kc",
        "arm_cortex-a7_neon-vfpv4",
        "arm_cortex-a9_vfpv3-d16",
        "arm_cortex-a15_neon-vfpv4",
        "aarch64_cortex-a53",
        "aarch64_cortex-a72",
        "aarch64_generic",
    ] {
        assert_eq!(features(board), "--no-default-features", "{board}");
    }
    assert_eq!(features("x86_64"), "");
    let mk = fs::read_to_string(Path::new(ROOT).join("openwrt/minivrrp/Makefile")).unwrap();
    assert!(
        mk.contains("$(call Build/Compile/Cargo,,--no-default-features)"),
        "the feed Makefile builds without default features"
    );
    let cargo = fs::read_to_string(Path::new(ROOT).join("Cargo.toml")).unwrap();
    assert!(
        cargo.contains("default = [\"import\"]"),
        "import is the only default feature (so --no-default-features drops just it)"
    );
    // board/build.sh passes the profile's features to every build path.
    let sh = fs::read_to_string(Path::new(ROOT).join("board/build.sh")).unwrap();
    assert!(
        sh.matches("$CARGO_FEATURES").count() >= 3,
        "build_release, build_cross, build_all"
    );
}

/// Every file of the LuCI app as the package installs it: `htdocs/` under `/www`, `root/` as
/// is (how OpenWrt's luci.mk installs an app), with its source file.
fn luci_app_files() -> BTreeMap<String, PathBuf> {
    let app = Path::new(ROOT).join("openwrt/luci-app-minivrrp");
    let mut out = BTreeMap::new();
    for (sub, prefix) in [("htdocs", "/www"), ("root", "")] {
        let mut stack = vec![app.join(sub)];
        while let Some(dir) = stack.pop() {
            for e in fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p
                        .strip_prefix(app.join(sub))
                        .unwrap()
                        .to_string_lossy()
                        .to_string();
                    out.insert(format!("{prefix}/{rel}"), p);
                }
            }
        }
    }
    out
}

/// `build-ipk.sh --luci`: the LuCI app as a second package, Architecture all, no board and no
/// binary; the app's files and nothing else, no conffiles, a postinst that makes rpcd read the
/// new ACL; reproducible; and the same as an apk.
#[test]
fn luci_app_package_ipk_and_apk_hold_the_app_tree_for_architecture_all() {
    let test = "luci_app_package";
    if !tools_present(test, &["tar", "gzip", "python3", "sha256sum", "sh"]) {
        return;
    }
    let s = Scratch::new(test);
    let build = |out: &Path, apk: bool| {
        let mut c = Command::new("sh");
        c.arg(Path::new(ROOT).join("openwrt/build-ipk.sh"))
            .arg("--luci");
        if apk {
            c.arg("--apk");
        }
        PathBuf::from(run_ok(c.arg("--out").arg(out)).trim())
    };
    let ipk = build(&s.path("out"), false);
    assert_eq!(
        ipk.file_name().unwrap().to_string_lossy(),
        format!("luci-app-minivrrp_{}_all.ipk", version())
    );
    // A board or a binary makes no sense for it.
    let refused = run(Command::new("sh")
        .arg(Path::new(ROOT).join("openwrt/build-ipk.sh"))
        .args(["--luci", "x86_64"]));
    assert!(!refused.status.success());

    unpack_ipk(&ipk, &s.path("u"));
    let control = parse_control(&fs::read_to_string(s.path("u/control/control")).unwrap());
    assert_eq!(control["Package"], "luci-app-minivrrp");
    assert_eq!(control["Architecture"], "all");
    assert_eq!(control["Depends"], "libc, luci-base, minivrrp");
    assert_eq!(control["Section"], "luci");
    assert_eq!(control["Version"], version());
    assert!(
        !s.path("u/control/conffiles").exists(),
        "the app has no conffiles"
    );
    let postinst = fs::read_to_string(s.path("u/control/postinst")).unwrap();
    assert!(postinst.contains("/etc/init.d/rpcd reload"), "{postinst}");
    let check = run(Command::new("sh")
        .arg("-n")
        .arg(s.path("u/control/postinst")));
    assert!(check.status.success(), "{check:?}");

    let want = luci_app_files();
    assert!(want.contains_key("/www/luci-static/resources/view/minivrrp/status.js"));
    assert!(want.contains_key("/usr/share/rpcd/acl.d/luci-app-minivrrp.json"));
    let listing = tar_listing(&s.path("u/outer/data.tar.gz"));
    let files: Vec<&(String, String, String)> = listing
        .iter()
        .filter(|(p, m, _)| !m.starts_with('d') && !p.ends_with('/'))
        .collect();
    assert_eq!(
        files
            .iter()
            .map(|(p, _, _)| p.trim_start_matches('.').to_string())
            .collect::<Vec<_>>(),
        want.keys().cloned().collect::<Vec<_>>()
    );
    for (p, mode, owner) in &listing {
        assert_eq!(owner, "0/0", "{p}");
        let want_mode = if mode.starts_with('d') {
            "drwxr-xr-x"
        } else {
            "-rw-r--r--"
        };
        assert_eq!(mode, want_mode, "{p}");
    }
    for (path, src) in &want {
        assert_eq!(
            fs::read(s.path(&format!("u/data{path}"))).unwrap(),
            fs::read(src).unwrap(),
            "{path}"
        );
    }
    let again = build(&s.path("again"), false);
    assert_eq!(
        fs::read(&ipk).unwrap(),
        fs::read(&again).unwrap(),
        "reproducible"
    );

    let apk = build(&s.path("apk"), true);
    assert_eq!(
        apk.file_name().unwrap().to_string_lossy(),
        format!("luci-app-minivrrp-{}_all.apk", version())
    );
    let pkg = read_apk(&fs::read(&apk).unwrap());
    assert_eq!(pkg.info["name"], "luci-app-minivrrp");
    assert_eq!(pkg.info["arch"], "all");
    assert_eq!(pkg.depends, ["libc", "luci-base", "minivrrp"]);
    let mut paths: Vec<String> = pkg.files.iter().map(|f| f.path.clone()).collect();
    paths.retain(|p| !p.starts_with("/lib/apk/packages/"));
    assert_eq!(paths, want.keys().cloned().collect::<Vec<_>>());
    assert!(pkg.scripts["post-install"].contains("/etc/init.d/rpcd reload"));
}
