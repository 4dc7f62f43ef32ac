//! The deployment files in `deploy/`: the Kubernetes base and prod overlay as
//! `kubectl kustomize` renders them, the Compose file and the Dockerfile. Nothing is
//! started: the manifests are parsed and checked for what a rollout relies on (probes,
//! resources, a locked-down pod, scaling, disruption budgets, the migration, network
//! policies that allow exactly the calls DESIGN.md describes, TLS in production).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml_ng::Value;

/// The services, their Kubernetes/Compose names and ports (DESIGN.md "Services, ports,
/// data"; `services.<name>.port` in distnet.toml.example).
const SERVICES: [(&str, u16); 4] = [
    ("customers", 50051),
    ("accreditation", 50052),
    ("allocation", 50053),
    ("logistics", 50054),
];

/// Who opens connections to whom, `(from, to)`: the only service-to-service traffic the
/// network policies may allow. Derived from DESIGN.md "How services talk":
/// - "Synchronous gRPC for reads a caller needs now (logistics asks customers for
///   addresses and locations in one `BatchGetCustomers`)";
/// - "Events ... relayed by a background task to each subscriber's
///   `distnet.events.v1.EventSink/Deliver`": the publisher calls each subscriber, per
///   the event table (event | from | to).
const EDGES: &[(&str, &str)] = &[
    // `BatchGetCustomers`; and `DeliveryCompleted`, `DeliveryFailed` | logistics |
    // allocation, customers.
    ("logistics", "customers"),
    ("logistics", "allocation"),
    // `StandingChanged` | accreditation | allocation, customers.
    ("accreditation", "allocation"),
    ("accreditation", "customers"),
    // `OrderConfirmed`, `OrderCancelled` | allocation | logistics, customers.
    ("allocation", "logistics"),
    ("allocation", "customers"),
    // `CustomerChanged` | customers | accreditation, logistics.
    ("customers", "accreditation"),
    ("customers", "logistics"),
    // `CustomerChanged` also goes to allocation: not in DESIGN.md's event table, but in
    // the default `events.subscriptions` (settings.rs) and allocation's `CONSUMES` (its
    // retailer replica takes area, owner, format and settlement from it). Blocking it
    // would leave allocation's replica without those facts.
    ("customers", "allocation"),
];

/// Which service publishes each event (DESIGN.md's event table, column "from").
fn publisher(event: &str) -> &'static str {
    match event {
        "StandingChanged" => "accreditation",
        "OrderConfirmed" | "OrderCancelled" => "allocation",
        "DeliveryCompleted" | "DeliveryFailed" => "logistics",
        "CustomerChanged" => "customers",
        other => panic!("event {other} in events.subscriptions has no publisher in this test's table"),
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Splits a multi-document YAML stream (as `kubectl kustomize` prints it) and parses
/// each document; empty documents are dropped.
fn documents(text: &str, what: &str) -> Vec<Value> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut flush = |current: &mut String| {
        if !current.trim().is_empty() {
            let doc: Value = serde_yaml_ng::from_str(current)
                .unwrap_or_else(|e| panic!("{what}: a document does not parse: {e}\n{current}"));
            if !doc.is_null() {
                docs.push(doc);
            }
        }
        current.clear();
    };
    for line in text.lines() {
        if line.trim_end() == "---" {
            flush(&mut current);
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    flush(&mut current);
    docs
}

fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(*key))
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(value, path).and_then(Value::as_str)
}

fn seq_at<'a>(value: &'a Value, path: &[&str]) -> &'a [Value] {
    at(value, path)
        .and_then(Value::as_sequence)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn kind(doc: &Value) -> &str {
    str_at(doc, &["kind"]).unwrap_or("")
}

fn name(doc: &Value) -> &str {
    str_at(doc, &["metadata", "name"]).unwrap_or("")
}

fn port_number(value: &Value) -> Option<u16> {
    value
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}

