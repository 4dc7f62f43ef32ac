//! `distnet bench routing`: the README's routing benchmark command runs end to end on
//! a shipped instance and reports a feasible plan with its gap to the best known.

use std::process::Command;

#[test]
fn bench_routing_solves_a_vrplib_instance_and_reports_its_gap() {
    let instance = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../bench/vrplib/cvrp/X-n101-k25.vrp"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_distnet"))
        .args(["bench", "routing", instance, "--seconds", "1"])
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
}
