//! A deterministic synthetic retailer network for demos, load tests and benchmarks.
//!
//! The shape follows the reference case in DOMAIN.md: ~10,000–100,000 retailers split
//! into 20 areas, one customer manager per ~200 retailers, most retailers inside the
//! 25 km radius that gets two deliveries a day, 70 % on e-settlement. Generation is a
//! pure function of [`NetworkShape`]: the same shape always yields the same network.

use distnet_platform::cycle::CycleId;
use distnet_proto::accreditation::v1::CreditProfile;
use distnet_proto::common::v1::{LatLng, LocalTimeWindow, Money, PostalAddress, TimeOfDay};
use distnet_proto::customers::v1::{Customer, CustomerFormat, CustomerStatus, Settlement};

/// One generated retailer: the id to create it under and its profile.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedRetailer {
    pub customer_id: String,
    pub customer: Customer,
}

/// How big the network is and where it lies.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkShape {
    /// Number of retailers (DOMAIN.md: ~10,000–100,000 in the reference case).
    pub retailers: usize,
    /// Areas, each served by one team of agent, manager, inspector and driver (DOMAIN.md: 20).
    pub areas: usize,
    /// Target load of one customer manager (DOMAIN.md: ~200 retailers each).
    pub retailers_per_manager: usize,
    /// (latitude, longitude) of the distribution center, in degrees.
    pub center: (f64, f64),
    /// No retailer lies farther than this from the center.
    pub radius_km: f64,
    pub seed: u64,
}

impl Default for NetworkShape {
    /// The reference city: 11,500 retailers in 20 areas around central Chengdu, out to
    /// 40 km so that the remote, once-a-day areas beyond 25 km exist too.
    fn default() -> Self {
        Self {
            retailers: 11_500,
            areas: 20,
            retailers_per_manager: 200,
            center: (30.66, 104.06),
            radius_km: 40.0,
            seed: 48,
        }
    }
}

const EARTH_RADIUS_KM: f64 = 6371.0;
/// Where the inner (downtown), middle and outer rings end, as fractions of `radius_km`.
/// With the default 40 km the middle ring ends at 25 km, the DOMAIN.md radius for two
/// deliveries a day; the outer ring holds the remote once-a-day areas.
const RING_ENDS: [f64; 3] = [0.3, 0.625, 1.0];
/// Retailers per area relative to an outer area: the center is densest. With 6/8/6
/// areas this puts 45 % / 40 % / 15 % of retailers in the rings, 85 % within 25 km.
const RING_WEIGHTS: [usize; 3] = [3, 2, 1];
/// Districts per ring, ordered clockwise from north as they lie around central Chengdu.
const DISTRICTS: [&str; 3] = [
    "成华区 锦江区 高新区 武侯区 青羊区 金牛区",
    "新都区 青白江区 龙泉驿区 天府新区 双流区 新津区 温江区 郫都区",
    "彭州市 金堂县 简阳市 蒲江县 崇州市 都江堰市",
];
/// Formats with cumulative per-mille shares and floor-area ranges (m²): malls 0.2 %,
/// supermarkets 4 %, chain stores 9 %, convenience stores 32 %, groceries 54.8 %. Mostly
/// small shops, few large stores (DOMAIN.md: 28 large stores ordered online at first).
const FORMAT_MIX: [(CustomerFormat, usize, (i32, i32)); 5] = [
    (CustomerFormat::Mall, 2, (2000, 20_000)),
    (CustomerFormat::Supermarket, 42, (200, 2000)),
    (CustomerFormat::ChainStore, 132, (60, 300)),
    (CustomerFormat::ConvenienceStore, 452, (30, 120)),
    (CustomerFormat::Grocery, 1000, (15, 60)),
];
/// DOMAIN.md: e-settlement reached 70 % of retailers.
const E_SETTLEMENT_SHARE: f64 = 0.70;
/// Known but not yet buying, per mille.
const PROSPECT_PER_MILLE: usize = 20;
// Word lists, space separated.
const LUCKY: &str = "福 兴 隆 顺 发 旺 盛 祥 和 鑫 源 利 佳 美 华 丰 康 乐 安 泰 德 宏 金 永 富 万 嘉 惠";
const GROCERY_KINDS: &str = "商行 烟酒店 副食店 小卖部 杂货店 烟酒商行";
const CHAINS: &str = "家家福 邻里惠 万佳乐 惠民 益家";
const STREETS: &str =
    "人民 建设 解放 光华 天府 红星 长顺 玉林 双林 府青 蜀汉 羊市 沙湾 青龙 锦城 桂溪 望江 金沙 驷马桥 营门口";
