-- A replica row can be created by a retailer's standing (StandingChanged) before its
-- profile (CustomerChanged) arrives. Until the profile is here the row has no owner,
-- format or settlement, and orders for the retailer must wait (CUSTOMER_NOT_KNOWN,
-- retried) instead of being judged on those defaults — a cash settlement with no
-- credit would refuse them for good.
ALTER TABLE retailers ADD COLUMN profile_known BOOLEAN NOT NULL DEFAULT false;
-- Rows already here: a profile always sets a format and a settlement.
UPDATE retailers SET profile_known = true WHERE format <> 0 OR settlement <> 0 OR owner_id <> '';
