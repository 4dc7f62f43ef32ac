//! Licensing RPCs (DOMAIN.md "Licensing"): applications, inspections, four-eyes
//! approval with the spacing rule, the license state machine, violations, and
//! standings; plus the sweep that persists expiries.

use chrono::{DateTime, Datelike as _, Duration, Utc};
use distnet_platform::auth::Caller;
use distnet_platform::events::Outbox;
use distnet_platform::validate::{Violations, parse_name};
use distnet_platform::{ServiceError, pagination};
use distnet_proto::accreditation::v1::*;
use distnet_proto::events::v1::StandingChanged;
use sqlx::{PgConnection, PgPool};

use super::{AccreditationApi, begin_idempotent, known_customer, scoring};
use crate::domain::access::{self, Subject};
use crate::domain::license::{self as rules, InspectionOutcome as Outcome, LicenseTerm, Refusal};
use crate::store::{self, LicenseRow};

/// Law-abidance points a violation deducts, by severity.
pub fn violation_points(severity: Severity) -> i32 {
    match severity {
        Severity::Minor => 2,
        Severity::Major => 6,
        Severity::Severe | Severity::Unspecified => 12,
    }
}

fn refused(refusal: Refusal) -> ServiceError {
    ServiceError::failed_precondition(refusal.reason, refusal.message)
        .with_metadata("current_state", refusal.current_state)
}

fn application_state(state: i32) -> Result<rules::ApplicationState, ServiceError> {
    Ok(match ApplicationState::try_from(state) {
        Ok(ApplicationState::Submitted) => rules::ApplicationState::Submitted,
        Ok(ApplicationState::Approved) => rules::ApplicationState::Approved,
        Ok(ApplicationState::Rejected) => rules::ApplicationState::Rejected,
        _ => {
            return Err(ServiceError::internal(format!(
                "stored application state {state}"
            )));
        }
    })
}

/// The rules' view of a stored application.
fn rule_state(application: &Application) -> Result<rules::ApplicationState, ServiceError> {
    if application.state == ApplicationState::Inspected as i32 {
        let inspection = application.inspection.clone().unwrap_or_default();
        let outcome = if inspection.outcome == InspectionOutcome::Pass as i32 {
            Outcome::Pass
        } else {
            Outcome::Fail
        };
        return Ok(rules::ApplicationState::Inspected {
            outcome,
            inspector: inspection.inspector,
        });
    }
    application_state(application.state)
}

impl AccreditationApi {
    pub(super) fn term(&self) -> Duration {
        Duration::days(self.rules.license_term_days.max(1))
    }

    pub(super) async fn license_changed(
        &self,
        tx: &mut PgConnection,
        row: &LicenseRow,
        now: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        let status = rules::effective_status(&row.term(), now);
        let standing =
            store::set_license_standing(tx, &row.customer_id, &row.area_id, &row.number, status, now).await?;
        self.publish_standing(tx, standing).await
    }