const STREET_KINDS: &str = "路 街 大道 巷 北路 南路 东街 西街";
const SURNAMES: &str =
    "王 李 张 刘 陈 杨 黄 赵 吴 周 徐 孙 马 朱 胡 郭 何 高 林 罗 郑 梁 谢 唐 韩 邓 曾 彭 蒋 杜";
const GIVEN: &str =
    "伟 芳 娜 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 秀 华 平 刚 兰 红 霞 鹏 辉 玲 斌 波 婷";

/// `SplitMix64`: tiny, fast and good enough for synthetic data; keeps us free of crates.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n (n > 0).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// One word of a space-separated list.
    fn pick<'a>(&mut self, words: &'a str) -> &'a str {
        let k = self.below(words.split(' ').count());
        words.split(' ').nth(k).unwrap_or(words)
    }
}

/// One area: a sector of one ring, its retailer count and its customer managers.
struct Area {
    id: String,
    district: &'static str,
    postal_code: String,
    retailers: usize,
    /// Global number of the area's first manager (`cm-001` is 1).
    first_manager: usize,
    managers: usize,
    ring_km: (f64, f64),
    bearing_deg: (f64, f64),
}

fn plan(shape: &NetworkShape) -> Vec<Area> {
    let n = shape.areas.max(1);
    let per = shape.retailers_per_manager.max(1);
    let radius = shape.radius_km.max(0.0);
    let band = (3 * n + 5) / 10;
    let inner = band.clamp(1, n);
    let outer = band.min(n - inner);
    let counts = [inner, n - inner - outer, outer];
    // Empty rings are skipped; their band goes to the next ring out, the last reaches the edge.
    let mut rings = Vec::new();
    let mut start = 0.0;
    for (ring, &count) in counts.iter().enumerate() {
        if count > 0 {
            rings.push((ring, count, start, RING_ENDS[ring]));
            start = RING_ENDS[ring];
        }
    }
    if let Some(last) = rings.last_mut() {
        last.3 = 1.0;
    }
    let total_weight: usize = rings.iter().map(|r| r.1 * RING_WEIGHTS[r.0]).sum();
    let (mut areas, mut cum_weight, mut next_manager) = (Vec::with_capacity(n), 0, 1);
    for (ring, count, start, end) in rings {
        let sector = 360.0 / count as f64;
        for i in 0..count {
            // Cumulative integer shares: the counts add up to exactly `retailers`.
            let before = shape.retailers * cum_weight / total_weight;
            cum_weight += RING_WEIGHTS[ring];
            let retailers = shape.retailers * cum_weight / total_weight - before;
            let managers = ((retailers + per / 2) / per).max(1);
            let names: Vec<&'static str> = DISTRICTS[ring].split(' ').collect();
            let middle = (i as f64 + 0.5) / count as f64;
            let index = areas.len();
            areas.push(Area {
                id: format!("area-{:02}", index + 1),
                district: names[(middle * names.len() as f64) as usize % names.len()],
                postal_code: format!("61{:04}", 41 + 100 * (index % 20)),
                retailers,
                first_manager: next_manager,
                managers,
                ring_km: (start * radius, end * radius),
                bearing_deg: (i as f64 * sector, (i + 1) as f64 * sector),
            });
            next_manager += managers;
        }
    }
    areas
}

