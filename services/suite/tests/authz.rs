//! The authorization matrix (README "Who may call what") walked through the four real
//! servers: every RPC of every service has a rule, every role a rule names may pass
//! the role gate, every other role is `PERMISSION_DENIED` (`ROLE_NOT_ALLOWED`), and
//! missing, expired, malformed, wrongly signed and `alg: none` tokens are
//! `UNAUTHENTICATED`. Calls carry an empty message, so none of them changes anything.

use std::time::Duration;

use distnet_platform::auth::{Claims, Role};
use distnet_platform::authz::{self, Rule};
use distnet_platform::server::{ServerHandle, Shutdown};
use distnet_testkit::TestDb;
use prost::Message as _;
use tonic::Code;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic_types::StatusExt as _;

/// Calls `/{service}/{method}` with an empty message and `authorization`.
async fn call(
    channel: &Channel,
    service: &str,
    method: &str,
    authorization: Option<&str>,
) -> Result<(), tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path: PathAndQuery = format!("/{service}/{method}")
        .parse()
        .map_err(|_| tonic::Status::internal("bad path"))?;
    let mut request = tonic::Request::new(());
    if let Some(value) = authorization {
        let value: MetadataValue<_> = value.parse().map_err(|_| tonic::Status::internal("bad header"))?;
        request.metadata_mut().insert("authorization", value);
    }
    request.set_timeout(Duration::from_secs(30));
    grpc.unary(request, path, tonic_prost::ProstCodec::<(), ()>::default())
        .await
        .map(|_| ())
}

fn reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

/// A token for `role` with the scopes the role carries in production.
fn token_for(role: Role) -> String {
    let claims = Claims::new(
        format!("matrix-{}", role.as_str()),
        role,
        Duration::from_secs(3600),
    )
    .with_areas(["area-01"]);
    let claims = if role == Role::Retailer {
        claims.with_customer("r-00001")
    } else {
        claims
    };
    distnet_testkit::token(&claims)
}

/// The gRPC services and their methods, from the descriptors reflection serves.
fn described_services() -> Vec<(String, Vec<String>)> {
    let set =
        prost_types::FileDescriptorSet::decode(distnet_proto::FILE_DESCRIPTOR_SET).expect("descriptors");
    set.file
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

struct Suite {
    _db: TestDb,
    shutdown: Shutdown,
    handles: Vec<ServerHandle>,
}

async fn suite() -> Suite {
    let db = TestDb::new().await.expect("database");
    let settings = distnet_testkit::settings(&db.url);
    let shutdown = Shutdown::new();
    let bind = || tokio::net::TcpListener::bind("127.0.0.1:0");
    let handles = vec![
        distnet_customers::serve(&settings, bind().await.expect("bind"), shutdown.clone())
            .await
            .expect("customers"),
        distnet_accreditation::serve(&settings, bind().await.expect("bind"), shutdown.clone())
            .await
            .expect("accreditation"),
        distnet_allocation::serve(&settings, bind().await.expect("bind"), shutdown.clone())
            .await
            .expect("allocation"),
        distnet_logistics::serve(&settings, bind().await.expect("bind"), shutdown.clone())
            .await
            .expect("logistics"),
    ];
    Suite {
        _db: db,
        shutdown,
        handles,
    }
}

/// Each server with its own table.
fn tables() -> [(&'static [Rule], usize); 4] {
    [
        (distnet_customers::api::ACCESS, 0),
        (distnet_accreditation::api::ACCESS, 1),
        (distnet_allocation::api::ACCESS, 2),
        (distnet_logistics::api::ACCESS, 3),
    ]
}

#[test]
fn every_rpc_has_exactly_one_rule_and_every_rule_an_rpc() {
    let described = described_services();
    let all: Vec<&Rule> = tables()
        .iter()
        .flat_map(|(table, _)| table.iter())
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
    let suite = suite().await;
    let mut channels = Vec::new();
    for handle in &suite.handles {
        channels.push(
            distnet_testkit::channel(handle.local_addr)
                .await
                .expect("connect"),
        );
    }
    let tokens: Vec<(Role, String)> = Role::ALL
        .iter()
        .map(|&r| (r, format!("Bearer {}", token_for(r))))
        .collect();
    let mut cells = 0;
    for (table, server) in tables() {
        for rule in table.iter().chain(authz::EVENT_SINK) {
            for (role, token) in &tokens {
                let result = call(&channels[server], rule.service, rule.method, Some(token)).await;
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
    let rpcs: usize = tables().iter().map(|(t, _)| t.len() + 1).sum();
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
    for (table, server) in tables() {
        let rule = table.first().expect("a rule");
        for (what, header) in &bad {
            let status = call(&channels[server], rule.service, rule.method, header.as_deref())
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
            Some(&format!("Bearer {valid}")),
        )
        .await
        .expect_err("unknown method");
        assert_eq!(status.code(), Code::PermissionDenied);
        assert_eq!(reason(&status), "NO_ACCESS_RULE");
    }

    suite.shutdown.trigger();
    for handle in suite.handles {
        handle.wait().await.expect("clean shutdown");
    }
}

#[test]
fn the_readme_shows_the_tables_as_the_code_has_them() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).expect("README");
    for (table, _) in tables() {
        let rendered = authz::render_markdown(table);
        assert!(
            readme.contains(&rendered),
            "README.md lacks the current table; `distnet access` prints it:\n{rendered}"
        );
    }
    assert!(readme.contains(&authz::render_markdown(authz::EVENT_SINK)));
}
