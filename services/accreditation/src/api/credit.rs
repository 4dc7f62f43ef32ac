//! Credit RPCs (DOMAIN.md "Credit"): the credit office grades every customer's file
//! before it buys on credit; grade, limit and blacklist go into the standing, which
//! is what order placement checks.

use distnet_platform::ServiceError;
use distnet_platform::auth::{Caller, Role};
use distnet_platform::validate::{Violations, parse_name};
use distnet_proto::accreditation::v1::*;
use distnet_proto::common::v1::Money;

use super::{AccreditationApi, begin_idempotent, known_customer};
use crate::domain::access::{self, Subject};
use crate::domain::credit::{self as rules, CreditInputs};
use crate::store;
use crate::store::credit::{self as credit_store, StoredProfile};

/// The credit office grades files and keeps the blacklist.
pub(super) const CREDIT_OFFICE: &[Role] = &[Role::Admin];
/// Who may read a credit file: the office, services and planners, and the
/// retailer's own people (its customer manager, its area's call center) and itself.
pub(super) const CREDIT_READERS: &[Role] = &[
    Role::Admin,
    Role::Service,
    Role::AllocationPlanner,
    Role::CustomerManager,
    Role::CallCenterAgent,
    Role::Retailer,
];
/// The only currency credit is kept in.
const CURRENCY: &str = "CNY";

/// Fen of an optional amount (absent = 0); only CNY (or no code) is accepted.
fn fen(money: Option<&Money>, field: &str, v: &mut Violations) -> i64 {
    let Some(money) = money else { return 0 };
    v.check(
        money.currency_code.is_empty() || money.currency_code == CURRENCY,
        &format!("{field}.currency_code"),
        "must be CNY",
    );
    money.fen
}

/// The credit file's inputs from the request, with every bad field reported.
fn credit_inputs(profile: &CreditProfile) -> Result<(String, CreditInputs), ServiceError> {
    let mut v = Violations::new();
    let customer_id = parse_name(&profile.customer, "customers", "profile.customer")
        .map(str::to_owned)
        .unwrap_or_else(|_| {
            v.add("profile.customer", "must be `customers/{id}`");
            String::new()
        });
    let working_capital_fen = fen(
        profile.working_capital.as_ref(),
        "profile.working_capital",
        &mut v,
    );
    let net_assets_fen = fen(profile.net_assets.as_ref(), "profile.net_assets", &mut v);
    let disputes_last_year = u32::try_from(profile.disputes_last_year).unwrap_or_else(|_| {
        v.add("profile.disputes_last_year", "must not be negative");
        0
    });
    let inputs = CreditInputs {
        working_capital_fen,
        net_assets_fen,
        current_ratio: profile.current_ratio,
        interest_coverage: profile.interest_coverage,
        debt_ratio: profile.debt_ratio,
        cash_ratio: profile.cash_ratio,
        on_time_payment_rate: profile.on_time_payment_rate,
        disputes_last_year,
    };
    if let Err(problems) = rules::validate_inputs(&inputs) {
        for (field, description) in problems {
            v.add(format!("profile.{field}"), description);
        }
    }
    // Whoever lands on the blacklist is told why.
    if profile.blacklisted {
        v.non_empty(&profile.blacklist_reason, "profile.blacklist_reason");
    }
    v.text(&profile.blacklist_reason, "profile.blacklist_reason", 500);
    v.into_result()?;
    Ok((customer_id, inputs))
}

impl AccreditationApi {
    /// Grades a credit file and sets the customer's grade, limit and blacklist
    /// flag in its standing. A blacklisted customer's limit in force is zero.
    pub(super) async fn upsert_credit_profile(
        &self,
        caller: Caller,
        request: UpsertCreditProfileRequest,
    ) -> Result<CreditProfile, ServiceError> {
        caller.require(CREDIT_OFFICE)?;
        let mut v = Violations::new();
        v.request_id(&request.request_id);
        v.check(request.profile.is_some(), "profile", "must be set");
        v.into_result()?;
        let profile = request.profile.clone().unwrap_or_default();
        let (customer_id, inputs) = credit_inputs(&profile)?;
        let now = self.clock.now();

        let mut tx = self.pool.begin().await?;
        let key = match begin_idempotent(
            &mut tx,
            &caller,
            &request.request_id,
            "UpsertCreditProfile",
            &request,
        )
        .await?
        {
            Ok(key) => key,
            Err(replay) => return Ok(replay),
        };
        let customer = known_customer(&mut tx, &customer_id).await?;
        let stored = StoredProfile {
            customer_id: customer_id.clone(),
            inputs,
            assessment: rules::assess(&inputs),
            blacklisted: profile.blacklisted,
            blacklist_reason: if profile.blacklisted {
                profile.blacklist_reason.trim().to_owned()
            } else {
                String::new()
            },
            updated_by: caller.sub.clone(),
            updated_at: now,
        };
        credit_store::upsert_profile(&mut tx, &stored).await?;
        let standing = store::set_credit_standing(
            &mut tx,
            &customer_id,
            &customer.area_id,
            credit_store::grade_name(stored.assessment.grade),
            rules::effective_limit(stored.assessment.limit_fen, stored.blacklisted),
            stored.blacklisted,
            &stored.blacklist_reason,
            now,
        )
        .await?;
        self.publish_standing(&mut tx, standing).await?;
        let reply = stored.to_proto();
        key.complete(&mut tx, &reply).await?;
        tx.commit().await?;
        Ok(reply)
    }

    /// A customer's credit file; out of scope reads as NOT_FOUND so that whether a
    /// retailer has a file does not leak.
    pub(super) async fn credit_profile(
        &self,
        caller: Caller,
        request: GetCreditProfileRequest,
    ) -> Result<CreditProfile, ServiceError> {
        caller.require(CREDIT_READERS)?;
        let customer_id = parse_name(&request.customer, "customers", "customer")?;
        let mut conn = self.pool.acquire().await?;
        let customer = store::customer(&mut conn, customer_id).await?;
        let in_scope = customer.is_some_and(|c| {
            access::in_scope(
                &caller,
                Subject {
                    customer_id,
                    area_id: &c.area_id,
                    owner_id: Some(&c.owner_id),
                },
            )
        });
        if !in_scope {
            return Err(ServiceError::not_found(&request.customer));
        }
        credit_store::profile(&mut conn, customer_id)
            .await?
            .map(|profile| profile.to_proto())
            .ok_or_else(|| ServiceError::not_found(&request.customer))
    }
}