/// Where an area lies: its id, its ring (km from the center) and its sector (degrees
/// clockwise from north). Logistics zones and depots are laid out from it.
#[derive(Debug, Clone, PartialEq)]
pub struct AreaLayout {
    pub id: String,
    pub ring_km: (f64, f64),
    pub bearing_deg: (f64, f64),
}

/// The areas of the network `shape` describes, in id order.
pub fn area_layout(shape: &NetworkShape) -> Vec<AreaLayout> {
    plan(shape)
        .into_iter()
        .map(|a| AreaLayout {
            id: a.id,
            ring_km: a.ring_km,
            bearing_deg: a.bearing_deg,
        })
        .collect()
}

fn manager_id(number: usize) -> String {
    format!("cm-{number:03}")
}

/// Every customer manager with the area they serve, in id order: each area has its
/// own managers, about one per `retailers_per_manager` retailers and at least one.
pub fn manager_ids(shape: &NetworkShape) -> Vec<(String, String)> {
    plan(shape)
        .iter()
        .flat_map(|a| (0..a.managers).map(|m| (manager_id(a.first_manager + m), a.id.clone())))
        .collect()
}

/// The network described by `shape`; ids `r-00001`… follow area order.
pub fn generate(shape: &NetworkShape) -> Vec<SeedRetailer> {
    let mut rng = SplitMix64(shape.seed);
    let mut out = Vec::with_capacity(shape.retailers);
    for area in plan(shape) {
        let (b0, b1) = area.bearing_deg;
        let (r0, r1) = area.ring_km;
        let mut spots = Vec::with_capacity(area.retailers);
        for _ in 0..area.retailers {
            let bearing = b0 + (b1 - b0) * rng.unit();
            // The exponent < 1 leans toward the inner edge: denser toward the center.
            spots.push((bearing, r0 + (r1 - r0) * rng.unit().powf(0.7)));
        }
        // Owners by bearing: each manager covers one slice of the area, in equal shares.
        spots.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (rank, (bearing, km)) in spots.into_iter().enumerate() {
            let owner = manager_id(area.first_manager + rank * area.managers / area.retailers);
            let location = destination(shape.center, bearing, km);
            let mut customer = retailer(&mut rng, &area, owner, location);
            // Visit days Monday to Friday, each a contiguous fifth of the owner's slice
            // (by bearing), so a day's visits lie together.
            customer.visit_weekday = 1 + ((rank * area.managers * 5 / area.retailers) % 5) as i32;
            out.push(SeedRetailer {
                customer_id: format!("r-{:05}", out.len() + 1),
                customer,
            });
        }
    }
    out
}

