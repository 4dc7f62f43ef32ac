//! GetVisitPlan and GetVisitCompliance.

use chrono::{Days, NaiveDate};
use distnet_platform::ServiceError;
use distnet_platform::auth::{Caller, Role};
use distnet_proto::common::v1::{LatLng, PostalAddress};
use distnet_proto::customers::v1::{
    GetVisitComplianceRequest, GetVisitPlanRequest, PlannedVisit, VisitCompliance, VisitPlan,
};

use super::CustomersApi;
use crate::domain::visits::{self, Outcome, Spot};
use crate::store::interactions as stored;

/// Customer managers read their own visits; admins anyone's.
pub const VISIT_READERS: &[Role] = &[Role::Admin, Role::CustomerManager];

use distnet_platform::wire::timestamp;

impl CustomersApi {
    /// The rep whose visits are asked for: the caller unless an admin names one.
    fn rep_of(caller: &Caller, rep: &str) -> Result<String, ServiceError> {
        caller.require(VISIT_READERS)?;
        if rep.len() > 63 || rep.chars().any(char::is_control) {
            return Err(ServiceError::invalid_field(
                "rep",
                "must be a staff id of at most 63 characters",
            ));
        }
        if rep.is_empty() || rep == caller.sub {
            return Ok(caller.sub.clone());
        }
        if caller.role == Role::Admin {
            return Ok(rep.to_string());
        }
        Err(ServiceError::permission_denied(
            "customer managers read their own visits only",
        ))
    }

    pub(super) async fn visit_plan(
        &self,
        caller: Caller,
        request: GetVisitPlanRequest,
    ) -> Result<VisitPlan, ServiceError> {
        let rep = Self::rep_of(&caller, &request.rep)?;
        let date = if request.date.is_empty() {
            self.clock.now().with_timezone(&self.business_tz()).date_naive()
        } else {
            NaiveDate::parse_from_str(&request.date, "%Y-%m-%d")
                .map_err(|_| ServiceError::invalid_field("date", "must be YYYY-MM-DD"))?
        };
        let weekday = visits::weekday_number(date);
        let monday = date
            .checked_sub_days(Days::new(u64::try_from(weekday - 1).unwrap_or(0)))
            .ok_or_else(|| ServiceError::invalid_field("date", "is out of range"))?;
        let week_start = self.local_midnight(monday, "date")?;
        // Today's and the earlier days of the week (candidates for overdue).
        let days: Vec<i16> = (1..=weekday).filter_map(|d| i16::try_from(d).ok()).collect();
        let customers = stored::visit_customers(&self.pool, &rep, &days, week_start).await?;
        let (mut overdue, mut due): (Vec<_>, Vec<_>) = (Vec::new(), Vec::new());
        for c in customers {
            if i32::from(c.visit_weekday) == weekday {
                due.push(c);
            } else if c.visited_since.is_none() {
                overdue.push(c);
            }
        }
        let spot = |c: &stored::VisitCustomer| Spot {
            lat: c.latitude,
            lng: c.longitude,
        };
        let first: Vec<Spot> = overdue.iter().map(spot).collect();
        let second: Vec<Spot> = due.iter().map(spot).collect();
        let order = visits::walking_order(&first, &second);
        let overdue_count = overdue.len();
        let mut all: Vec<Option<stored::VisitCustomer>> = overdue.into_iter().chain(due).map(Some).collect();
        let mut plan = VisitPlan {
            rep,
            date: date.format("%Y-%m-%d").to_string(),
            visits: Vec::with_capacity(all.len()),
            total_m: 0.0,
        };
        for (i, from_previous_m) in order {
            let Some(c) = all.get_mut(i).and_then(Option::take) else {
                continue;
            };
            plan.total_m += from_previous_m;
            plan.visits.push(PlannedVisit {
                customer: format!("customers/{}", c.id),
                display_name: c.display_name,
                address: Some(PostalAddress {
                    province: c.province,
                    city: c.city,
                    district: c.district,
                    street: c.street,
                    postal_code: c.postal_code,
                }),
                location: Some(LatLng {
                    latitude: c.latitude,
                    longitude: c.longitude,
                }),
                overdue: i < overdue_count,
                visit_weekday: i32::from(c.visit_weekday),
                from_previous_m,
                last_visit_time: c.last_visit.map(timestamp),
            });
        }
        Ok(plan)
    }

    pub(super) async fn visit_compliance(
        &self,
        caller: Caller,
        request: GetVisitComplianceRequest,
    ) -> Result<VisitCompliance, ServiceError> {
        let rep = Self::rep_of(&caller, &request.rep)?;
        let monday = visits::week_monday(&request.week)
            .ok_or_else(|| ServiceError::invalid_field("week", "must be an ISO week like 2026-W48"))?;
        let next_monday = monday
            .checked_add_days(Days::new(7))
            .ok_or_else(|| ServiceError::invalid_field("week", "is out of range"))?;
        let (from, to) = (
            self.local_midnight(monday, "week")?,
            self.local_midnight(next_monday, "week")?,
        );
        let tz = self.business_tz();
        let today = self.clock.now().with_timezone(&tz).date_naive();
        let customers = stored::visit_customers(&self.pool, &rep, &[1, 2, 3, 4, 5, 6, 7], from).await?;
        let done_visits = stored::rep_visits(&self.pool, &rep, from, to).await?;
        let mut report = VisitCompliance {
            rep,
            week: request.week,
            ..VisitCompliance::default()
        };
        report.flagged = done_visits.iter().filter(|(_, _, flagged)| *flagged).count() as i32;
        for c in &customers {
            let Some(due) = visits::due_date(monday, i32::from(c.visit_weekday)) else {
                continue;
            };
            let dates: Vec<NaiveDate> = done_visits
                .iter()
                .filter(|(id, _, _)| *id == c.id)
                .map(|(_, t, _)| t.with_timezone(&tz).date_naive())
                .collect();
            report.planned += 1;
            match visits::outcome(due, &dates, today) {
                Outcome::Done => report.done += 1,
                Outcome::Late => report.late += 1,
                Outcome::Missed => report.missed += 1,
                Outcome::Pending => report.pending += 1,
            }
        }
        Ok(report)
    }
}
