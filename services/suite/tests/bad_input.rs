//! Bad input, for every RPC of the four real servers: messages generated from the
//! served descriptors with hostile values — strings of control characters, NULs,
//! Unicode from every plane, 10,000-character strings, extreme and negative numbers,
//! NaN and infinities, unknown enum values, huge repeated fields, nested messages — sent
//! by a role the RPC's rule allows. The property: the server never panics, never
//! answers `INTERNAL` or `UNKNOWN`, every `INVALID_ARGUMENT` names the fields at fault
//! (`BadRequest` field violations), and it keeps serving. Messages over the size limit
//! are refused before any handler runs. Each case is reproducible from its printed
//! seed.

mod support;

use std::collections::HashMap;

use distnet_platform::authz::Rule;
use prost::encoding::{WireType, encode_key, encode_varint};
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto};
use support::{Suite, call, descriptors, tables, token_for};
use tonic::Code;
use tonic_types::StatusExt as _;

/// Cases per RPC.
const CASES: u64 = 64;
/// A generated message stops growing beyond this size (the limit is 4 MiB).
const MAX_BODY_BYTES: usize = 256 * 1024;
/// Nesting depth beyond which messages are left empty.
const MAX_DEPTH: usize = 3;

/// SplitMix64: the cases are a pure function of their seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// Every message type by its full name (`.distnet.customers.v1.Customer`).
struct Messages(HashMap<String, DescriptorProto>);

impl Messages {
    fn load() -> Self {
        fn add(map: &mut HashMap<String, DescriptorProto>, prefix: &str, message: &DescriptorProto) {
            let name = format!("{prefix}.{}", message.name());
            for nested in &message.nested_type {
                add(map, &name, nested);
            }
            map.insert(name, message.clone());
        }
        let mut map = HashMap::new();
        for file in descriptors().file {
            let prefix = format!(".{}", file.package());
            for message in &file.message_type {
                add(&mut map, &prefix, message);
            }
        }
        Self(map)
    }

    /// Enum values by enum full name.
    fn enums() -> HashMap<String, Vec<i32>> {
        fn add(map: &mut HashMap<String, Vec<i32>>, prefix: &str, message: &DescriptorProto) {
            let name = format!("{prefix}.{}", message.name());
            for e in &message.enum_type {
                map.insert(
                    format!("{name}.{}", e.name()),
                    e.value.iter().map(|v| v.number()).collect(),
                );
            }
            for nested in &message.nested_type {
                add(map, &name, nested);
            }
        }
        let mut map = HashMap::new();
        for file in descriptors().file {
            let prefix = format!(".{}", file.package());
            for e in &file.enum_type {
                map.insert(
                    format!("{prefix}.{}", e.name()),
                    e.value.iter().map(|v| v.number()).collect(),
                );
            }
            for message in &file.message_type {
                add(&mut map, &prefix, message);
            }
        }
        map
    }
}

/// A hostile string: empty, control characters, NUL, Unicode from every plane,
/// path and SQL tricks, a plausible name, or 10,000 characters.
fn string(rng: &mut Rng) -> String {
    const SAMPLES: &[&str] = &[
        "",
        "\u{0}",
        "a\u{0}b",
        "\u{7}\u{8}\u{1b}[31m\r\n\t",
        "customers/r-00001",
        "orders/../../etc/passwd",
        "'; DROP TABLE customers; --",
        "🚚📦🧾",
        "\u{202e}txt.exe",
        "\u{feff}",
        "𠜎𠜱𠝹",
        "春熙路便利店",
        "cycles/2026-W48",
        "2026-11-24",
        "Asia/Shanghai",
        "%00%ff",
        " ",
        "\u{10ffff}",
    ];
    match rng.below(4) {
        0 => SAMPLES[rng.below(SAMPLES.len() as u64) as usize].to_string(),
        1 => "界".repeat(1 + rng.below(10_000) as usize),
        _ => (0..rng.below(40))
            .map(|_| {
                let c = match rng.below(4) {
                    0 => rng.below(0x20) as u32,
                    1 => 0x20 + rng.below(0x5f) as u32,
                    2 => 0x4e00 + rng.below(0x5000) as u32,
                    _ => rng.below(0x11_0000) as u32,
                };
                char::from_u32(c).unwrap_or('\u{fffd}')
            })
            .collect(),
    }
}