fn retailer(rng: &mut SplitMix64, area: &Area, owner: String, at: (f64, f64)) -> Customer {
    use CustomerFormat as F;
    let roll = rng.below(1000);
    let mix = FORMAT_MIX.into_iter().find(|f| roll < f.1);
    let (format, _, (lo, hi)) = mix.unwrap_or(FORMAT_MIX[4]);
    let (brand, chain) = (
        format!("{}{}", rng.pick(LUCKY), rng.pick(LUCKY)),
        rng.pick(CHAINS),
    );
    let (street, district) = (rng.pick(STREETS), area.district);
    let display_name = match format {
        F::Mall => format!("{brand}{}", rng.pick("购物中心 广场")),
        F::Supermarket => format!("{brand}超市"),
        F::ChainStore => format!("{chain}连锁{street}店"),
        F::ConvenienceStore => format!("{brand}便利店"),
        _ => format!("{brand}{}", rng.pick(GROCERY_KINDS)),
    };
    let legal_name = match format {
        F::Mall => format!("成都{brand}商业管理有限公司"),
        F::Supermarket => format!("成都市{district}{display_name}有限公司"),
        F::ChainStore => format!("成都{chain}连锁商业有限公司{street}分店"),
        _ => format!("成都市{district}{display_name}"),
    };
    let given_len = 1 + usize::from(rng.below(10) >= 4);
    let given: String = (0..given_len).map(|_| rng.pick(GIVEN)).collect();
    let contact_name = format!("{}{given}", rng.pick(SURNAMES));
    let mobile = rng.pick("13 15 18");
    let contact_phone = format!("{mobile}{}{:08}", rng.below(10), rng.below(100_000_000));
    let floor = f64::from(lo) * (f64::from(hi) / f64::from(lo)).powf(rng.unit());
    // Deliveries come mornings and afternoons: open from 08:00–10:00 for 2–6 hours.
    let start = 16 + rng.below(5);
    let end = start + 4 + rng.below(9);
    let time = |half_hours: usize| TimeOfDay {
        hours: (half_hours / 2) as i32,
        minutes: (half_hours % 2 * 30) as i32,
    };
    let settlement = [Settlement::Cash, Settlement::ESettlement];
    let settlement = settlement[usize::from(rng.unit() < E_SETTLEMENT_SHARE)];
    let status = [CustomerStatus::Active, CustomerStatus::Prospect];
    let status = status[usize::from(rng.below(1000) < PROSPECT_PER_MILLE)];
    Customer {
        display_name,
        legal_name,
        format: format as i32,
        area_id: area.id.clone(),
        owner_id: owner,
        address: Some(PostalAddress {
            province: "四川省".into(),
            city: "成都市".into(),
            district: district.into(),
            street: format!("{street}{}{}号", rng.pick(STREET_KINDS), 1 + rng.below(300)),
            postal_code: area.postal_code.clone(),
        }),
        location: Some(LatLng {
            latitude: at.0,
            longitude: at.1,
        }),
        contact_name,
        contact_phone,
        receiving_window: Some(LocalTimeWindow {
            start: Some(time(start)),
            end: Some(time(end)),
            time_zone: "Asia/Shanghai".into(),
        }),
        settlement: settlement as i32,
        status: status as i32,
        floor_area_sqm: (floor.round() as i32).clamp(lo, hi),
        ..Customer::default()
    }
}

/// The point `km` from `(lat, lng)` along the initial `bearing_deg` on a sphere.
pub fn destination((lat, lng): (f64, f64), bearing_deg: f64, km: f64) -> (f64, f64) {
    let (phi1, lambda1, theta) = (lat.to_radians(), lng.to_radians(), bearing_deg.to_radians());
    let delta = km / EARTH_RADIUS_KM;
    let sin_phi2 = phi1.sin() * delta.cos() + phi1.cos() * delta.sin() * theta.cos();
    let phi2 = sin_phi2.clamp(-1.0, 1.0).asin();
    let y = theta.sin() * delta.sin() * phi1.cos();
    let lambda2 = lambda1 + y.atan2(delta.cos() - phi1.sin() * phi2.sin());
    let lng2 = (lambda2.to_degrees() + 540.0).rem_euclid(360.0) - 180.0;
    (phi2.to_degrees(), lng2)
}

/// One retailer's purchases in a month.
#[derive(Debug, Clone, PartialEq)]
pub struct MonthlyPurchase {
    pub customer_id: String,
    pub amount_fen: i64,
    pub cartons: i64,
}

/// Typical cartons a month by format: a grocery sells a few dozen, a mall hundreds.
fn monthly_cartons(format: i32) -> (i64, i64) {
    match CustomerFormat::try_from(format) {
        Ok(CustomerFormat::ConvenienceStore) => (40, 150),
        Ok(CustomerFormat::Supermarket) => (150, 600),
        Ok(CustomerFormat::ChainStore) => (80, 300),
        Ok(CustomerFormat::Mall) => (300, 1000),
        _ => (20, 80),
    }
}

