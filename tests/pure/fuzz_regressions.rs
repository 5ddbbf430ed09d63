//! The fuzz targets' properties (tests/fuzz/src/lib.rs) on stable, over the seed inputs
//! committed in tests/fuzz/seeds/<target>/: the keepalived captures' frames, netlink
//! replies, HTTP responses and UCI files the corpora started from, plus every input a
//! fuzzing run found failing (named `crash-*`, kept as regressions).

#[path = "../fuzz/src/lib.rs"]
mod props;

use std::path::PathBuf;

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/seeds")
        .join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().to_string(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(out.len() >= 3, "{target}: only {} seeds", out.len());
    out
}

fn check(target: &str, prop: fn(&[u8])) {
    for (name, data) in seeds(target) {
        let r = std::panic::catch_unwind(|| prop(&data));
        assert!(r.is_ok(), "{target}: seed {name} fails its property");
    }
}

#[test]
fn vrrp_frame_seeds_hold_the_round_trip_and_policy_properties() {
    check("vrrp_frame", props::vrrp_frame);
}

#[test]
fn auth_trailer_seeds_verify_once_and_round_trip() {
    check("auth_trailer", props::auth_trailer);
}

#[test]
fn http_seeds_decide_the_same_however_split() {
    check("http", props::http);
}

#[test]
fn netlink_seeds_decode_without_reading_past_the_end() {
    check("netlink", props::netlink);
}

#[test]
fn uci_seeds_print_a_fixed_point() {
    check("uci", props::uci);
}

#[test]
fn instance_seeds_keep_the_state_machine_invariants() {
    check("instance", props::instance);
}
