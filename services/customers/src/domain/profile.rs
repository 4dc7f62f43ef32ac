//! What a valid customer profile is, and how an update mask applies to one.

use distnet_platform::ServiceError;
use distnet_platform::validate::{Violations, is_valid_id};
use distnet_proto::common::v1::{LatLng, LocalTimeWindow, TimeOfDay};
use distnet_proto::customers::v1::{Customer, CustomerFormat, CustomerStatus, Settlement};

/// Fields an update mask may name. `owner_id` changes only through ReassignOwner,
/// so that every change of owner is recorded in the ownership history.
pub const UPDATABLE_FIELDS: &[&str] = &[
    "display_name",
    "legal_name",
    "format",
    "area_id",
    "address",
    "location",
    "contact_name",
    "contact_phone",
    "receiving_window",
    "settlement",
    "status",
    "floor_area_sqm",
    "visit_weekday",
];

/// The largest shop we believe: a big mall's sales floor.
const MAX_FLOOR_AREA_SQM: i32 = 1_000_000;

/// Checks a whole profile; `prefix` names the message field in violations.
pub fn validate(customer: &Customer, prefix: &str, v: &mut Violations) {
    let field = |name: &str| format!("{prefix}.{name}");
    v.non_empty(&customer.display_name, &field("display_name"));
    v.text(&customer.display_name, &field("display_name"), 100);
    v.text(&customer.legal_name, &field("legal_name"), 200);
    v.known_enum::<CustomerFormat>(customer.format, &field("format"));
    v.check(
        customer.format != CustomerFormat::Unspecified as i32,
        &field("format"),
        "must be set",
    );
    v.check(
        is_valid_id(&customer.area_id),
        &field("area_id"),
        "must be 1..63 of [a-z0-9-]",
    );
    v.check(
        !customer.owner_id.is_empty() && customer.owner_id.len() <= 63,
        &field("owner_id"),
        "must be a staff id of 1..63 characters",
    );
    v.text(&customer.owner_id, &field("owner_id"), 63);
    if let Some(address) = &customer.address {
        for (name, value, max) in [
            ("address.province", &address.province, 50),
            ("address.city", &address.city, 50),
            ("address.district", &address.district, 50),
            ("address.street", &address.street, 200),
            ("address.postal_code", &address.postal_code, 12),
        ] {
            v.text(value, &field(name), max);
        }
    }
    match &customer.location {
        Some(LatLng { latitude, longitude }) => {
            v.latitude(*latitude, &field("location.latitude"));
            v.longitude(*longitude, &field("location.longitude"));
        }
        None => v.add(field("location"), "must be set: deliveries are routed by it"),
    }
    v.text(&customer.contact_name, &field("contact_name"), 50);
    v.check(
        customer.contact_phone.len() <= 32
            && customer
                .contact_phone
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' ')),
        &field("contact_phone"),
        "must be at most 32 digits, '+', '-' or spaces",
    );
    if let Some(window) = &customer.receiving_window {
        validate_window(window, &field("receiving_window"), v);
    }
    v.known_enum::<Settlement>(customer.settlement, &field("settlement"));
    v.check(
        customer.settlement != Settlement::Unspecified as i32,
        &field("settlement"),
        "must be set",
    );
    v.known_enum::<CustomerStatus>(customer.status, &field("status"));
    v.check(
        (0..=MAX_FLOOR_AREA_SQM).contains(&customer.floor_area_sqm),
        &field("floor_area_sqm"),
        "must be between 0 and 1000000",
    );
    v.check(
        (0..=7).contains(&customer.visit_weekday),
        &field("visit_weekday"),
        "must be 1 (Monday) to 7 (Sunday), or 0 for none",
    );
}

fn minutes(time: &Option<TimeOfDay>) -> Option<i32> {
    time.as_ref()
        .filter(|t| (0..24).contains(&t.hours) && (0..60).contains(&t.minutes))
        .map(|t| t.hours * 60 + t.minutes)
}