/// Deterministic purchase history for the generated retailers: cartons by
/// format with a heavy tail (20 % of customers bring 80 % of the business,
/// DOMAIN.md), at about 200 yuan a carton; one retailer in twenty is new and has
/// none, so the grading places it by format and size.
pub fn monthly_purchases(shape: &NetworkShape, retailers: &[SeedRetailer]) -> Vec<MonthlyPurchase> {
    let mut rng = SplitMix64(shape.seed ^ 0x5EED_B00C);
    retailers
        .iter()
        .filter_map(|retailer| {
            let newcomer = rng.below(20) == 0;
            let (low, high) = monthly_cartons(retailer.customer.format);
            let span = usize::try_from(high - low).unwrap_or(1).max(1);
            let typical = low + i64::try_from(rng.below(span)).unwrap_or(0);
            // Pareto-like multiplier in [1, 8): most near 1, a few big buyers.
            let tail = (1.0 / (1.0 - rng.unit() * 0.984)).sqrt().min(8.0);
            let cartons = (typical as f64 * tail).round() as i64;
            let price_fen = 15_000 + i64::try_from(rng.below(10_000)).unwrap_or(0);
            (!newcomer).then(|| MonthlyPurchase {
                customer_id: retailer.customer_id.clone(),
                amount_fen: cartons * price_fen,
                cartons,
            })
        })
        .collect()
}

/// One retailer's orders in one past cycle, as the previous system recorded them.
#[derive(Debug, Clone, PartialEq)]
pub struct WeeklyOrders {
    pub customer_id: String,
    pub cycle: CycleId,
    pub value_fen: i64,
    pub cartons: i64,
    pub scarce_cartons: i64,
}

/// Past cycles of order history the demo imports (the insights window is 12 cycles
/// including the current one, whose orders arrive live).
pub const HISTORY_CYCLES: usize = 11;

/// Deterministic order history for the [`HISTORY_CYCLES`] cycles before `current`,
/// from the same monthly purchases the grading uses: each retailer orders in most
/// weeks (its own regularity, 55–100 %), about a quarter of its monthly cartons at a
/// time (±40 %), with 0–30 % scarce products; one in thirty stopped ordering two
/// cycles ago (the churn risk the insights flag). Newcomers have no history.
pub fn weekly_history(
    shape: &NetworkShape,
    retailers: &[SeedRetailer],
    current: CycleId,
) -> Vec<WeeklyOrders> {
    let mut rng = SplitMix64(shape.seed ^ 0x0DE2_5EED);
    let mut cycles = Vec::with_capacity(HISTORY_CYCLES);
    let mut cycle = current;
    for _ in 0..HISTORY_CYCLES {
        match cycle.previous() {
            Some(previous) => {
                cycles.push(previous);
                cycle = previous;
            }
            None => break,
        }
    }
    cycles.reverse();
    let mut out = Vec::new();
    for purchase in monthly_purchases(shape, retailers) {
        let regularity = 0.55 + 0.45 * rng.unit();
        let scarce_share = 0.3 * rng.unit();
        let stopped = rng.below(30) == 0;
        let price_fen = purchase.amount_fen / purchase.cartons.max(1);
        for (i, cycle) in cycles.iter().enumerate() {
            let ordered = rng.unit() < regularity;
            let noise = 0.6 + 0.8 * rng.unit();
            if !ordered || (stopped && i + 2 >= cycles.len()) {
                continue;
            }
            let cartons = ((purchase.cartons as f64 / 4.33) * noise).round().max(1.0) as i64;
            out.push(WeeklyOrders {
                customer_id: purchase.customer_id.clone(),
                cycle: *cycle,
                value_fen: cartons * price_fen,
                cartons,
                scarce_cartons: (cartons as f64 * scarce_share).floor() as i64,
            });
        }
    }
    out
}

/// Every `SAMPLE_EVERY`-th retailer gets a score history and a credit file in the
/// demo: enough to show classes and credit without seeding 11,500 of each.
pub const SAMPLE_EVERY: usize = 10;

