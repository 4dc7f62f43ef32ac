//! The rules of allocation, free of I/O: tier quotas and proportional splits,
//! demand estimation, weekly cycles, and the dynamic balance of quotas.

pub mod balance;
pub mod cycle;
pub mod demand;
pub mod proportional;
pub mod tier_quota;
