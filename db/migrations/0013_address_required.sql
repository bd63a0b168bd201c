-- 0013: models whose signed updates must name the address they publish
-- (docs/PROTOCOL.md section 4.2; [firmware] address_required_models, and
-- the operators' policy through PUT /api/v1/policy): an address-less
-- request of such a model is answered "409 moved ADDR" and writes nothing.

ALTER TABLE firmware_policy
    ADD COLUMN address_required boolean NOT NULL DEFAULT false,
    DROP CONSTRAINT firmware_policy_rule_check,
    ADD CONSTRAINT firmware_policy_rule_check
        CHECK (blocked OR signed_only OR address_required OR min_version IS NOT NULL);
