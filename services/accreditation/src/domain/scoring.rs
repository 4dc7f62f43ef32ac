//! Process-incentive scoring (营销终端过程激励, DOMAIN.md "Scoring and classes"):
//! the four roles that serve a retailer record points from a rulebook of scoring
//! items on four dimensions; cumulative points classify the retailer as a special,
//! key or general customer, and each class earns its own rebate rate.

use chrono::{Datelike, NaiveDate};
use distnet_platform::auth::Role;
use serde::{Deserialize, Serialize};

/// The four dimensions every retailer is scored on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// 守法性: licensed, honest selling.
    LawAbidance,
    /// 合作性: orders, receives and pays the way the network works.
    Cooperation,
    /// 建设性: keeps the terminal (display, shelves, store) in good shape.
    Constructiveness,
    /// 成长性: sales and range grow.
    Growth,
}

impl Dimension {
    pub const ALL: [Dimension; 4] = [
        Dimension::LawAbidance,
        Dimension::Cooperation,
        Dimension::Constructiveness,
        Dimension::Growth,
    ];
}

/// The roles that serve a retailer, and so the only ones who may record points.
pub const SERVING_ROLES: [Role; 4] = [
    Role::CustomerManager,
    Role::CallCenterAgent,
    Role::Driver,
    Role::MarketInspector,
];

/// Largest absolute number of points a single scoring item may carry.
pub const MAX_RULE_POINTS: i32 = 1000;
/// Longest rule code.
pub const MAX_CODE_LEN: usize = 64;
/// Longest rule title.
pub const MAX_TITLE_LEN: usize = 200;
/// 100 % in basis points.
pub const FULL_BP: u32 = 10_000;

/// One item of the scoring handbook: its standard (title), points and who may give them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScoreRule {
    pub code: String,
    pub title: String,
    pub dimension: Dimension,
    pub recorders: Vec<Role>,
    /// Positive for good conduct, negative for violations.
    pub points: i32,
    /// How many times a customer may get this item per period; 0 = unlimited
    /// (violations are never capped: every one counts).
    pub cap_per_period: u32,
}

/// Cumulative points at which a retailer becomes a special or key customer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassThresholds {
    pub special: i64,
    pub key: i64,
}

/// Rebate rate of each class, in basis points of purchases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rebates {
    pub special_bp: u32,
    pub key_bp: u32,
    pub general_bp: u32,
}

/// A versioned scoring handbook together with its class thresholds and rebates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rulebook {
    pub version: i64,
    pub rules: Vec<ScoreRule>,
    pub class_thresholds: ClassThresholds,
    pub rebates: Rebates,
}

impl Rulebook {
    pub fn rule(&self, code: &str) -> Option<&ScoreRule> {
        self.rules.iter().find(|rule| rule.code == code)
    }
}

/// The handbook a new installation starts from.
///
/// Caps follow the weekly cycle: a customer manager visits each retailer weekly and
/// the call center phones it for its weekly order, so routine items are capped at 5
/// per monthly period (the most weeks a month touches). Violations are uncapped.
///
/// Thresholds: a well-run shop that earns every routine item collects about 85 points
/// a month, so it becomes a **key** customer (≥ 150) in about two months and a
/// **special** customer (≥ 300) in about four; a shop earning half of them takes twice
/// as long. One counterfeit find (−100) costs more than a month of routine points.
///
/// Rebates: special 1.5 %, key 1.0 %, general 0.5 % of purchases — each class its own
/// rate, the better class the higher one.
pub fn default_rulebook() -> Rulebook {
    let rules = DEFAULT_RULES
        .iter()
        .map(
            |&(code, title, dimension, recorders, points, cap_per_period)| ScoreRule {
                code: code.to_owned(),
                title: title.to_owned(),
                dimension,
                recorders: recorders.to_vec(),
                points,
                cap_per_period,
            },
        )
        .collect();
    Rulebook {
        version: 1,
        rules,
        class_thresholds: ClassThresholds {
            special: 300,
            key: 150,
        },
        rebates: Rebates {
            special_bp: 150,
            key_bp: 100,
            general_bp: 50,
        },
    }
}

const AGENT: Role = Role::CallCenterAgent;
const MANAGER: Role = Role::CustomerManager;
const DRIVER: Role = Role::Driver;
const INSPECTOR: Role = Role::MarketInspector;