/// Whether `kubectl` can be run. Without it, the Kubernetes checks are skipped on a
/// developer's machine and fail in CI, which must have it.
fn kubectl_available() -> bool {
    let works = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !works {
        assert!(
            std::env::var_os("CI").is_none(),
            "kubectl is needed for the deploy/k8s checks and CI is set: install kubectl (v1.32, kustomize v5.5)"
        );
        // Straight to stderr: the test harness captures eprintln! of passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: kubectl not found; the deploy/k8s checks need `kubectl kustomize`"
        );
    }
    works
}

/// Service-to-service connections, `(from, to, port)`.
type Edges = BTreeSet<(String, String, u16)>;

/// `kubectl kustomize <dir>`, parsed.
struct Rendered {
    what: &'static str,
    docs: Vec<Value>,
}

impl Rendered {
    fn render(dir: &'static str) -> Self {
        let out = Command::new("kubectl")
            .arg("kustomize")
            .arg(dir)
            .current_dir(root())
            .output()
            .unwrap_or_else(|e| panic!("running kubectl kustomize {dir}: {e}"));
        assert!(
            out.status.success(),
            "kubectl kustomize {dir} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).expect("kustomize prints UTF-8");
        let docs = documents(&text, dir);
        assert!(!docs.is_empty(), "kubectl kustomize {dir} printed nothing");
        Self { what: dir, docs }
    }

    fn all(&self, kind_: &str) -> Vec<&Value> {
        self.docs.iter().filter(|d| kind(d) == kind_).collect()
    }

    fn one(&self, kind_: &str, name_: &str) -> &Value {
        self.docs
            .iter()
            .find(|d| kind(d) == kind_ && name(d) == name_)
            .unwrap_or_else(|| {
                let present: Vec<&str> = self.all(kind_).into_iter().map(name).collect();
                panic!("{}: no {kind_} named {name_:?} (present: {present:?})", self.what)
            })
    }

    /// The `distnet-settings` ConfigMap (its name carries kustomize's hash suffix).
    fn settings(&self) -> BTreeMap<String, String> {
        let map = self
            .all("ConfigMap")
            .into_iter()
            .find(|d| name(d).starts_with("distnet-settings"))
            .unwrap_or_else(|| panic!("{}: no distnet-settings ConfigMap", self.what));
        at(map, &["data"])
            .and_then(Value::as_mapping)
            .map(|data| {
                data.iter()
                    .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Service-to-service edges the NetworkPolicies allow, `(from, to, port)`, as seen
    /// from the receiving side (ingress) and from the calling side (egress).
    fn allowed_edges(&self) -> (Edges, Edges) {
        let label =
            |selector: &Value| str_at(selector, &["matchLabels", "app.kubernetes.io/name"]).map(String::from);
        let mut ingress = BTreeSet::new();
        let mut egress = BTreeSet::new();
        for policy in self.all("NetworkPolicy") {
            let Some(me) = at(policy, &["spec", "podSelector"]).and_then(label) else {
                continue;
            };
            for (direction, peers_key, edges) in
                [("ingress", "from", &mut ingress), ("egress", "to", &mut egress)]
            {
                for rule in seq_at(policy, &["spec", direction]) {
                    let ports: Vec<u16> = seq_at(rule, &["ports"])
                        .iter()
                        .filter_map(|p| p.get("port").and_then(port_number))
                        .collect();
                    for peer in seq_at(rule, &[peers_key]) {
                        // A pod selector without a namespace selector: a pod of this
                        // namespace, i.e. another distnet service.
                        if peer.get("namespaceSelector").is_some() {
                            continue;
                        }
                        let Some(other) = peer.get("podSelector").and_then(label) else {
                            continue;
                        };
                        assert!(
                            !ports.is_empty(),
                            "{}: NetworkPolicy {} allows {other} on every port",
                            self.what,
                            name(policy)
                        );
                        for &port in &ports {
                            let edge = if direction == "ingress" {
                                (other.clone(), me.clone(), port)
                            } else {
                                (me.clone(), other.clone(), port)
                            };
                            edges.insert(edge);
                        }
                    }
                }
            }
        }
        (ingress, egress)
    }
}

fn port_of(service: &str) -> u16 {
    SERVICES
        .iter()
        .find(|(name, _)| *name == service)
        .map(|(_, port)| *port)
        .unwrap_or_else(|| panic!("unknown service {service}"))
}

fn expected_edges() -> Edges {
    EDGES
        .iter()
        .map(|(from, to)| (from.to_string(), to.to_string(), port_of(to)))
        .collect()
}

/// The edges the code's defaults imply: each subscription is a call from the event's
/// publisher to the subscriber, plus logistics' `BatchGetCustomers`.
fn edges_from_code_defaults() -> BTreeSet<(String, String)> {
    let settings = distnet_platform::Settings::default();
    let mut edges: BTreeSet<(String, String)> = settings
        .events
        .subscriptions
        .iter()
        .flat_map(|(event, subscribers)| {
            subscribers
                .iter()
                .map(move |s| (publisher(event).to_string(), s.clone()))
        })
        .collect();
    edges.insert(("logistics".into(), "customers".into()));
    edges
}

/// Which port a probe checks, resolving a named port against the container's ports,
/// and whether it is a gRPC probe.
fn probe(container: &Value, which: &str) -> Option<(u16, &'static str)> {
    let probe = container.get(which)?;
    let (kind, port) = if let Some(grpc) = probe.get("grpc") {
        ("grpc", grpc.get("port")?)
    } else if let Some(tcp) = probe.get("tcpSocket") {
        ("tcpSocket", tcp.get("port")?)
    } else {
        return None;
    };
    let number = port_number(port).or_else(|| {
        let wanted = port.as_str()?;
        seq_at(container, &["ports"])
            .iter()
            .find(|p| str_at(p, &["name"]) == Some(wanted))
            .and_then(|p| p.get("containerPort"))
            .and_then(port_number)
    })?;
    Some((number, kind))
}

/// A pod that runs as non-root with a read-only root file system, no privilege
/// escalation, no capabilities, the runtime's seccomp profile, and /tmp on an emptyDir.
fn check_locked_down(what: &str, pod: &Value) {
    let containers = seq_at(pod, &["containers"]);
    assert!(!containers.is_empty(), "{what}: no containers");
    let pod_non_root = at(pod, &["securityContext", "runAsNonRoot"]).and_then(Value::as_bool) == Some(true);
    let pod_seccomp = str_at(pod, &["securityContext", "seccompProfile", "type"]) == Some("RuntimeDefault");
    let empty_dirs: BTreeSet<&str> = seq_at(pod, &["volumes"])
        .iter()
        .filter(|v| v.get("emptyDir").is_some())
        .filter_map(|v| str_at(v, &["name"]))
        .collect();
    for container in containers {
        let c = str_at(container, &["name"]).unwrap_or("?");
        let sc = |key: &str| at(container, &["securityContext", key]);
        assert!(
            pod_non_root || sc("runAsNonRoot").and_then(Value::as_bool) == Some(true),
            "{what}/{c}: runAsNonRoot is not set"
        );
        assert_eq!(
            sc("readOnlyRootFilesystem").and_then(Value::as_bool),
            Some(true),
            "{what}/{c}: the root file system must be read-only"
        );
        assert_eq!(
            sc("allowPrivilegeEscalation").and_then(Value::as_bool),
            Some(false),
            "{what}/{c}: allowPrivilegeEscalation must be false"
        );
        let drops: Vec<&str> = seq_at(container, &["securityContext", "capabilities", "drop"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            drops.contains(&"ALL"),
            "{what}/{c}: capabilities must drop ALL, drop {drops:?}"
        );
        assert!(
            pod_seccomp
                || str_at(container, &["securityContext", "seccompProfile", "type"])
                    == Some("RuntimeDefault"),
            "{what}/{c}: seccompProfile RuntimeDefault is not set"
        );
        let tmp = seq_at(container, &["volumeMounts"])
            .iter()
            .find(|m| str_at(m, &["mountPath"]) == Some("/tmp"))
            .unwrap_or_else(|| panic!("{what}/{c}: /tmp is not mounted"));
        let volume = str_at(tmp, &["name"]).unwrap_or("");
        assert!(empty_dirs.contains(volume), "{what}/{c}: /tmp is not an emptyDir");
        for kind in ["requests", "limits"] {
            for resource in ["cpu", "memory"] {
                assert!(
                    at(container, &["resources", kind, resource]).is_some(),
                    "{what}/{c}: resources.{kind}.{resource} is not set"
                );
            }
        }
    }
}

/// What both the base and the overlay must have.
fn check_rendered(r: &Rendered, tls: bool) {
    let what = r.what;
    let namespace = r.one("Namespace", "distnet");
    assert_eq!(name(namespace), "distnet");

    for (service, port) in SERVICES {
        let deployment = r.one("Deployment", service);
        let pod = at(deployment, &["spec", "template", "spec"]).expect("pod template");
        check_locked_down(&format!("{what}: Deployment {service}"), pod);
        let container = &seq_at(pod, &["containers"])[0];
        let command: Vec<&str> = seq_at(container, &["command"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            command.iter().any(|c| c.ends_with(&format!("{service}-svc"))),
            "{what}: Deployment {service} does not run {service}-svc: {command:?}"
        );
        assert!(
            seq_at(container, &["ports"])
                .iter()
                .any(|p| p.get("containerPort").and_then(port_number) == Some(port)),
            "{what}: Deployment {service} does not expose {port}"
        );
        for which in ["startupProbe", "readinessProbe", "livenessProbe"] {
            if tls && which == "readinessProbe" {
                // The kubelet cannot ask a TLS server for its API's health: the image's
                // `distnet probe` does, for this service.
                let command: Vec<&str> = seq_at(container, &["readinessProbe", "exec", "command"])
                    .iter()
                    .filter_map(Value::as_str)
                    .collect();
                assert_eq!(
                    command,
                    ["/usr/local/bin/distnet", "probe", service],
                    "{what}: {service}'s readiness must run `distnet probe {service}`"
                );
                continue;
            }
            let (probe_port, probe_kind) = probe(container, which)
                .unwrap_or_else(|| panic!("{what}: Deployment {service} has no grpc or tcpSocket {which}"));
            assert_eq!(
                probe_port, port,
                "{what}: {service} {which} checks the wrong port"
            );
            if tls {
                // The kubelet's gRPC probe speaks plaintext; a TLS-only server fails it.
                assert_ne!(
                    probe_kind, "grpc",
                    "{what}: {service} {which} is a gRPC probe but the server speaks TLS"
                );
            } else {
                assert_eq!(
                    probe_kind, "grpc",
                    "{what}: {service} {which} must be a gRPC probe"
                );
            }
        }
        if !tls {
            // Ready once its caches are warm: the API's health, not the server's.
            let api = str_at(container, &["readinessProbe", "grpc", "service"]).unwrap_or("");
            assert!(
                api.starts_with(&format!("distnet.{service}.v1.")) && api.ends_with("Service"),
                "{what}: {service}'s readiness must ask for its API, not {api:?}"
            );
            assert_eq!(str_at(container, &["livenessProbe", "grpc", "service"]), None);
        }

        let svc = r.one("Service", service);
        assert_eq!(
            str_at(svc, &["spec", "selector", "app.kubernetes.io/name"]),
            Some(service),
            "{what}: Service {service} selects the wrong pods"
        );
        assert!(
            seq_at(svc, &["spec", "ports"])
                .iter()
                .any(|p| p.get("port").and_then(port_number) == Some(port)),
            "{what}: Service {service} does not serve port {port}"
        );

        let pdb = r.one("PodDisruptionBudget", service);
        assert_eq!(
            str_at(
                pdb,
                &["spec", "selector", "matchLabels", "app.kubernetes.io/name"]
            ),
            Some(service),
            "{what}: PodDisruptionBudget {service} selects the wrong pods"
        );
        assert!(
            at(pdb, &["spec", "minAvailable"]).is_some() || at(pdb, &["spec", "maxUnavailable"]).is_some(),
            "{what}: PodDisruptionBudget {service} sets no budget"
        );

        let hpa = r.one("HorizontalPodAutoscaler", service);
        assert_eq!(
            str_at(hpa, &["apiVersion"]),
            Some("autoscaling/v2"),
            "{what}: HPA {service}"
        );
        assert_eq!(
            str_at(hpa, &["spec", "scaleTargetRef", "name"]),
            Some(service),
            "{what}: HPA {service} scales the wrong Deployment"
        );
        assert!(
            seq_at(hpa, &["spec", "metrics"]).iter().any(|m| {
                str_at(m, &["resource", "name"]) == Some("cpu")
                    && str_at(m, &["resource", "target", "type"]) == Some("Utilization")
            }),
            "{what}: HPA {service} does not scale on CPU utilization"
        );
        let min = at(hpa, &["spec", "minReplicas"])
            .and_then(Value::as_u64)
            .unwrap_or(1);
        let max = at(hpa, &["spec", "maxReplicas"])
            .and_then(Value::as_u64)
            .unwrap_or(0);
        assert!(
            min >= 2 && max > min,
            "{what}: HPA {service} replicas {min}..{max}"
        );
    }

    // The migration.
    let job = r
        .all("Job")
        .into_iter()
        .find(|job| {
            seq_at(job, &["spec", "template", "spec", "containers"])
                .iter()
                .any(|c| {
                    let words: Vec<&str> = seq_at(c, &["command"])
                        .iter()
                        .chain(seq_at(c, &["args"]))
                        .filter_map(Value::as_str)
                        .collect();
                    words.iter().any(|w| w.ends_with("distnet")) && words.contains(&"migrate")
                })
        })
        .unwrap_or_else(|| panic!("{what}: no Job runs `distnet migrate`"));
    check_locked_down(
        &format!("{what}: Job {}", name(job)),
        at(job, &["spec", "template", "spec"]).expect("job pod"),
    );

    // Settings: the services reach each other by their Service names.
    let settings = r.settings();
    assert_eq!(
        settings.get("DISTNET__SERVER__HOST").map(String::as_str),
        Some("0.0.0.0"),
        "{what}: server.host"
    );
    for (service, port) in SERVICES {
        let key = format!("DISTNET__SERVICES__{}__URL", service.to_uppercase());
        let url = settings
            .get(&key)
            .unwrap_or_else(|| panic!("{what}: {key} is not set"));
        let scheme = if tls { "https" } else { "http" };
        assert_eq!(url, &format!("{scheme}://{service}:{port}"), "{what}: {key}");
    }

    check_network_policies(r);
}

fn check_network_policies(r: &Rendered) {
    let what = r.what;
    let policies = r.all("NetworkPolicy");
    let default_deny = policies.iter().find(|p| {
        let selects_all = at(p, &["spec", "podSelector"])
            .and_then(Value::as_mapping)
            .is_some_and(|m| m.is_empty());
        let types: Vec<&str> = seq_at(p, &["spec", "policyTypes"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        selects_all
            && types.contains(&"Ingress")
            && types.contains(&"Egress")
            && seq_at(p, &["spec", "ingress"]).is_empty()
            && seq_at(p, &["spec", "egress"]).is_empty()
    });
    assert!(
        default_deny.is_some(),
        "{what}: no default-deny NetworkPolicy (empty podSelector, Ingress and Egress, no rules)"
    );

    for (service, port) in SERVICES {
        let policy = policies
            .iter()
            .find(|p| {
                str_at(
                    p,
                    &["spec", "podSelector", "matchLabels", "app.kubernetes.io/name"],
                ) == Some(service)
            })
            .unwrap_or_else(|| panic!("{what}: no NetworkPolicy selects {service}"));
        for rule in seq_at(policy, &["spec", "ingress"]) {
            // Every ingress rule names its peers (no allow-from-anywhere) and the
            // service's port only.
            assert!(
                !seq_at(rule, &["from"]).is_empty(),
                "{what}: NetworkPolicy {service} admits everyone: {rule:?}"
            );
            let ports: Vec<Option<u16>> = seq_at(rule, &["ports"])
                .iter()
                .map(|p| p.get("port").and_then(port_number))
                .collect();
            assert_eq!(
                ports,
                vec![Some(port)],
                "{what}: NetworkPolicy {service} opens other ports than {port}"
            );
        }
        for rule in seq_at(policy, &["spec", "egress"]) {
            // Egress to anywhere only for Postgres.
            if seq_at(rule, &["to"]).is_empty() {
                let ports: Vec<Option<u16>> = seq_at(rule, &["ports"])
                    .iter()
                    .map(|p| p.get("port").and_then(port_number))
                    .collect();
                assert_eq!(
                    ports,
                    vec![Some(5432)],
                    "{what}: NetworkPolicy {service} lets {service} reach anything"
                );
            }
        }
    }

    let expected = expected_edges();
    let (ingress, egress) = r.allowed_edges();
    for (side, allowed) in [("ingress", ingress), ("egress", egress)] {
        let missing: Vec<_> = expected.difference(&allowed).collect();
        let extra: Vec<_> = allowed.difference(&expected).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{what}: the NetworkPolicies' service-to-service {side} differs from DESIGN.md's calls \
             (from, to, port): not allowed but needed {missing:?}; allowed but not in DESIGN.md {extra:?}"
        );
    }
}

#[test]
fn the_edge_table_matches_the_event_subscriptions_in_the_code() {
    let table: BTreeSet<(String, String)> = EDGES
        .iter()
        .map(|(from, to)| (from.to_string(), to.to_string()))
        .collect();
    assert_eq!(
        table,
        edges_from_code_defaults(),
        "the default events.subscriptions (settings.rs) imply other calls than this test's EDGES table: \
         update DESIGN.md, the table and deploy/k8s/base/networkpolicies.yaml together"
    );
}

#[test]
fn the_kubernetes_base_renders_and_is_complete() {
    if !kubectl_available() {
        return;
    }
    let base = Rendered::render("deploy/k8s/base");
    check_rendered(&base, false);
    for secret in base.all("Secret") {
        let text = serde_yaml_ng::to_string(secret).expect("serialize");
        assert!(
            text.contains("DEV-ONLY"),
            "base Secret {} must carry clearly fake DEV-ONLY values",
            name(secret)
        );
    }
}

#[test]
fn the_prod_overlay_turns_tls_on_and_scales_up() {
    if !kubectl_available() {
        return;
    }
    let base = Rendered::render("deploy/k8s/base");
    let prod = Rendered::render("deploy/k8s/overlays/prod");
    check_rendered(&prod, true);

    // TLS on: the settings name files that every service container has mounted.
    let settings = prod.settings();
    for key in [
        "DISTNET__TLS__CERT_PATH",
        "DISTNET__TLS__KEY_PATH",
        "DISTNET__TLS__CA_PATH",
        "DISTNET__TLS__CLIENT_CA_PATH",
    ] {
        let path = settings
            .get(key)
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| panic!("prod: {key} is not set"));
        for (service, _) in SERVICES {
            let deployment = prod.one("Deployment", service);
            let pod = at(deployment, &["spec", "template", "spec"]).expect("pod");
            let container = &seq_at(pod, &["containers"])[0];
            let mounted = seq_at(container, &["volumeMounts"]).iter().any(|m| {
                let dir = str_at(m, &["mountPath"]).unwrap_or("/nonexistent");
                let volume = str_at(m, &["name"]).unwrap_or("");
                path.starts_with(&format!("{}/", dir.trim_end_matches('/')))
                    && seq_at(pod, &["volumes"])
                        .iter()
                        .any(|v| str_at(v, &["name"]) == Some(volume) && v.get("secret").is_some())
            });
            assert!(
                mounted,
                "prod: {service} has no Secret mounted where {key}={path} points"
            );
        }
    }
    assert!(
        settings
            .get("DISTNET__TELEMETRY__OTLP_ENDPOINT")
            .is_some_and(|e| !e.is_empty()),
        "prod: telemetry.otlp_endpoint is not set"
    );

    // More replicas than the base.
    for (service, _) in SERVICES {
        let replicas = |r: &Rendered, key: &str| {
            at(r.one("HorizontalPodAutoscaler", service), &["spec", key])
                .and_then(Value::as_u64)
                .unwrap_or(1)
        };
        assert!(
            replicas(&prod, "minReplicas") > replicas(&base, "minReplicas"),
            "prod: {service} minReplicas is not above the base's"
        );
        assert!(
            replicas(&prod, "maxReplicas") > replicas(&base, "maxReplicas"),
            "prod: {service} maxReplicas is not above the base's"
        );
    }

    // A pinned image, and none of the base's placeholder Secrets.
    for (service, _) in SERVICES {
        let deployment = prod.one("Deployment", service);
        let image = str_at(
            &seq_at(deployment, &["spec", "template", "spec", "containers"])[0],
            &["image"],
        )
        .unwrap_or("");
        let tag = image.rsplit_once(':').map(|(_, tag)| tag).unwrap_or("");
        assert!(
            image.contains('@')
                || (!tag.is_empty() && !tag.contains('/') && !["latest", "dev"].contains(&tag)),
            "prod: {service} image {image:?} is not pinned"
        );
    }
    let secrets: Vec<&str> = prod.all("Secret").into_iter().map(name).collect();
    assert!(
        secrets.is_empty(),
        "prod must not apply the base's placeholder Secrets: {secrets:?}"
    );
}

#[test]
fn compose_runs_the_suite_with_a_collector_and_read_only_containers() {
    let text = read("deploy/compose.yaml");
    let mut compose: Value = serde_yaml_ng::from_str(&text).expect("deploy/compose.yaml parses");
    compose
        .apply_merge()
        .expect("deploy/compose.yaml: merge keys resolve");
    let services = at(&compose, &["services"])
        .and_then(Value::as_mapping)
        .expect("deploy/compose.yaml has services");
    let names: BTreeSet<&str> = services.keys().filter_map(Value::as_str).collect();
    for wanted in ["postgres", "migrate"]
        .into_iter()
        .chain(SERVICES.iter().map(|(s, _)| *s))
    {
        assert!(
            names.contains(wanted),
            "compose: no service {wanted} (have {names:?})"
        );
    }
    let image_of = |service: &Value| str_at(service, &["image"]).unwrap_or("").to_string();
    let collector = services
        .iter()
        .find(|(_, s)| image_of(s).contains("opentelemetry-collector"))
        .map(|(k, _)| k.as_str().unwrap_or("").to_string())
        .expect("compose: no OpenTelemetry collector");
    assert!(
        services.values().any(|s| image_of(s).contains("jaeger")),
        "compose: no trace viewer (Jaeger)"
    );

    for (key, service) in services {
        let key = key.as_str().unwrap_or("?");
        assert_eq!(
            at(service, &["read_only"]).and_then(Value::as_bool),
            Some(true),
            "compose: service {key} must have read_only: true"
        );
    }

    let migrate = &services["migrate"];
    let command: Vec<&str> = seq_at(migrate, &["command"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        command,
        ["migrate"],
        "compose: the migrate service runs `distnet migrate`"
    );

    for (service, port) in SERVICES {
        let s = &services[service];
        let entrypoint: Vec<&str> = seq_at(s, &["entrypoint"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            entrypoint
                .first()
                .is_some_and(|e| e.ends_with(&format!("{service}-svc"))),
            "compose: {service} does not run {service}-svc: {entrypoint:?}"
        );
        let health: Vec<&str> = seq_at(s, &["healthcheck", "test"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(
            health,
            ["CMD", "/usr/local/bin/distnet", "probe", service],
            "compose: {service}'s healthcheck must run `distnet probe {service}`"
        );
        assert_eq!(
            str_at(s, &["depends_on", "migrate", "condition"]),
            Some("service_completed_successfully"),
            "compose: {service} must wait for the migration"
        );
        let published: Vec<&str> = seq_at(s, &["ports"]).iter().filter_map(Value::as_str).collect();
        assert!(
            published.iter().any(|p| p.ends_with(&format!(":{port}"))),
            "compose: {service} does not publish its port {port}: {published:?}"
        );
        let env = |k: &str| str_at(s, &["environment", k]).unwrap_or("").to_string();
        assert_eq!(
            env("DISTNET__SERVER__HOST"),
            "0.0.0.0",
            "compose: {service} server.host"
        );
        assert!(
            env("DATABASE_URL").contains("@postgres:"),
            "compose: {service} DATABASE_URL"
        );
        assert!(
            !env("DISTNET__AUTH__HS256_SECRET").is_empty(),
            "compose: {service} JWT secret"
        );
        assert!(
            env("DISTNET__TELEMETRY__OTLP_ENDPOINT").contains(&format!("//{collector}:4317")),
            "compose: {service} does not export to the collector"
        );
        for (other, other_port) in SERVICES {
            let key = format!("DISTNET__SERVICES__{}__URL", other.to_uppercase());
            assert_eq!(
                env(&key),
                format!("http://{other}:{other_port}"),
                "compose: {service} {key}"
            );
        }
    }
    assert!(
        root().join("deploy/otel-collector.yaml").exists(),
        "deploy/otel-collector.yaml is missing"
    );
    let collector_config: Value =
        serde_yaml_ng::from_str(&read("deploy/otel-collector.yaml")).expect("otel-collector.yaml parses");
    assert!(
        at(&collector_config, &["service", "pipelines", "traces"]).is_some(),
        "otel-collector.yaml has no traces pipeline"
    );
}

/// Every `[[bin]]` name in the services' Cargo.toml files.
fn binaries() -> Vec<String> {
    let mut bins = Vec::new();
    let services = root().join("services");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&services)
        .expect("services/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("Cargo.toml").exists())
        .collect();
    dirs.sort();
    for dir in dirs {
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).expect("Cargo.toml");
        let mut in_bin = false;
        for line in manifest.lines().map(str::trim) {
            if line.starts_with('[') {
                in_bin = line == "[[bin]]";
            } else if in_bin
                && let Some(value) = line.strip_prefix("name").map(str::trim_start)
                && let Some(value) = value.strip_prefix('=')
            {
                bins.push(value.trim().trim_matches('"').to_string());
            }
        }
    }
    bins
}

#[test]
fn the_dockerfile_builds_every_binary_and_runs_as_non_root() {
    let dockerfile = read("deploy/Dockerfile");
    let bins = binaries();
    for wanted in [
        "customers-svc",
        "accreditation-svc",
        "allocation-svc",
        "logistics-svc",
        "distnet",
    ] {
        assert!(
            bins.iter().any(|b| b == wanted),
            "services/*/Cargo.toml lists no [[bin]] {wanted}: {bins:?}"
        );
    }
    // Instructions with their continuation lines joined, comments dropped.
    let mut instructions: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') && current.is_empty() {
            continue;
        }
        if let Some(part) = trimmed.strip_suffix('\\') {
            current.push_str(part);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            if !current.trim().is_empty() {
                instructions.push(current.trim().to_string());
            }
            current.clear();
        }
    }
    let last_from = instructions
        .iter()
        .rposition(|i| i.to_uppercase().starts_with("FROM "))
        .expect("deploy/Dockerfile has a FROM");
    let build: Vec<&String> = instructions[..last_from].iter().collect();
    let runtime = &instructions[last_from..];

    let cargo = build
        .iter()
        .find(|i| i.contains("cargo build"))
        .expect("deploy/Dockerfile: no `cargo build` in a build stage");
    assert!(
        cargo.contains("--release") && cargo.contains("--locked"),
        "deploy/Dockerfile: cargo build must be --release --locked"
    );
    let words: Vec<&str> = cargo.split_whitespace().collect();
    for bin in &bins {
        assert!(
            words.windows(2).any(|w| w[0] == "--bin" && w[1] == bin),
            "deploy/Dockerfile does not build --bin {bin}"
        );
        assert!(
            runtime.iter().any(|i| i.to_uppercase().starts_with("COPY ")
                && i.contains("--from")
                && i.contains(bin.as_str())),
            "deploy/Dockerfile: the runtime stage does not copy {bin}"
        );
    }
    let user = runtime
        .iter()
        .rev()
        .find(|i| i.to_uppercase().starts_with("USER "))
        .expect("deploy/Dockerfile: the runtime stage sets no USER");
    let user = user[5..].trim();
    let uid = user.split(':').next().unwrap_or("");
    assert!(
        !["root", "0", ""].contains(&uid),
        "deploy/Dockerfile: the runtime stage runs as {user}"
    );
}
