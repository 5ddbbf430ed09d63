//! The rpcd plugin (`rootfs/usr/libexec/rpcd/minivrrp`) answers with valid JSON whatever the
//! daemon's message holds: a config error quoting a control character (^A), quotes,
//! backslashes, tabs and several lines. A stand-in `minivrrp` prints the message.

use std::process::Command;

fn plugin() -> String {
    format!(
        "{}/rootfs/usr/libexec/rpcd/minivrrp",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn reply_messages_are_valid_json_whatever_they_hold() {
    let dir = std::env::temp_dir().join(format!("mv-rpcd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let message = "f:3: globals.router_id: 'r\u{1}1' is bad\n\"quoted\" back\\slash\ttab\rcr \u{7f} \u{1b}[31m";
    let msg_file = dir.join("message");
    std::fs::write(&msg_file, message).unwrap();
    let stub = dir.join("minivrrp");
    std::fs::write(
        &stub,
        format!("#!/bin/sh\ncat '{}'\nexit 1\n", msg_file.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    for method in ["reload", "maintenance_on", "status"] {
        let out = Command::new("sh")
            .arg(plugin())
            .args(["call", method])
            .env("MINIVRRP", &stub)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("sh");
        let text = String::from_utf8(out.stdout).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method}: not JSON ({e}): {text:?}"));
        assert_eq!(v["ok"], false, "{method}");
        assert_eq!(
            v["message"], message,
            "{method}: the message survives intact"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