/// A credit file for a sampled retailer: financial ratios around healthy small
/// retail values, a few weak ones, on-time payment mostly high (DOMAIN.md
/// "Credit").
pub fn credit_file(shape: &NetworkShape, index: usize, retailer: &SeedRetailer) -> CreditProfile {
    let mut rng = SplitMix64(shape.seed ^ 0x00C4_ED17 ^ (index as u64).wrapping_mul(0x9E37_79B9));
    let (low, high) = monthly_cartons(retailer.customer.format);
    let scale = (low + high) * 2_000_000; // fen of working capital per carton-month of business
    let working_capital =
        scale / 2 + i64::try_from(rng.below(usize::try_from(scale).unwrap_or(1))).unwrap_or(0);
    let cny = |fen: i64| {
        Some(Money {
            currency_code: "CNY".into(),
            fen,
        })
    };
    CreditProfile {
        customer: format!("customers/{}", retailer.customer_id),
        working_capital: cny(working_capital),
        net_assets: cny(working_capital * 2),
        current_ratio: 0.6 + rng.unit() * 2.0,
        interest_coverage: 0.5 + rng.unit() * 8.0,
        debt_ratio: 0.2 + rng.unit() * 0.7,
        cash_ratio: 0.1 + rng.unit() * 0.9,
        on_time_payment_rate: 0.75 + rng.unit() * 0.25,
        disputes_last_year: i32::try_from(rng.below(4)).unwrap_or(0),
        ..CreditProfile::default()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn weekly_history_covers_the_past_cycles_mostly_regularly_with_some_who_stopped() {
        let shape = NetworkShape::default();
        let current = CycleId::parse("2026-W48").expect("cycle");
        let history = weekly_history(&shape, network(), current);
        assert_eq!(
            history,
            weekly_history(&shape, network(), current),
            "deterministic"
        );
        let first = CycleId::parse("2026-W37").expect("cycle");
        assert!(history.iter().all(|w| w.cycle >= first && w.cycle < current));
        assert!(
            history
                .iter()
                .all(|w| w.cartons >= 1 && (0..=w.cartons).contains(&w.scarce_cartons))
        );
        assert!(history.iter().all(|w| w.value_fen > 0));
        let buyers: std::collections::HashSet<&str> =
            history.iter().map(|w| w.customer_id.as_str()).collect();
        let active_last_cycles: std::collections::HashSet<&str> = history
            .iter()
            .filter(|w| w.cycle >= CycleId::parse("2026-W46").expect("cycle"))
            .map(|w| w.customer_id.as_str())
            .collect();
        // About 95 % buy; of those, most ordered in the last two cycles, a few stopped.
        let share = buyers.len() as f64 / network().len() as f64;
        assert!((0.9..0.99).contains(&share), "{share}");
        let quiet = buyers.len() - active_last_cycles.len();
        assert!(
            quiet > buyers.len() / 50 && quiet < buyers.len() / 5,
            "{quiet} of {}",
            buyers.len()
        );
        // Ordering in most weeks: 55–100 % regularity averages about 78 %.
        let per_buyer = history.len() as f64 / buyers.len() as f64 / HISTORY_CYCLES as f64;
        assert!((0.65..0.9).contains(&per_buyer), "{per_buyer}");
    }

    #[test]
    fn purchases_are_deterministic_skewed_and_leave_some_newcomers() {
        let shape = NetworkShape {
            retailers: 2_000,
            ..NetworkShape::default()
        };
        let retailers = generate(&shape);
        let purchases = monthly_purchases(&shape, &retailers);
        assert_eq!(purchases, monthly_purchases(&shape, &retailers));
        let newcomers = retailers.len() - purchases.len();
        assert!((40..=160).contains(&newcomers), "{newcomers} newcomers");
        let mut amounts: Vec<i64> = purchases.iter().map(|p| p.amount_fen).collect();
        amounts.sort_unstable_by(|a, b| b.cmp(a));
        let top_fifth: i64 = amounts[..amounts.len() / 5].iter().sum();
        let total: i64 = amounts.iter().sum();
        assert!(
            top_fifth * 100 / total >= 35,
            "the top fifth buys well above a fifth"
        );
        assert!(purchases.iter().all(|p| p.cartons > 0 && p.amount_fen > 0));
    }

    use super::*;
    use std::collections::{HashMap, HashSet};
    use std::sync::OnceLock;

    fn network() -> &'static [SeedRetailer] {
        static NETWORK: OnceLock<Vec<SeedRetailer>> = OnceLock::new();
        NETWORK.get_or_init(|| generate(&NetworkShape::default()))
    }

    fn share(pred: impl Fn(&Customer) -> bool) -> f64 {
        let hits = network().iter().filter(|r| pred(&r.customer)).count();
        hits as f64 / network().len() as f64
    }

    fn at(c: &Customer) -> (f64, f64) {
        let l = c.location.expect("location");
        (l.latitude, l.longitude)
    }

    /// Great-circle distance, independent of how `destination` places points.
    fn haversine_km(a: (f64, f64), b: (f64, f64)) -> f64 {
        let (p1, p2) = (a.0.to_radians(), b.0.to_radians());
        let (dp, dl) = (p2 - p1, (b.1 - a.1).to_radians());
        let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_KM * h.sqrt().asin()
    }

    fn from_center(c: &Customer) -> f64 {
        haversine_km(NetworkShape::default().center, at(c))
    }

    #[test]
    fn generation_is_deterministic_for_the_same_shape_and_varies_with_the_seed() {
        let shape = NetworkShape::default();
        assert_eq!(generate(&shape), network());
        assert_eq!(manager_ids(&shape), manager_ids(&shape));
        assert_ne!(generate(&NetworkShape { seed: 7, ..shape }), network());
    }

    #[test]
    fn counts_match_the_shape_and_ids_are_unique_and_well_formed() {
        assert_eq!(network().len(), 11_500);
        assert_eq!(network()[0].customer_id, "r-00001");
        let ids: HashSet<_> = network().iter().map(|r| r.customer_id.as_str()).collect();
        assert_eq!(ids.len(), network().len());
        let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        assert!(ids.iter().all(|id| id.len() <= 63 && id.chars().all(valid)));
        let areas: HashSet<_> = network().iter().map(|r| &r.customer.area_id).collect();
        assert_eq!(areas.len(), 20);
        assert!(areas.contains(&"area-01".to_string()) && areas.contains(&"area-20".to_string()));
    }

    #[test]
    fn every_owner_manages_the_retailers_area_and_carries_about_200_retailers() {
        let managers: HashMap<_, _> = manager_ids(&NetworkShape::default()).into_iter().collect();
        let mut load: HashMap<&str, usize> = HashMap::new();
        for c in network().iter().map(|r| &r.customer) {
            assert_eq!(managers.get(&c.owner_id), Some(&c.area_id), "{}", c.owner_id);
            *load.entry(&c.owner_id).or_default() += 1;
        }
        assert_eq!(load.len(), managers.len(), "every manager owns retailers");
        assert!(load.values().all(|n| (100..=300).contains(n)), "{load:?}");
        // Load-balanced: within an area, loads differ by at most one.
        let mut range: HashMap<&str, (usize, usize)> = HashMap::new();
        for (manager, &n) in &load {
            let r = range.entry(managers[*manager].as_str()).or_insert((n, n));
            *r = (r.0.min(n), r.1.max(n));
        }
        assert!(range.values().all(|(lo, hi)| hi - lo <= 1), "{range:?}");
    }

    #[test]
    fn small_shapes_still_give_every_area_a_manager_and_every_retailer_an_owner() {
        for (retailers, areas) in [(5, 3), (0, 1), (450, 2), (1000, 7)] {
            let shape = NetworkShape {
                retailers,
                areas,
                ..NetworkShape::default()
            };
            let managers: HashMap<_, _> = manager_ids(&shape).into_iter().collect();
            assert_eq!(managers.values().collect::<HashSet<_>>().len(), areas);
            let net = generate(&shape);
            assert_eq!(net.len(), retailers);
            let owned = |c: &Customer| managers.get(&c.owner_id) == Some(&c.area_id);
            assert!(net.iter().all(|r| owned(&r.customer)));
        }
    }

    #[test]
    fn locations_lie_in_their_areas_sector_within_the_radius_and_mostly_within_25_km() {
        let shape = NetworkShape::default();
        let areas: HashMap<_, _> = plan(&shape).into_iter().map(|a| (a.id.clone(), a)).collect();
        let (p1, l1) = (shape.center.0.to_radians(), shape.center.1.to_radians());
        for c in network().iter().map(|r| &r.customer) {
            let (area, (lat, lng), km) = (&areas[&c.area_id], at(c), from_center(c));
            assert!((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lng));
            assert!(km <= shape.radius_km + 1e-6);
            assert!(km >= area.ring_km.0 - 1e-6 && km <= area.ring_km.1 + 1e-6);
            let (p2, dl) = (lat.to_radians(), lng.to_radians() - l1);
            let x = p1.cos() * p2.sin() - p1.sin() * p2.cos() * dl.cos();
            let bearing = (dl.sin() * p2.cos()).atan2(x).to_degrees();
            let offset = (bearing - area.bearing_deg.0).rem_euclid(360.0);
            let width = area.bearing_deg.1 - area.bearing_deg.0;
            assert!(offset <= width + 1e-6 || offset >= 360.0 - 1e-6, "{c:?}");
        }
        let near = share(|c| from_center(c) <= 25.0);
        assert!(near > 0.8 && near < 0.95, "two deliveries a day for most: {near}");
        let downtown = share(|c| from_center(c) <= 12.0);
        assert!(downtown > 0.4, "denser near the center: {downtown}");
    }

    #[test]
    fn format_mix_is_mostly_groceries_and_convenience_with_rare_malls() {
        let of = |f: CustomerFormat| share(move |c| c.format == f as i32);
        let small = of(CustomerFormat::Grocery) + of(CustomerFormat::ConvenienceStore);
        assert!(small > 0.75, "{small}");
        assert!(of(CustomerFormat::ChainStore) > of(CustomerFormat::Supermarket));
        let malls = of(CustomerFormat::Mall);
        assert!(malls > 0.0 && malls < 0.01, "{malls}");
        for c in network().iter().map(|r| &r.customer) {
            let mix = FORMAT_MIX.into_iter().find(|f| f.0 as i32 == c.format);
            let (_, _, (lo, hi)) = mix.expect("known format");
            assert!((lo..=hi).contains(&c.floor_area_sqm), "{c:?}");
        }
    }

    #[test]
    fn receiving_windows_open_in_the_morning_for_two_to_six_hours() {
        for c in network().iter().map(|r| &r.customer) {
            let w = c.receiving_window.as_ref().expect("window");
            assert_eq!(w.time_zone, "Asia/Shanghai");
            let [s, e] = [w.start, w.end].map(|t| t.expect("time"));
            for t in [s, e] {
                assert!((0..24).contains(&t.hours) && (t.minutes == 0 || t.minutes == 30));
            }
            let (s, e) = (s.hours * 60 + s.minutes, e.hours * 60 + e.minutes);
            assert!((8 * 60..=10 * 60).contains(&s) && (120..=360).contains(&(e - s)));
        }
    }

    #[test]
    fn profiles_look_like_chengdu_retailers_and_leave_server_fields_empty() {
        for c in network().iter().map(|r| &r.customer) {
            assert!(c.name.is_empty() && c.etag.is_empty());
            assert!(c.create_time.is_none() && c.update_time.is_none());
            assert!(c.legal_name.starts_with("成都") && c.display_name.chars().count() <= 10);
            assert!((2..=3).contains(&c.contact_name.chars().count()), "{c:?}");
            let p = &c.contact_phone;
            assert!(p.len() == 11 && p.chars().all(|d| d.is_ascii_digit()), "{p}");
            assert!(["13", "15", "18"].contains(&&p[..2]), "{p}");
            let a = c.address.as_ref().expect("address");
            assert_eq!((a.province.as_str(), a.city.as_str()), ("四川省", "成都市"));
            assert!(!a.district.is_empty() && a.street.ends_with('号'));
        }
        let e = share(|c| c.settlement == Settlement::ESettlement as i32);
        assert!((0.67..0.73).contains(&e), "DOMAIN.md: 70 % e-settlement, got {e}");
        let prospects = share(|c| c.status == CustomerStatus::Prospect as i32);
        assert!(prospects > 0.0 && prospects < 0.05, "{prospects}");
    }
}