/// The default scoring items: (code, standard, dimension, recorders, points, cap per period).
#[rustfmt::skip]
#[allow(clippy::type_complexity)]
const DEFAULT_RULES: &[(&str, &str, Dimension, &[Role], i32, u32)] = {
    use Dimension::*;
    &[
        ("INSPECTION_PASSED_CLEAN", "Inspection passed without findings", LawAbidance, &[INSPECTOR], 10, 2),
        ("LICENSE_DISPLAYED", "Retail license displayed", LawAbidance, &[INSPECTOR, MANAGER], 2, 5),
        ("COUNTERFEIT_FOUND", "Counterfeit or smuggled goods found", LawAbidance, &[INSPECTOR], -100, 0),
        ("SALE_TO_MINORS", "Sold to minors", LawAbidance, &[INSPECTOR], -50, 0),
        ("PRICE_VIOLATION", "Sold above the marked price", LawAbidance, &[INSPECTOR, MANAGER], -20, 0),
        ("OUT_OF_CHANNEL_PURCHASE", "Bought outside the channel", LawAbidance, &[INSPECTOR], -50, 0),
        ("ORDER_PLACED_ON_CALL", "Order placed on the call-center call", Cooperation, &[AGENT], 2, 5),
        ("GOODS_CHECKED_ON_HANDOVER", "Received delivery, checked goods", Cooperation, &[DRIVER], 2, 5),
        ("PAID_ON_TIME", "Paid on time", Cooperation, &[DRIVER, AGENT], 2, 5),
        ("E_SETTLEMENT_USED", "Settled electronically", Cooperation, &[AGENT, MANAGER], 2, 5),
        ("COMPLAINT_UNFOUNDED", "Complaint found unfounded", Cooperation, &[AGENT, MANAGER], -10, 0),
        ("PRODUCT_DISPLAY_KEPT", "Product display kept to standard", Constructiveness, &[MANAGER], 3, 5),
        ("SHELF_TIDY", "Shelves tidy and priced", Constructiveness, &[MANAGER], 2, 5),
        ("NEW_PRODUCT_PILOT_ACCEPTED", "Accepted a new-product pilot", Constructiveness, &[MANAGER], 10, 2),
        ("MARKET_INFO_SHARED", "Shared market information", Constructiveness, &[MANAGER, AGENT], 3, 4),
        ("STORE_UPKEEP_DONE", "Store kept clean and in repair", Constructiveness, &[MANAGER], 2, 5),
        ("SALES_GROWTH_QOQ", "Sales grew quarter over quarter", Growth, &[MANAGER], 15, 1),
        ("NEW_BRAND_LISTED", "Listed a new brand", Growth, &[MANAGER, AGENT], 5, 3),
        ("STABLE_ORDERING", "Ordered in every cycle of the period", Growth, &[AGENT], 5, 1),
        ("STORE_UPGRADED", "Store format upgraded or enlarged", Growth, &[MANAGER], 10, 1),
    ]
};