/// A plausible value for a field called `name`, so that cases get past validation
/// into the handlers and the database.
fn plausible_string(rng: &mut Rng, name: &str) -> String {
    let pick =
        |rng: &mut Rng, options: &[&str]| options[rng.below(options.len() as u64) as usize].to_string();
    match name {
        "request_id" => format!("req-{:016x}", rng.next()),
        "customer" | "customers" => pick(
            rng,
            &["customers/r-00001", "customers/r-00002", "customers/nobody"],
        ),
        "cycle" | "effective_cycle" => pick(rng, &["cycles/2026-W48", "cycles/2026-W49", "2026-W48"]),
        "date" | "cycle_anchor" | "slot_date" => pick(rng, &["2026-11-24", "2026-11-25", "2026-02-30"]),
        "month" | "period" => pick(rng, &["2026-11", "2026-13"]),
        "week" => pick(rng, &["2026-W48", "2026-W60"]),
        "time_zone" => pick(rng, &["Asia/Shanghai", "Mars/Olympus", "UTC"]),
        "currency_code" => pick(rng, &["CNY", "USD", ""]),
        "area_id" | "areas" | "area_ids" => pick(rng, &["area-01", "area-02"]),
        "depot" | "home_depot" => pick(rng, &["depots/chengdu", "depots/nowhere"]),
        "product" | "sku" => pick(rng, &["products/zhonghua-hard", "zhonghua-hard"]),
        _ if name.ends_with("_id") || name == "rep" || name == "owner" || name == "to_handler" => {
            pick(rng, &["cm-001", "cc-001", "r-00001", "area-01"])
        }
        _ if name == "name" || name.ends_with("name") => pick(
            rng,
            &[
                "customers/r-00001",
                "cases/c-1",
                "licenses/l-1",
                "orders/o-1",
                "plans/p-1",
                "春熙路便利店",
            ],
        ),
        _ => pick(rng, &["春熙路便利店", "ORDER_TAKEN", "a note", "PASS", "x"]),
    }
}

fn integer(rng: &mut Rng) -> u64 {
    const SAMPLES: &[i64] = &[
        0,
        1,
        -1,
        2,
        50,
        i32::MAX as i64,
        i32::MIN as i64,
        i64::MAX,
        i64::MIN,
        86_400,
        -86_400,
    ];
    if rng.chance(700) {
        SAMPLES[rng.below(SAMPLES.len() as u64) as usize] as u64
    } else {
        rng.next()
    }
}

fn double(rng: &mut Rng) -> f64 {
    const SAMPLES: &[f64] = &[
        0.0,
        -0.0,
        1.0,
        -1.0,
        30.66,
        104.06,
        1e308,
        -1e308,
        f64::MIN_POSITIVE,
    ];
    match rng.below(5) {
        0 => f64::NAN,
        1 => {
            if rng.chance(500) {
                f64::INFINITY
            } else {
                f64::NEG_INFINITY
            }
        }
        2 => SAMPLES[rng.below(SAMPLES.len() as u64) as usize],
        _ => f64::from_bits(rng.next()),
    }
}

struct Generator {
    messages: Messages,
    enums: HashMap<String, Vec<i32>>,
    /// Per mille of fields given a hostile value; the others get plausible ones.
    hostile: u64,
}

