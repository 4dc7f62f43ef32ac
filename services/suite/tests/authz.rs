//! The authorization matrix (README "Who may call what") walked through the four real
//! servers: every RPC of every service has a rule, every role a rule names may pass
//! the role gate, every other role is `PERMISSION_DENIED` (`ROLE_NOT_ALLOWED`), and
//! missing, expired, malformed, wrongly signed and `alg: none` tokens are
//! `UNAUTHENTICATED`. Calls carry an empty message, so none of them changes anything.

mod support;

use std::time::Duration;

use distnet_platform::auth::{Claims, Role};
use distnet_platform::authz::{self, Rule};
use support::{Suite, call, descriptors, reason, tables, token_for};
use tonic::Code;

/// The gRPC services and their methods, from the descriptors reflection serves.
fn described_services() -> Vec<(String, Vec<String>)> {
    descriptors()
        .file
        .iter()
        .flat_map(|file| {
            file.service.iter().map(move |service| {
                (
                    format!("{}.{}", file.package(), service.name()),
                    service.method.iter().map(|m| m.name().to_string()).collect(),
                )
            })
        })
        .collect()
}

#[test]
fn every_rpc_has_exactly_one_rule_and_every_rule_an_rpc() {
    let described = described_services();
    let all: Vec<&Rule> = tables()
        .iter()
        .flat_map(|table| table.iter())
        .chain(authz::EVENT_SINK)
        .collect();
    for (service, methods) in &described {
        for method in methods {
            let path = format!("/{service}/{method}");
            let rules = all.iter().filter(|r| r.matches(&path)).count();
            assert_eq!(
                rules, 1,
                "{path} needs exactly one rule in its service's access table"
            );
        }
    }
    for rule in &all {
        assert!(
            described
                .iter()
                .any(|(service, methods)| service == rule.service && methods.iter().any(|m| m == rule.method)),
            "{}/{} is not an RPC",
            rule.service,
            rule.method
        );
        assert!(
            !rule.roles.is_empty(),
            "{}/{} names no role",
            rule.service,
            rule.method
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cell_of_the_matrix_holds_on_the_real_servers() {
    let suite = Suite::start().await;
    let channels = &suite.channels;
    let tokens: Vec<(Role, String)> = Role::ALL
        .iter()
        .map(|&r| (r, format!("Bearer {}", token_for(r))))
        .collect();
    let mut cells = 0;
    for (server, table) in tables().into_iter().enumerate() {
        for rule in table.iter().chain(authz::EVENT_SINK) {
            for (role, token) in &tokens {
                let result = call(
                    &channels[server],
                    rule.service,
                    rule.method,
                    Vec::new(),
                    Some(token),
                )
                .await;
                let cell = format!("{}/{} as {}", rule.service, rule.method, role.as_str());
                if rule.roles.contains(role) {
                    if let Err(status) = &result {
                        assert!(
                            !matches!(reason(status).as_str(), "ROLE_NOT_ALLOWED" | "NO_ACCESS_RULE"),
                            "{cell}: allowed by the table but refused: {status:?}"
                        );
                        assert!(
                            !matches!(
                                status.code(),
                                Code::Unauthenticated | Code::Unimplemented | Code::Internal | Code::Unknown
                            ),
                            "{cell}: {status:?}"
                        );
                    }
                } else {
                    let status = result.expect_err(&format!("{cell}: not in the table, yet answered"));
                    assert_eq!(status.code(), Code::PermissionDenied, "{cell}: {status:?}");
                    assert_eq!(reason(&status), "ROLE_NOT_ALLOWED", "{cell}");
                }
                cells += 1;
            }
        }
    }
    let rpcs: usize = tables().iter().map(|t| t.len() + 1).sum();
    assert_eq!(cells, rpcs * Role::ALL.len());

    // Tokens: missing, malformed, expired, wrongly signed, unsigned.
    let valid = token_for(Role::Admin);
    let mut expired_claims = Claims::new("matrix-admin", Role::Admin, Duration::from_secs(60));
    expired_claims.exp = chrono::Utc::now().timestamp() - 3600;
    let expired = distnet_testkit::token(&expired_claims);
    let wrongly_signed = distnet_platform::auth::TokenIssuer::hs256("not-the-secret")
        .mint(&Claims::new(
            "matrix-admin",
            Role::Admin,
            Duration::from_secs(3600),
        ))
        .expect("mint");
    let claims_part = valid.split('.').nth(1).expect("a JWT has three parts");
    // base64url of {"alg":"none","typ":"JWT"}, the claims of a valid token, no signature.
    let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{claims_part}.");
    let bad: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("malformed", Some("Bearer not-a-token".to_string())),
        ("not a bearer", Some(format!("Basic {valid}"))),
        ("expired", Some(format!("Bearer {expired}"))),
        ("wrongly signed", Some(format!("Bearer {wrongly_signed}"))),
        ("alg none", Some(format!("Bearer {unsigned}"))),
    ];
    for (server, table) in tables().into_iter().enumerate() {
        let rule = table.first().expect("a rule");
        for (what, header) in &bad {
            let status = call(
                &channels[server],
                rule.service,
                rule.method,
                Vec::new(),
                header.as_deref(),
            )
            .await
            .expect_err(what);
            assert_eq!(
                status.code(),
                Code::Unauthenticated,
                "{}/{} with {what}",
                rule.service,
                rule.method
            );
        }
        // An RPC the server does not know is refused before anything else runs.
        let status = call(
            &channels[server],
            rule.service,
            "NoSuchMethod",
            Vec::new(),
            Some(&format!("Bearer {valid}")),
        )
        .await
        .expect_err("unknown method");
        assert_eq!(status.code(), Code::PermissionDenied);
        assert_eq!(reason(&status), "NO_ACCESS_RULE");
    }

    suite.stop().await;
}

#[test]
fn the_readme_shows_the_tables_as_the_code_has_them() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).expect("README");
    for table in tables() {
        let rendered = authz::render_markdown(table);
        assert!(
            readme.contains(&rendered),
            "README.md lacks the current table; `distnet access` prints it:\n{rendered}"
        );
    }
    assert!(readme.contains(&authz::render_markdown(authz::EVENT_SINK)));
}