/// Checks a rulebook before it is stored; every problem is returned with the path
/// of the field it concerns. Only the four serving roles may record points
/// (DOMAIN.md: "points are given by the four roles that serve the retailer").
pub fn validate_rulebook(rulebook: &Rulebook) -> Result<(), Vec<(String, String)>> {
    let mut problems = Vec::new();
    let mut add = |field: String, description: &str| problems.push((field, description.to_owned()));
    for (index, rule) in rulebook.rules.iter().enumerate() {
        let field = |name: &str| format!("rules[{index}].{name}");
        let code_ok = !rule.code.is_empty()
            && rule.code.len() <= MAX_CODE_LEN
            && rule
                .code
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !code_ok {
            add(field("code"), "must be 1..64 of [A-Z0-9_]");
        } else if rulebook
            .rules
            .iter()
            .take(index)
            .any(|earlier| earlier.code == rule.code)
        {
            add(field("code"), "must be unique in the rulebook");
        }
        if rule.title.trim().is_empty() || rule.title.chars().count() > MAX_TITLE_LEN {
            add(field("title"), "must be 1..200 characters");
        }
        if rule.recorders.is_empty() {
            add(field("recorders"), "must name at least one role");
        }
        for (role_index, role) in rule.recorders.iter().enumerate() {
            if !SERVING_ROLES.contains(role) {
                add(
                    format!("rules[{index}].recorders[{role_index}]"),
                    "must be customer_manager, call_center_agent, driver or market_inspector",
                );
            }
        }
        if rule.points == 0 || rule.points.unsigned_abs() > MAX_RULE_POINTS.unsigned_abs() {
            add(field("points"), "must be non-zero and within ±1000");
        }
    }
    let thresholds = &rulebook.class_thresholds;
    if thresholds.key < 0 {
        add("class_thresholds.key".to_owned(), "must not be negative");
    }
    if thresholds.special <= thresholds.key {
        add(
            "class_thresholds.special".to_owned(),
            "must be above the key threshold",
        );
    }
    let rebates = &rulebook.rebates;
    for (name, bp) in [
        ("special_bp", rebates.special_bp),
        ("key_bp", rebates.key_bp),
        ("general_bp", rebates.general_bp),
    ] {
        if bp > FULL_BP {
            add(format!("rebates.{name}"), "must be at most 10000 basis points");
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Customer class by cumulative points (DOMAIN.md: special, key or general).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerClass {
    Special,
    Key,
    General,
}

/// Classifies by cumulative points. The special threshold is checked first, so the
/// result never gets worse as points rise, even for thresholds that fail validation.
pub fn classify(cumulative_points: i64, thresholds: &ClassThresholds) -> CustomerClass {
    if cumulative_points >= thresholds.special {
        CustomerClass::Special
    } else if cumulative_points >= thresholds.key {
        CustomerClass::Key
    } else {
        CustomerClass::General
    }
}

/// The rebate rate of a class ("each class has its own rebate rate").
pub fn rebate_bp(class: CustomerClass, rebates: &Rebates) -> u32 {
    match class {
        CustomerClass::Special => rebates.special_bp,
        CustomerClass::Key => rebates.key_bp,
        CustomerClass::General => rebates.general_bp,
    }
}

/// Whether a scoring item may be recorded now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordDecision {
    Allowed,
    /// The caller's role is not among the rule's recorders.
    RoleNotAllowed,
    /// The customer already got this item `cap` times this period.
    CapReached {
        cap: u32,
    },
}

/// Decides whether `role` may record `rule` for a customer that already got it
/// `already_this_period` times: only the rule's recorders may give it, and never
/// more often than its cap per period (0 = unlimited).
pub fn may_record(rule: &ScoreRule, role: Role, already_this_period: u32) -> RecordDecision {
    if !rule.recorders.contains(&role) {
        RecordDecision::RoleNotAllowed
    } else if rule.cap_per_period > 0 && already_this_period >= rule.cap_per_period {
        RecordDecision::CapReached {
            cap: rule.cap_per_period,
        }
    } else {
        RecordDecision::Allowed
    }
}

/// Points per dimension.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DimensionTotals {
    pub law_abidance: i64,
    pub cooperation: i64,
    pub constructiveness: i64,
    pub growth: i64,
}

impl DimensionTotals {
    pub fn get(&self, dimension: Dimension) -> i64 {
        match dimension {
            Dimension::LawAbidance => self.law_abidance,
            Dimension::Cooperation => self.cooperation,
            Dimension::Constructiveness => self.constructiveness,
            Dimension::Growth => self.growth,
        }
    }

    /// Sum over the four dimensions (saturating, like the per-dimension sums).
    pub fn total(&self) -> i64 {
        Dimension::ALL
            .iter()
            .fold(0i64, |sum, &d| sum.saturating_add(self.get(d)))
    }
}

/// A retailer's card for one period: what it earned on each dimension, and the class
/// and rebate its cumulative points give it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scorecard {
    pub per_dimension: DimensionTotals,
    pub total: i64,
    pub class: CustomerClass,
    pub rebate_bp: u32,
}

/// Builds the scorecard from the period's entries; the class comes from the
/// cumulative points, not the period's, because DOMAIN.md classifies "by cumulative
/// points". Sums saturate instead of overflowing.
pub fn scorecard(entries: &[(Dimension, i64)], cumulative_points: i64, rulebook: &Rulebook) -> Scorecard {
    let sum = |dimension: Dimension| {
        entries
            .iter()
            .filter(|(d, _)| *d == dimension)
            .fold(0i64, |sum, &(_, points)| sum.saturating_add(points))
    };
    let per_dimension = DimensionTotals {
        law_abidance: sum(Dimension::LawAbidance),
        cooperation: sum(Dimension::Cooperation),
        constructiveness: sum(Dimension::Constructiveness),
        growth: sum(Dimension::Growth),
    };
    let class = classify(cumulative_points, &rulebook.class_thresholds);
    Scorecard {
        per_dimension,
        total: per_dimension.total(),
        class,
        rebate_bp: rebate_bp(class, &rulebook.rebates),
    }
}

