//! `distnet bench routing`: the README's routing benchmark command runs end to end on
//! a shipped instance and reports a feasible plan with its gap to the best known.

use std::process::Command;

#[test]
fn bench_routing_solves_a_vrplib_instance_and_reports_its_gap() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/vrplib/cvrp/");
    let output = Command::new(env!("CARGO_BIN_EXE_distnet"))
        .args(["bench", "routing", "--seconds", "0.5"])
        .arg(format!("{dir}X-n101-k25.vrp"))
        .arg(format!("{dir}X-n157-k13.vrp"))
        .output()
        .expect("distnet runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("0 unassigned, 0 violations"), "{stdout}");
    assert!(stdout.contains("best known 27591.0: gap +"), "{stdout}");
    assert!(stdout.contains("| X-n157-k13 | 156 | 0.5 s |"), "{stdout}");
    assert!(stdout.contains("mean gap over 2 instances: +"), "{stdout}");
}
