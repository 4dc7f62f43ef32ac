//! `distnet bench allocation`, the README's allocation benchmark command, end to end
//! on a small network: it commits, starts a replica that reads the cycle's
//! entitlements before it reports ready, and loads that replica. No timing
//! assertions: the machine is shared and noisy.

#[tokio::test]
async fn bench_allocation_commits_starts_a_replica_and_loads_it() {
    let db = distnet_testkit::TestDb::new().await.expect("a database server");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_distnet"))
        .args(["bench", "allocation", "--retailers", "300", "--products", "4"])
        .args(["--concurrency", "2", "--seconds", "1"])
        .env("DATABASE_URL", &db.url)
        .env("DISTNET__TELEMETRY__LOG_FILTER", "warn")
        .output()
        .await
        .expect("distnet runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("profiles and standings delivered through EventSink: 300 retailers"),
        "{stdout}"
    );
    assert!(stdout.contains("PreviewAllocation: 4 products"), "{stdout}");
    assert!(stdout.contains("CommitAllocation: 4 products"), "{stdout}");
    assert!(
        stdout.contains(
            "a replica started after the commit read 300 retailers' entitlements into memory and was ready in"
        ),
        "{stdout}"
    );
    for load in [
        "GetEntitlements:",
        "PlaceOrder (1 carton of any product):",
        "PlaceOrder (1 carton of one hot product):",
    ] {
        let line = stdout
            .lines()
            .find(|line| line.trim_start().starts_with(load))
            .unwrap_or_else(|| panic!("no {load} line: {stdout}"));
        assert!(line.contains("\"OK\": "), "{line}");
        for failure in ["Internal", "Unavailable", "Unknown", "DeadlineExceeded"] {
            assert!(!line.contains(failure), "{line}");
        }
    }
}