impl Generator {
    /// An encoded message of type `name`.
    fn message(&self, rng: &mut Rng, name: &str, depth: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let Some(message) = self.messages.0.get(name) else {
            return out;
        };
        if depth > MAX_DEPTH {
            return out;
        }
        for field in &message.field {
            // Most fields are set; some are left out, as clients do.
            if rng.chance(250) {
                continue;
            }
            let repeated = field.label() == Label::Repeated;
            let hostile = rng.chance(self.hostile);
            let count = if !repeated {
                1
            } else if !hostile {
                1 + rng.below(3)
            } else {
                match rng.below(6) {
                    0 => 0,
                    1 => 5_000,
                    _ => 1 + rng.below(4),
                }
            };
            // Huge repeated fields of messages are kept small enough to stay under the
            // size limit most of the time.
            let count = if field.r#type() == Type::Message && count > 200 {
                200
            } else {
                count
            };
            for _ in 0..count {
                // Under the size limit: that is tested on its own.
                if out.len() > MAX_BODY_BYTES {
                    break;
                }
                self.field(rng, field, depth, hostile, &mut out);
            }
        }
        out
    }

    fn field(
        &self,
        rng: &mut Rng,
        field: &FieldDescriptorProto,
        depth: usize,
        hostile: bool,
        out: &mut Vec<u8>,
    ) {
        let tag = u32::try_from(field.number()).unwrap_or(1);
        let delimited = |out: &mut Vec<u8>, bytes: &[u8]| {
            encode_key(tag, WireType::LengthDelimited, out);
            encode_varint(bytes.len() as u64, out);
            out.extend_from_slice(bytes);
        };
        match field.r#type() {
            Type::String if hostile => delimited(out, string(rng).as_bytes()),
            Type::String => delimited(out, plausible_string(rng, field.name()).as_bytes()),
            Type::Bytes => {
                let bytes: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
                delimited(out, &bytes);
            }
            Type::Message | Type::Group => {
                let nested = self.message(rng, field.type_name(), depth + 1);
                delimited(out, &nested);
            }
            Type::Enum => {
                let known = self.enums.get(field.type_name()).cloned().unwrap_or_default();
                let value = if known.is_empty() || (hostile && rng.chance(300)) {
                    [99, -1, i32::MAX, i32::MIN][rng.below(4) as usize]
                } else {
                    known[rng.below(known.len() as u64) as usize]
                };
                encode_key(tag, WireType::Varint, out);
                encode_varint(i64::from(value) as u64, out);
            }
            Type::Bool => {
                encode_key(tag, WireType::Varint, out);
                encode_varint(rng.below(2), out);
            }
            Type::Int32 | Type::Uint32 | Type::Int64 | Type::Uint64 if !hostile => {
                encode_key(tag, WireType::Varint, out);
                encode_varint(rng.below(100), out);
            }
            Type::Int32 | Type::Uint32 => {
                encode_key(tag, WireType::Varint, out);
                encode_varint(i64::from(integer(rng) as i32) as u64, out);
            }
            Type::Int64 | Type::Uint64 => {
                encode_key(tag, WireType::Varint, out);
                encode_varint(integer(rng), out);
            }
            Type::Sint32 | Type::Sint64 => {
                let v = integer(rng) as i64;
                encode_key(tag, WireType::Varint, out);
                encode_varint(((v << 1) ^ (v >> 63)) as u64, out);
            }
            Type::Fixed32 | Type::Sfixed32 | Type::Float => {
                encode_key(tag, WireType::ThirtyTwoBit, out);
                let bits = if field.r#type() == Type::Float {
                    (double(rng) as f32).to_bits()
                } else {
                    integer(rng) as u32
                };
                out.extend_from_slice(&bits.to_le_bytes());
            }
            Type::Fixed64 | Type::Sfixed64 | Type::Double => {
                encode_key(tag, WireType::SixtyFourBit, out);
                let bits = if field.r#type() == Type::Double && !hostile {
                    (30.0 + rng.below(1000) as f64 / 100.0).to_bits()
                } else if field.r#type() == Type::Double {
                    double(rng).to_bits()
                } else {
                    integer(rng)
                };
                out.extend_from_slice(&bits.to_le_bytes());
            }
        }
    }
}