fn validate_window(window: &LocalTimeWindow, field: &str, v: &mut Violations) {
    let start = minutes(&window.start);
    let end = minutes(&window.end);
    v.check(
        start.is_some(),
        &format!("{field}.start"),
        "must be a time of day 00:00..23:59",
    );
    v.check(
        end.is_some(),
        &format!("{field}.end"),
        "must be a time of day 00:00..23:59",
    );
    if let (Some(start), Some(end)) = (start, end) {
        v.check(end > start, &format!("{field}.end"), "must be after start");
    }
    v.check(
        is_time_zone_name(&window.time_zone),
        &format!("{field}.time_zone"),
        "must be an IANA time zone name such as Asia/Shanghai, or empty for the depot's",
    );
}

/// The shape of an IANA name (`Asia/Shanghai`, `UTC`); empty means the depot's zone.
fn is_time_zone_name(name: &str) -> bool {
    name.is_empty()
        || (name.len() <= 64
            && name.split('/').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
            }))
}

/// The receiving window as minutes after local midnight, for storage.
pub fn window_minutes(window: &Option<LocalTimeWindow>) -> (Option<i16>, Option<i16>, String) {
    match window {
        Some(w) => (
            minutes(&w.start).and_then(|m| i16::try_from(m).ok()),
            minutes(&w.end).and_then(|m| i16::try_from(m).ok()),
            w.time_zone.clone(),
        ),
        None => (None, None, String::new()),
    }
}

/// Copies the masked fields of `patch` onto `current`. Unknown or read-only paths
/// are `INVALID_ARGUMENT`; an empty mask is refused rather than guessed.
pub fn apply_update_mask(
    current: &Customer,
    patch: &Customer,
    paths: &[String],
) -> Result<Customer, ServiceError> {
    let mut v = Violations::new();
    if paths.is_empty() {
        v.add("update_mask", "must list the fields to change");
    }
    for path in paths {
        if !UPDATABLE_FIELDS.contains(&path.as_str()) {
            v.add(
                "update_mask",
                format!(
                    "`{path}` cannot be updated; updatable: {}",
                    UPDATABLE_FIELDS.join(", ")
                ),
            );
        }
    }
    v.into_result()?;
    let mut next = current.clone();
    for path in paths {
        match path.as_str() {
            "display_name" => next.display_name = patch.display_name.clone(),
            "legal_name" => next.legal_name = patch.legal_name.clone(),
            "format" => next.format = patch.format,
            "area_id" => next.area_id = patch.area_id.clone(),
            "address" => next.address = patch.address.clone(),
            "location" => next.location = patch.location,
            "contact_name" => next.contact_name = patch.contact_name.clone(),
            "contact_phone" => next.contact_phone = patch.contact_phone.clone(),
            "receiving_window" => next.receiving_window = patch.receiving_window.clone(),
            "settlement" => next.settlement = patch.settlement,
            "status" => next.status = patch.status,
            "floor_area_sqm" => next.floor_area_sqm = patch.floor_area_sqm,
            "visit_weekday" => next.visit_weekday = patch.visit_weekday,
            _ => {}
        }
    }
    Ok(next)
}

/// The profile fields staff rely on that are empty: a complete file has them all
/// (DOMAIN.md: customer files are expected to be 100 % complete).
pub fn missing_fields(customer: &Customer) -> Vec<&'static str> {
    let address = customer.address.clone().unwrap_or_default();
    [
        ("legal_name", customer.legal_name.trim().is_empty()),
        ("contact_name", customer.contact_name.trim().is_empty()),
        ("contact_phone", customer.contact_phone.trim().is_empty()),
        ("address.city", address.city.trim().is_empty()),
        ("address.district", address.district.trim().is_empty()),
        ("address.street", address.street.trim().is_empty()),
        ("receiving_window", customer.receiving_window.is_none()),
        ("floor_area_sqm", customer.floor_area_sqm <= 0),
        ("visit_weekday", customer.visit_weekday == 0),
    ]
    .into_iter()
    .filter_map(|(field, missing)| missing.then_some(field))
    .collect()
}

/// A customer's id, from its resource name (`customers/{id}`).
pub fn id_of(customer: &Customer) -> &str {
    customer.name.strip_prefix("customers/").unwrap_or_default()
}

/// The etag of a stored version.
pub fn etag(version: i64) -> String {
    format!("v{version}")
}