    pub(super) async fn submit(
        &self,
        caller: Caller,
        request: SubmitApplicationRequest,
    ) -> Result<Application, ServiceError> {
        caller.require(access::APPLICANTS)?;
        let mut v = Violations::new();
        v.request_id(&request.request_id);
        v.known_enum::<ApplicationKind>(request.kind, "kind");
        v.check(
            request.kind != ApplicationKind::Unspecified as i32,
            "kind",
            "must be set",
        );
        match request.premises.as_ref().and_then(|p| p.location) {
            Some(location) => {
                v.latitude(location.latitude, "premises.location.latitude");
                v.longitude(location.longitude, "premises.location.longitude");
            }
            None => v.add("premises.location", "must be set: spacing is measured from it"),
        }
        if let Some(premises) = &request.premises {
            v.check(
                premises.floor_area_sqm >= 0,
                "premises.floor_area_sqm",
                "must not be negative",
            );
        }
        v.check(request.documents.len() <= 50, "documents", "at most 50 documents");
        for (i, document) in request.documents.iter().enumerate() {
            v.non_empty(&document.r#type, &format!("documents[{i}].type"));
            v.text(&document.r#type, &format!("documents[{i}].type"), 64);
            v.check(
                document.sha256.len() == 64 && document.sha256.chars().all(|c| c.is_ascii_hexdigit()),
                &format!("documents[{i}].sha256"),
                "must be 64 hex digits",
            );
        }
        v.into_result()?;
        let customer_id = parse_name(&request.customer, "customers", "customer")?.to_string();
        let now = self.clock.now();

        let mut tx = self.pool.begin().await?;
        let key = match begin_idempotent(
            &mut tx,
            &caller,
            &request.request_id,
            "SubmitApplication",
            &request,
        )
        .await?
        {
            Ok(key) => key,
            Err(replay) => return Ok(replay),
        };
        let customer = known_customer(&mut tx, &customer_id).await?;
        let subject = Subject {
            customer_id: &customer_id,
            area_id: &customer.area_id,
            owner_id: Some(&customer.owner_id),
        };
        if !access::in_scope(&caller, subject) {
            return Err(ServiceError::permission_denied("not one of your retailers"));
        }
        let in_force = store::license_in_force(&mut tx, &customer_id)
            .await?
            .filter(|l| rules::effective_status(&l.term(), now) != rules::LicenseStatus::Expired);
        let kind = ApplicationKind::try_from(request.kind).unwrap_or(ApplicationKind::Unspecified);
        match (kind, &in_force) {
            (ApplicationKind::New, Some(license)) => {
                return Err(ServiceError::failed_precondition(
                    "LICENSE_ALREADY_IN_FORCE",
                    format!(
                        "{} already holds licenses/{}; apply for a renewal or change",
                        request.customer, license.number
                    ),
                ));
            }
            (ApplicationKind::Change, None) => {
                return Err(ServiceError::failed_precondition(
                    "NO_LICENSE_IN_FORCE",
                    format!("{} holds no license in force to change", request.customer),
                ));
            }
            _ => {}
        }
        let id = format!("a-{}", uuid::Uuid::now_v7().simple());
        let application = Application {
            name: format!("applications/{id}"),
            customer: request.customer.clone(),
            kind: request.kind,
            premises: request.premises.clone(),
            documents: request.documents.clone(),
            state: ApplicationState::Submitted as i32,
            submitted_by: caller.sub.clone(),
            create_time: Some(store::timestamp(now)),
            update_time: Some(store::timestamp(now)),
            ..Application::default()
        };
        store::save_application(&mut tx, &id, &application).await?;
        key.complete(&mut tx, &application).await?;
        tx.commit().await?;
        Ok(application)
    }

    pub(super) async fn get_application(
        &self,
        caller: Caller,
        request: GetApplicationRequest,
    ) -> Result<Application, ServiceError> {
        caller.require(access::READERS)?;
        let id = parse_name(&request.name, "applications", "name")?;
        let mut conn = self.pool.acquire().await?;
        let application = store::application(&mut conn, id, false).await?;
        let application = application.ok_or_else(|| ServiceError::not_found(&request.name))?;
        self.check_application_scope(&mut conn, &caller, &application, &request.name)
            .await?;
        Ok(application)
    }

    /// Out of scope applications are NOT_FOUND so that existence does not leak.
    pub(super) async fn check_application_scope(
        &self,
        conn: &mut PgConnection,
        caller: &Caller,
        application: &Application,
        name: &str,
    ) -> Result<store::CachedCustomer, ServiceError> {
        let customer_id = application
            .customer
            .strip_prefix("customers/")
            .unwrap_or_default();
        let customer = store::customer(conn, customer_id)
            .await?
            .ok_or_else(|| ServiceError::not_found(name))?;
        let subject = Subject {
            customer_id,
            area_id: &customer.area_id,
            owner_id: Some(&customer.owner_id),
        };
        if access::in_scope(caller, subject) {
            Ok(customer)
        } else {
            Err(ServiceError::not_found(name))
        }
    }

    pub(super) async fn inspect(
        &self,
        caller: Caller,
        request: RecordInspectionRequest,
    ) -> Result<Application, ServiceError> {
        caller.require(access::INSPECTORS)?;
        let mut v = Violations::new();
        v.request_id(&request.request_id);
        v.known_enum::<InspectionOutcome>(request.outcome, "outcome");
        v.check(
            request.outcome != InspectionOutcome::Unspecified as i32,
            "outcome",
            "must be PASS or FAIL",
        );
        v.check(request.checklist.len() <= 100, "checklist", "at most 100 items");
        for (i, item) in request.checklist.iter().enumerate() {
            v.non_empty(&item.item, &format!("checklist[{i}].item"));
            v.text(&item.item, &format!("checklist[{i}].item"), 200);
            v.text(&item.note, &format!("checklist[{i}].note"), 1000);
        }
        v.into_result()?;
        let id = parse_name(&request.name, "applications", "name")?.to_string();
        let now = self.clock.now();

        let mut tx = self.pool.begin().await?;
        let key = match begin_idempotent(
            &mut tx,
            &caller,
            &request.request_id,
            "RecordInspection",
            &request,
        )
        .await?
        {
            Ok(key) => key,
            Err(replay) => return Ok(replay),
        };
        let mut application = store::application(&mut tx, &id, true)
            .await?
            .ok_or_else(|| ServiceError::not_found(&request.name))?;
        self.check_application_scope(&mut tx, &caller, &application, &request.name)
            .await?;
        let outcome = if request.outcome == InspectionOutcome::Pass as i32 {
            Outcome::Pass
        } else {
            Outcome::Fail
        };
        rules::inspect(&rule_state(&application)?, outcome, &caller.sub).map_err(refused)?;
        let location = application
            .premises
            .as_ref()
            .and_then(|p| p.location)
            .unwrap_or_default();
        let customer_id = application
            .customer
            .strip_prefix("customers/")
            .unwrap_or_default()
            .to_string();
        let nearest = store::nearest_active_outlet(
            &mut tx,
            (location.latitude, location.longitude),
            &customer_id,
            now,
        )
        .await?;
        application.inspection = Some(Inspection {
            inspector: caller.sub.clone(),
            outcome: request.outcome,
            checklist: request.checklist.clone(),
            nearest_license: nearest
                .as_ref()
                .map(|n| format!("licenses/{}", n.license_number))
                .unwrap_or_default(),
            nearest_distance_m: nearest.as_ref().map(|n| n.distance_m).unwrap_or_default(),
            inspect_time: Some(store::timestamp(now)),
        });
        application.state = ApplicationState::Inspected as i32;
        application.update_time = Some(store::timestamp(now));
        store::save_application(&mut tx, &id, &application).await?;
        key.complete(&mut tx, &application).await?;
        tx.commit().await?;
        Ok(application)
    }

    pub(super) async fn decide(
        &self,
        caller: Caller,
        request: DecideApplicationRequest,
    ) -> Result<Application, ServiceError> {
        caller.require(access::DECIDERS)?;
        let mut v = Violations::new();
        v.request_id(&request.request_id);
        v.known_enum::<Decision>(request.decision, "decision");
        v.check(
            request.decision != Decision::Unspecified as i32,
            "decision",
            "must be APPROVE or REJECT",
        );
        v.check(
            request.decision != Decision::Reject as i32 || !request.reasons.is_empty(),
            "reasons",
            "a rejection must give its reasons",
        );
        v.check(request.reasons.len() <= 20, "reasons", "at most 20 reasons");
        for (i, reason) in request.reasons.iter().enumerate() {
            v.text(reason, &format!("reasons[{i}]"), 500);
        }
        v.into_result()?;
        let id = parse_name(&request.name, "applications", "name")?.to_string();
        let now = self.clock.now();

        let mut tx = self.pool.begin().await?;
        let key = match begin_idempotent(
            &mut tx,
            &caller,
            &request.request_id,
            "DecideApplication",
            &request,
        )
        .await?
        {
            Ok(key) => key,
            Err(replay) => return Ok(replay),
        };
        let mut application = store::application(&mut tx, &id, true)
            .await?
            .ok_or_else(|| ServiceError::not_found(&request.name))?;
        let customer = self
            .check_application_scope(&mut tx, &caller, &application, &request.name)
            .await?;
        let state = rule_state(&application)?;
        if request.decision == Decision::Reject as i32 {
            rules::reject(&state).map_err(refused)?;
            application.state = ApplicationState::Rejected as i32;
        } else {
            let location = application
                .premises
                .as_ref()
                .and_then(|p| p.location)
                .unwrap_or_default();
            // Spacing is checked again at approval: another outlet may have been
            // licensed since the visit.
            let nearest = store::nearest_active_outlet(
                &mut tx,
                (location.latitude, location.longitude),
                &customer.customer_id,
                now,
            )
            .await?;
            rules::approve(&state, &caller.sub, nearest.as_ref(), self.rules.min_spacing_m).map_err(
                |refusal| {
                    let mut error = refused(refusal);
                    if let Some(outlet) = &nearest {
                        error = error
                            .with_precondition(
                                "SPACING",
                                format!("licenses/{}", outlet.license_number),
                                format!(
                                    "{:.0} m away; minimum {:.0} m",
                                    outlet.distance_m, self.rules.min_spacing_m
                                ),
                            )
                            .with_metadata("nearest_distance_m", format!("{:.1}", outlet.distance_m));
                    }
                    error
                },
            )?;
            let license = self
                .grant(
                    &mut tx,
                    &application,
                    &customer,
                    (location.latitude, location.longitude),
                    now,
                )
                .await?;
            application.license = format!("licenses/{}", license.number);
            application.state = ApplicationState::Approved as i32;
        }
        application.decided_by = caller.sub.clone();
        application.decision_reasons = request.reasons.clone();
        application.update_time = Some(store::timestamp(now));
        store::save_application(&mut tx, &id, &application).await?;
        key.complete(&mut tx, &application).await?;
        tx.commit().await?;
        Ok(application)
    }

    /// What an approval does to the license: a new one, a renewal, or new premises.
    pub(super) async fn grant(
        &self,
        tx: &mut PgConnection,
        application: &Application,
        customer: &store::CachedCustomer,
        location: (f64, f64),
        now: DateTime<Utc>,
    ) -> Result<LicenseRow, ServiceError> {
        let in_force = store::license_in_force(tx, &customer.customer_id).await?;
        let kind = ApplicationKind::try_from(application.kind).unwrap_or(ApplicationKind::New);
        let row = match (kind, in_force) {
            (ApplicationKind::Renewal | ApplicationKind::Change, Some(current))
                if rules::effective_status(&current.term(), now) != rules::LicenseStatus::Expired =>
            {
                let term = if kind == ApplicationKind::Renewal {
                    rules::renew(&current.term(), now, self.term()).map_err(refused)?
                } else {
                    current.term()
                };
                let reason = if kind == ApplicationKind::Renewal {
                    "renewed"
                } else {
                    "premises changed"
                };
                let mut row = store::update_license(tx, &current.number, &term, reason, now).await?;
                if kind == ApplicationKind::Change {
                    row = store::move_license(tx, &current.number, location).await?;
                }
                row
            }
            (ApplicationKind::Change, _) => {
                return Err(ServiceError::failed_precondition(
                    "NO_LICENSE_IN_FORCE",
                    format!("{} holds no license in force to change", application.customer),
                ));
            }
            (_, expired) => {
                // NEW, or a renewal after expiry: a fresh term from approval.
                if let Some(old) = expired {
                    let settled = rules::settle(&old.term(), now);
                    store::update_license(tx, &old.number, &settled, "expired", now).await?;
                }
                let term: LicenseTerm = rules::new_term(now, self.term());
                let row = LicenseRow {
                    number: store::next_license_number(tx, now.year()).await?,
                    customer_id: customer.customer_id.clone(),
                    status: store::status_code(term.status),
                    valid_from: term.valid_from,
                    valid_to: term.valid_to,
                    suspended_until: None,
                    status_reason: "granted".into(),
                    area_id: customer.area_id.clone(),
                    latitude: location.0,
                    longitude: location.1,
                    updated_at: now,
                };
                store::insert_license(tx, &row).await?;
                row
            }
        };
        self.license_changed(tx, &row, now).await?;
        Ok(row)
    }

    pub(super) async fn get_license(
        &self,
        caller: Caller,
        request: GetLicenseRequest,
    ) -> Result<License, ServiceError> {
        caller.require(access::READERS)?;
        let number = parse_name(&request.name, "licenses", "name")?;
        let mut conn = self.pool.acquire().await?;
        let row = store::license(&mut conn, number, false)
            .await?
            .filter(|l| access::in_scope(&caller, license_subject(l)))
            .ok_or_else(|| ServiceError::not_found(&request.name))?;
        Ok(row.to_proto(self.clock.now()))
    }

    pub(super) async fn list_licenses(
        &self,
        caller: Caller,
        request: ListLicensesRequest,
    ) -> Result<ListLicensesResponse, ServiceError> {
        caller.require(access::READERS)?;
        let mut v = Violations::new();
        v.known_enum::<LicenseStatus>(request.status, "status");
        v.check(
            request.expiring_within_days >= 0,
            "expiring_within_days",
            "must not be negative",
        );
        v.text(&request.area_id, "area_id", 63);
        v.into_result()?;
        let fingerprint = format!(
            "{}|{}|{}",
            request.status, request.area_id, request.expiring_within_days
        );
        let page = pagination::read(request.page_size, &request.page_token, &fingerprint)?;
        let filter = store::LicenseFilter {
            status: request.status,
            area_ids: access::area_filter(&caller),
            area_id: request.area_id.clone(),
            customer_id: caller
                .customer
                .clone()
                .filter(|_| caller.role == distnet_platform::auth::Role::Retailer),
            expiring_within_days: request.expiring_within_days,
        };
        let now = self.clock.now();
        let rows = store::list_licenses(&self.pool, &filter, &page, now).await?;
        let (rows, next_page_token) = pagination::finish(rows, &page, &fingerprint, |l| l.number.clone());
        Ok(ListLicensesResponse {
            licenses: rows.iter().map(|l| l.to_proto(now)).collect(),
            next_page_token,
        })
    }

    /// Suspend, reinstate and revoke share their shape: lock, apply the rule,
    /// store, update the standing.
    pub(super) async fn change_license(
        &self,
        caller: &Caller,
        name: &str,
        reason: &str,
        change: impl FnOnce(&LicenseTerm, DateTime<Utc>) -> Result<LicenseTerm, Refusal>,
        tx: &mut PgConnection,
    ) -> Result<License, ServiceError> {
        let number = parse_name(name, "licenses", "name")?;
        let now = self.clock.now();
        let row = store::license(tx, number, true)
            .await?
            .filter(|l| access::in_scope(caller, license_subject(l)))
            .ok_or_else(|| ServiceError::not_found(name))?;
        let term = change(&row.term(), now).map_err(refused)?;
        let row = store::update_license(tx, number, &term, reason, now).await?;
        self.license_changed(tx, &row, now).await?;
        Ok(row.to_proto(now))
    }

    pub(super) async fn license_transition(
        &self,
        caller: Caller,
        method: &'static str,
        request: &(impl prost::Message + Default),
        fields: (&str, &str, &str),
        change: impl FnOnce(&LicenseTerm, DateTime<Utc>) -> Result<LicenseTerm, Refusal>,
    ) -> Result<License, ServiceError> {
        let (request_id, name, reason) = fields;
        let mut v = Violations::new();
        v.request_id(request_id);
        v.non_empty(reason, "reason");
        v.text(reason, "reason", 500);
        v.into_result()?;
        let mut tx = self.pool.begin().await?;
        let key = match begin_idempotent(&mut tx, &caller, request_id, method, request).await? {
            Ok(key) => key,
            Err(replay) => return Ok(replay),
        };
        let license = self
            .change_license(&caller, name, reason, change, &mut tx)
            .await?;
        key.complete(&mut tx, &license).await?;
        tx.commit().await?;
        Ok(license)
    }

    pub(super) async fn record_violation(
        &self,
        caller: Caller,
        request: RecordViolationRequest,
    ) -> Result<Violation, ServiceError> {
        caller.require(access::VIOLATION_RECORDERS)?;
        let mut v = Violations::new();
        v.request_id(&request.request_id);
        v.known_enum::<ViolationType>(request.r#type, "type");
        v.check(
            request.r#type != ViolationType::Unspecified as i32,
            "type",
            "must be set",
        );
        v.known_enum::<Severity>(request.severity, "severity");
        v.check(
            request.severity != Severity::Unspecified as i32,
            "severity",
            "must be set",
        );
        v.check(request.evidence_refs.len() <= 50, "evidence_refs", "at most 50");
        for (i, evidence) in request.evidence_refs.iter().enumerate() {
            v.text(evidence, &format!("evidence_refs[{i}]"), 500);
        }
        v.text(&request.note, "note", 2000);
        v.into_result()?;
        let number = parse_name(&request.license, "licenses", "license")?.to_string();
        let now = self.clock.now();

        let mut tx = self.pool.begin().await?;
        let key = match begin_idempotent(&mut tx, &caller, &request.request_id, "RecordViolation", &request)
            .await?
        {
            Ok(key) => key,
            Err(replay) => return Ok(replay),
        };
        let row = store::license(&mut tx, &number, true)
            .await?
            .filter(|l| access::in_scope(&caller, license_subject(l)))
            .ok_or_else(|| ServiceError::not_found(&request.license))?;
        let severity = Severity::try_from(request.severity).unwrap_or(Severity::Severe);
        let points = violation_points(severity);
        let id = format!("v-{}", uuid::Uuid::now_v7().simple());
        store::insert_violation(
            &mut tx,
            &store::NewViolation {
                id: &id,
                license_number: &number,
                customer_id: &row.customer_id,
                violation_type: i16::try_from(request.r#type).unwrap_or(0),
                severity: i16::try_from(request.severity).unwrap_or(0),
                points,
                evidence_refs: &request.evidence_refs,
                note: &request.note,
                recorded_by: &caller.sub,
                recorded_at: now,
            },
        )
        .await?;
        let area_id = store::customer(&mut tx, &row.customer_id)
            .await?
            .map(|c| c.area_id)
            .unwrap_or_else(|| row.area_id.clone());
        self.deduct_for_violation(
            &mut tx,
            scoring::ViolationDeduction {
                customer_id: &row.customer_id,
                area_id: &area_id,
                violation_type: ViolationType::try_from(request.r#type).unwrap_or(ViolationType::Unspecified),
                fallback_points: points,
                recorder: &caller,
                note: &request.note,
                now,
            },
        )
        .await?;
        // Suspension threshold: points within the window (DOMAIN.md: licenses are
        // suspended for violations).
        let since = now - Duration::days(self.rules.violation_window_days.max(1));
        let total = store::violation_points_since(&mut tx, &number, since).await?;
        let mut suspended = false;
        if total >= i64::from(self.rules.suspension_threshold_points)
            && rules::effective_status(&row.term(), now) == rules::LicenseStatus::Active
        {
            let term = rules::suspend(&row.term(), now, None).map_err(refused)?;
            let reason = format!(
                "{total} violation points within {} days",
                self.rules.violation_window_days
            );
            let updated = store::update_license(&mut tx, &number, &term, &reason, now).await?;
            self.license_changed(&mut tx, &updated, now).await?;
            store::mark_violation_suspended(&mut tx, &id).await?;
            suspended = true;
        }
        let violation = Violation {
            name: format!("violations/{id}"),
            license: request.license.clone(),
            customer: format!("customers/{}", row.customer_id),
            r#type: request.r#type,
            severity: request.severity,
            evidence_refs: request.evidence_refs.clone(),
            points,
            recorded_by: caller.sub.clone(),
            record_time: Some(store::timestamp(now)),
            suspended_license: suspended,
        };
        key.complete(&mut tx, &violation).await?;
        tx.commit().await?;
        Ok(violation)
    }

    pub(super) async fn standings_of(
        &self,
        caller: &Caller,
        names: &[String],
        field: &str,
    ) -> Result<Vec<Standing>, ServiceError> {
        caller.require(access::READERS)?;
        if names.len() > 1000 {
            return Err(ServiceError::invalid_field(field, "at most 1000 customers"));
        }
        let mut ids = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let field = if names.len() == 1 {
                field.to_string()
            } else {
                format!("{field}[{i}]")
            };
            ids.push(parse_name(name, "customers", &field)?.to_string());
        }
        let found = store::standings(&self.pool, &ids).await?;
        let mut standings = Vec::with_capacity(names.len());
        for name in names {
            let standing = found
                .iter()
                .find(|s| &s.customer == name)
                .filter(|s| access::in_scope(caller, standing_subject(s)))
                .ok_or_else(|| ServiceError::not_found(name))?;
            standings.push(standing.clone());
        }
        Ok(standings)
    }

    pub(super) async fn list_standings(
        &self,
        caller: Caller,
        request: ListStandingsRequest,
    ) -> Result<ListStandingsResponse, ServiceError> {
        caller.require(access::READERS)?;
        let mut v = Violations::new();
        v.known_enum::<LicenseStatus>(request.license_status, "license_status");
        v.text(&request.area_id, "area_id", 63);
        v.into_result()?;
        let fingerprint = format!("{}|{}", request.area_id, request.license_status);
        let page = pagination::read(request.page_size, &request.page_token, &fingerprint)?;
        if caller.role == distnet_platform::auth::Role::Retailer {
            let own = caller
                .customer
                .clone()
                .map(|c| format!("customers/{c}"))
                .unwrap_or_default();
            let standings = self
                .standings_of(&caller, &[own], "customer")
                .await
                .unwrap_or_default();
            return Ok(ListStandingsResponse {
                standings,
                next_page_token: String::new(),
            });
        }
        let areas = access::area_filter(&caller);
        let rows = store::list_standings(
            &self.pool,
            areas.as_deref(),
            &request.area_id,
            request.license_status,
            &page,
        )
        .await?;
        let (standings, next_page_token) = pagination::finish(rows, &page, &fingerprint, |s| {
            s.customer
                .strip_prefix("customers/")
                .unwrap_or_default()
                .to_string()
        });
        Ok(ListStandingsResponse {
            standings,
            next_page_token,
        })
    }
}

fn license_subject(row: &LicenseRow) -> Subject<'_> {
    Subject {
        customer_id: &row.customer_id,
        area_id: &row.area_id,
        owner_id: None,
    }
}

fn standing_subject(standing: &Standing) -> Subject<'_> {
    Subject {
        customer_id: standing.customer.strip_prefix("customers/").unwrap_or_default(),
        area_id: &standing.area_id,
        owner_id: None,
    }
}

/// Persists what time has decided: licenses past their term become EXPIRED and
/// suspensions past their end lift, each with its standing change and event.
pub async fn settle_due_licenses(
    pool: &PgPool,
    outbox: &Outbox,
    now: DateTime<Utc>,
) -> Result<usize, ServiceError> {
    let mut tx = pool.begin().await?;
    let due = store::licenses_due(&mut tx, now, 500).await?;
    for row in &due {
        let term = rules::settle(&row.term(), now);
        let reason = if term.status == rules::LicenseStatus::Expired {
            "term ended"
        } else {
            "suspension ended"
        };
        let updated = store::update_license(&mut tx, &row.number, &term, reason, now).await?;
        let standing = store::set_license_standing(
            &mut tx,
            &updated.customer_id,
            &updated.area_id,
            &updated.number,
            term.status,
            now,
        )
        .await?;
        if let Some(standing) = standing {
            let aggregate = standing.customer.clone();
            outbox
                .publish(
                    &mut tx,
                    &aggregate,
                    &StandingChanged {
                        standing: Some(standing),
                    },
                )
                .await?;
        }
    }
    tx.commit().await?;
    Ok(due.len())
}
