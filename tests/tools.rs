//! The benchmark tools as `make bench` runs them: sendfloor measures and reports, and
//! refuses bad arguments with status 2.

use std::process::Command;

const SENDFLOOR: &str = env!("CARGO_BIN_EXE_sendfloor");

#[test]
fn sendfloor_reports_positive_costs_and_a_projection() {
    let out = Command::new(SENDFLOOR).args(["--sockets", "16", "--rounds", "3", "--miners", "1000"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["sockets"], 16);
    assert!(v["job_bytes"].as_u64().unwrap() > 300, "a real job line: {v}");
    for key in ["job_write_us", "share_read_us", "answer_write_us"] {
        assert!(v[key].as_f64().unwrap() > 0.0, "{key}: {v}");
    }
    let projected = v["job_write_us"].as_f64().unwrap(); // 1000 writes of w us, in ms
    assert!((v["floor_fanout_ms"].as_f64().unwrap() - projected).abs() < 0.1, "fan-out floor is 1000 job writes: {v}");
    assert!(err.contains("floor for any proxy here"), "{err}");
}

#[test]
fn sendfloor_refuses_bad_arguments() {
    for args in [["--sockets", "0"], ["--rounds", "many"]] {
        let out = Command::new(SENDFLOOR).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(args[0]), "{args:?}");
    }
}