/// Whether `etag` is the etag of `version` (without formatting one).
pub fn is_etag_of(etag: &str, version: i64) -> bool {
    etag.strip_prefix('v').and_then(|v| v.parse::<i64>().ok()) == Some(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_etag_names_exactly_its_version() {
        for version in [1, 7, 42, i64::MAX] {
            assert!(is_etag_of(&etag(version), version));
            assert!(!is_etag_of(&etag(version), version - 1));
        }
        assert!(!is_etag_of("7", 7));
        assert!(!is_etag_of("", 0));
        assert!(!is_etag_of("vseven", 7));
    }

    fn valid() -> Customer {
        Customer {
            display_name: "福兴便利店".into(),
            format: CustomerFormat::ConvenienceStore as i32,
            area_id: "area-01".into(),
            owner_id: "cm-001".into(),
            location: Some(LatLng {
                latitude: 30.66,
                longitude: 104.06,
            }),
            settlement: Settlement::Cash as i32,
            status: CustomerStatus::Active as i32,
            receiving_window: Some(LocalTimeWindow {
                start: Some(TimeOfDay {
                    hours: 8,
                    minutes: 30,
                }),
                end: Some(TimeOfDay {
                    hours: 11,
                    minutes: 0,
                }),
                time_zone: "Asia/Shanghai".into(),
            }),
            ..Customer::default()
        }
    }

    fn fields(customer: &Customer) -> Vec<String> {
        let mut v = Violations::new();
        validate(customer, "customer", &mut v);
        match v.into_result() {
            Ok(()) => vec![],
            Err(e) => e.details.field_violations.into_iter().map(|f| f.field).collect(),
        }
    }

    #[test]
    fn a_file_is_complete_only_with_every_field_staff_rely_on() {
        let mut customer = valid();
        customer.legal_name = "成都春熙便利店有限公司".into();
        customer.contact_name = "王芳".into();
        customer.contact_phone = "13800001234".into();
        customer.floor_area_sqm = 40;
        customer.visit_weekday = 2;
        let address = customer.address.get_or_insert_with(Default::default);
        address.city = "成都市".into();
        address.district = "锦江区".into();
        address.street = "春熙路 1 号".into();
        customer.receiving_window.get_or_insert_with(Default::default);
        assert_eq!(missing_fields(&customer), Vec::<&str>::new());
        customer.legal_name = "  ".into();
        customer.visit_weekday = 0;
        customer.address = None;
        assert_eq!(
            missing_fields(&customer),
            vec![
                "legal_name",
                "address.city",
                "address.district",
                "address.street",
                "visit_weekday"
            ]
        );
    }

    #[test]
    fn a_complete_profile_is_valid() {
        assert!(fields(&valid()).is_empty());
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut c = valid();
        c.display_name = " ".into();
        c.format = 99;
        c.location = Some(LatLng {
            latitude: 91.0,
            longitude: 0.0,
        });
        c.receiving_window = Some(LocalTimeWindow {
            start: Some(TimeOfDay {
                hours: 12,
                minutes: 0,
            }),
            end: Some(TimeOfDay { hours: 9, minutes: 0 }),
            time_zone: "not a zone".into(),
        });
        let bad = fields(&c);
        for expected in [
            "customer.display_name",
            "customer.format",
            "customer.location.latitude",
            "customer.receiving_window.end",
            "customer.receiving_window.time_zone",
        ] {
            assert!(
                bad.iter().any(|f| f == expected),
                "{expected} missing from {bad:?}"
            );
        }
    }

    #[test]
    fn an_update_mask_changes_only_the_named_fields() {
        let current = valid();
        let patch = Customer {
            display_name: "新名字".into(),
            legal_name: "ignored".into(),
            ..Customer::default()
        };
        let next = apply_update_mask(&current, &patch, &["display_name".into()]).expect("applies");
        assert_eq!(next.display_name, "新名字");
        assert_eq!(next.legal_name, current.legal_name);
        assert_eq!(next.area_id, current.area_id);
    }

    #[test]
    fn the_owner_cannot_be_changed_by_update() {
        let error = apply_update_mask(&valid(), &valid(), &["owner_id".into()]).expect_err("refused");
        assert_eq!(error.code, tonic::Code::InvalidArgument);
        assert!(apply_update_mask(&valid(), &valid(), &[]).is_err());
    }
}