/// The input type of `service`/`method`.
fn input_type(service: &str, method: &str) -> Option<String> {
    descriptors().file.iter().find_map(|file| {
        file.service
            .iter()
            .filter(|s| format!("{}.{}", file.package(), s.name()) == service)
            .flat_map(|s| s.method.iter())
            .find(|m| m.name() == method)
            .map(|m| m.input_type().to_string())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_generated_message_makes_any_rpc_panic_or_fail_internally() {
    let suite = Suite::start().await;
    // Half the cases are hostile throughout; the other half plausible with one field
    // in ten hostile, so that they reach the handlers' logic and the database.
    let generators = [
        Generator {
            messages: Messages::load(),
            enums: Messages::enums(),
            hostile: 1000,
        },
        Generator {
            messages: Messages::load(),
            enums: Messages::enums(),
            hostile: 100,
        },
    ];
    let mut calls = 0;
    let mut by_code: std::collections::BTreeMap<String, usize> = Default::default();
    for (server, table) in tables().into_iter().enumerate() {
        let rules: Vec<&Rule> = table.iter().collect();
        for rule in rules {
            let input = input_type(rule.service, rule.method).expect("described");
            let role = rule.roles[0];
            let token = format!("Bearer {}", token_for(role));
            for case in 0..CASES {
                let seed = (server as u64) << 48 ^ (calls as u64) << 8 ^ case;
                let mut rng = Rng(seed);
                let generator = &generators[(case % 2) as usize];
                let body = generator.message(&mut rng, &input, 0);
                let size = body.len();
                let result = call(
                    &suite.channels[server],
                    rule.service,
                    rule.method,
                    body,
                    Some(&token),
                )
                .await;
                calls += 1;
                let what = format!(
                    "{}/{} as {} with case seed {seed:#x} ({size} bytes)",
                    rule.service,
                    rule.method,
                    role.as_str()
                );
                let Err(status) = result else {
                    *by_code.entry("OK".into()).or_default() += 1;
                    continue;
                };
                *by_code.entry(format!("{:?}", status.code())).or_default() += 1;
                assert!(
                    !matches!(
                        status.code(),
                        Code::Internal | Code::Unknown | Code::Unavailable | Code::Unimplemented
                    ),
                    "{what}: {status:?}"
                );
                if status.code() == Code::InvalidArgument {
                    let violations = status
                        .get_details_bad_request()
                        .map(|b| b.field_violations.len())
                        .unwrap_or(0);
                    assert!(
                        violations > 0,
                        "{what}: INVALID_ARGUMENT without field violations: {status:?}"
                    );
                }
            }
        }
    }
    println!("{calls} calls, by code: {by_code:?}");

    // Over the size limit (4 MiB by default): refused, and the server keeps serving.
    let rule = &distnet_customers::api::ACCESS[0];
    let mut huge = Vec::new();
    encode_key(2, WireType::LengthDelimited, &mut huge);
    encode_varint(5 * 1024 * 1024, &mut huge);
    huge.resize(huge.len() + 5 * 1024 * 1024, b'a');
    let token = format!("Bearer {}", token_for(rule.roles[0]));
    let refused = call(&suite.channels[0], rule.service, rule.method, huge, Some(&token))
        .await
        .expect_err("over the limit");
    // tonic refuses it while decoding, before any handler: OUT_OF_RANGE naming the limit.
    assert!(
        matches!(refused.code(), Code::OutOfRange | Code::ResourceExhausted)
            && refused.message().contains("limit"),
        "{refused:?}"
    );
    for (server, table) in tables().into_iter().enumerate() {
        let rule = table.first().expect("a rule");
        let token = format!("Bearer {}", token_for(rule.roles[0]));
        let status = call(
            &suite.channels[server],
            rule.service,
            rule.method,
            Vec::new(),
            Some(&token),
        )
        .await;
        assert!(
            status
                .as_ref()
                .err()
                .is_none_or(|s| s.code() != Code::Unavailable),
            "{} still serves",
            rule.service
        );
    }
    suite.stop().await;
}