/// The scoring period a date falls in: its calendar month, as "YYYY-MM". Caps count
/// per period, and the weekly service cycle fits 4–5 times in a month.
pub fn period_of(date: NaiveDate) -> String {
    format!("{:04}-{:02}", date.year(), date.month())
}

/// Parses "YYYY-MM" into the period's first day and the first day of the next
/// period (a half-open range). Anything else, including out-of-range months, is `None`.
pub fn parse_period(period: &str) -> Option<(NaiveDate, NaiveDate)> {
    let (year, month) = period.split_once('-')?;
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if year.len() != 4 || month.len() != 2 || !all_digits(year) || !all_digits(month) {
        return None;
    }
    let year: i32 = year.parse().ok()?;
    let month: u32 = month.parse().ok()?;
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year.checked_add(1)?, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    Some((first, next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn class_rank(class: CustomerClass) -> u8 {
        match class {
            CustomerClass::General => 0,
            CustomerClass::Key => 1,
            CustomerClass::Special => 2,
        }
    }

    #[test]
    fn the_default_rulebook_validates_and_covers_every_dimension_and_serving_role() {
        let rulebook = default_rulebook();
        assert_eq!(validate_rulebook(&rulebook), Ok(()));
        assert!((18..=24).contains(&rulebook.rules.len()));
        for dimension in Dimension::ALL {
            assert!(
                rulebook.rules.iter().any(|r| r.dimension == dimension),
                "{dimension:?}"
            );
        }
        for role in SERVING_ROLES {
            assert!(
                rulebook.rules.iter().any(|r| r.recorders.contains(&role)),
                "{role:?}"
            );
        }
    }

    #[test]
    fn a_broken_rulebook_reports_every_field_by_path() {
        let mut rulebook = default_rulebook();
        rulebook.rules[1].code = rulebook.rules[0].code.clone();
        rulebook.rules[2].code = "bad code".into();
        rulebook.rules[3].recorders = vec![];
        rulebook.rules[4].recorders = vec![Role::MarketInspector, Role::Admin];
        rulebook.rules[5].points = 0;
        rulebook.rules[6].points = 1001;
        rulebook.class_thresholds = ClassThresholds {
            special: 100,
            key: 100,
        };
        rulebook.rebates.key_bp = 10_001;
        let fields: Vec<String> = validate_rulebook(&rulebook)
            .unwrap_err()
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(
            fields,
            [
                "rules[1].code",
                "rules[2].code",
                "rules[3].recorders",
                "rules[4].recorders[1]",
                "rules[5].points",
                "rules[6].points",
                "class_thresholds.special",
                "rebates.key_bp",
            ]
        );
    }

    #[test]
    fn classes_follow_the_default_thresholds() {
        let rulebook = default_rulebook();
        let t = &rulebook.class_thresholds;
        assert_eq!(classify(299, t), CustomerClass::Key);
        assert_eq!(classify(300, t), CustomerClass::Special);
        assert_eq!(classify(149, t), CustomerClass::General);
        assert_eq!(classify(-40, t), CustomerClass::General);
        assert_eq!(rebate_bp(CustomerClass::Special, &rulebook.rebates), 150);
    }

    #[test]
    fn a_capped_item_is_refused_once_the_cap_is_reached_and_violations_are_uncapped() {
        let rulebook = default_rulebook();
        let shelf = rulebook.rule("SHELF_TIDY").unwrap();
        assert_eq!(
            may_record(shelf, Role::CustomerManager, 4),
            RecordDecision::Allowed
        );
        assert_eq!(
            may_record(shelf, Role::CustomerManager, 5),
            RecordDecision::CapReached { cap: 5 }
        );
        assert_eq!(may_record(shelf, Role::Driver, 0), RecordDecision::RoleNotAllowed);
        let counterfeit = rulebook.rule("COUNTERFEIT_FOUND").unwrap();
        assert_eq!(
            may_record(counterfeit, Role::MarketInspector, 1_000),
            RecordDecision::Allowed
        );
    }

    #[test]
    fn periods_are_calendar_months() {
        let date = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        assert_eq!(period_of(date), "2026-11");
        let day = |y, m| NaiveDate::from_ymd_opt(y, m, 1).unwrap();
        assert_eq!(parse_period("2026-12"), Some((day(2026, 12), day(2027, 1))));
        for bad in [
            "2026-13",
            "2026-00",
            "2026-1",
            "26-11",
            "2026/11",
            "+026-11",
            "2026-11-01",
            "",
        ] {
            assert_eq!(parse_period(bad), None, "{bad}");
        }
    }

    #[test]
    fn scorecard_sums_the_period_by_dimension_and_classes_by_cumulative_points() {
        let entries = [
            (Dimension::Cooperation, 2),
            (Dimension::LawAbidance, -20),
            (Dimension::Cooperation, 2),
        ];
        let card = scorecard(&entries, 160, &default_rulebook());
        assert_eq!(card.per_dimension.cooperation, 4);
        assert_eq!(card.per_dimension.law_abidance, -20);
        assert_eq!(card.total, -16);
        assert_eq!((card.class, card.rebate_bp), (CustomerClass::Key, 100));
    }

    fn any_role() -> impl Strategy<Value = Role> {
        proptest::sample::select(Role::ALL.to_vec())
    }

    fn any_dimension() -> impl Strategy<Value = Dimension> {
        proptest::sample::select(Dimension::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn more_points_never_give_a_lower_class(
            points in any::<i64>(), more in 0i64..1_000_000, special in any::<i64>(), key in any::<i64>()
        ) {
            let thresholds = ClassThresholds { special, key };
            let higher = points.saturating_add(more);
            prop_assert!(class_rank(classify(higher, &thresholds)) >= class_rank(classify(points, &thresholds)));
        }

        #[test]
        fn a_role_outside_the_recorders_is_never_allowed(
            recorders in proptest::collection::vec(any_role(), 0..4),
            role in any_role(), cap in 0u32..10, already in any::<u32>()
        ) {
            let rule = ScoreRule {
                code: "X".into(), title: "x".into(), dimension: Dimension::Growth,
                recorders: recorders.clone(), points: 1, cap_per_period: cap,
            };
            if !recorders.contains(&role) {
                prop_assert_eq!(may_record(&rule, role, already), RecordDecision::RoleNotAllowed);
            }
        }

        #[test]
        fn the_cap_is_never_exceeded(cap in 1u32..10, roles in proptest::collection::vec(any_role(), 0..60)) {
            let rule = ScoreRule {
                code: "X".into(), title: "x".into(), dimension: Dimension::Cooperation,
                recorders: SERVING_ROLES.to_vec(), points: 2, cap_per_period: cap,
            };
            let mut allowed = 0u32;
            for role in roles {
                if may_record(&rule, role, allowed) == RecordDecision::Allowed {
                    allowed += 1;
                }
            }
            prop_assert!(allowed <= cap);
        }

        #[test]
        fn scorecard_total_is_the_sum_of_its_dimensions(
            entries in proptest::collection::vec((any_dimension(), -1_000_000i64..1_000_000), 0..50),
            cumulative in any::<i64>()
        ) {
            let card = scorecard(&entries, cumulative, &default_rulebook());
            let sum: i64 = entries.iter().map(|&(_, p)| p).sum();
            prop_assert_eq!(card.total, sum);
            for dimension in Dimension::ALL {
                let expected: i64 = entries.iter().filter(|e| e.0 == dimension).map(|e| e.1).sum();
                prop_assert_eq!(card.per_dimension.get(dimension), expected);
            }
        }

        #[test]
        fn every_date_lies_in_its_own_period(days in 0i64..3_000_000) {
            let date = NaiveDate::from_ymd_opt(1000, 1, 1).unwrap() + chrono::Days::new(days as u64);
            prop_assume!(date.year() <= 9999);
            let (first, next) = parse_period(&period_of(date)).unwrap();
            prop_assert!(first <= date && date < next);
        }

        #[test]
        fn parsing_any_text_never_panics(text in "\\PC{0,12}") {
            let _ = parse_period(&text);
        }
    }
}
