//! The rules of allocation, free of I/O: tier quotas and proportional splits,
//! demand estimation, weekly cycles, and the dynamic balance of quotas.

pub mod access;
pub mod balance;
pub mod cycle;
pub mod demand;
pub mod eligibility;
pub mod order;
pub mod proportional;
pub mod run;
pub mod tier_quota;
