-- 0010: secret generations, and keeping devices or models off dyndns2.
--
-- devices.generation    the generation of the device's secret
--                       (docs/PROTOCOL.md section 3). Every device
--                       registered before this migration is generation 0
--                       and keeps its secret (label ddns-device-secret-v1)
--                       and its dyndns2 password kid.secret; ddns-provision
--                       registers new devices at generation 1, and every
--                       reissue (ddns-provision or the admin API) adds one,
--                       so that the device's earlier secrets are refused
--                       from the reissue's commit on, whatever key id it
--                       ends on. 9999999 is the largest (seven digits in
--                       the key reference kid/generation).
-- devices.dyndns2       false: the device's /nic/update requests are
--                       refused (badauth), for devices that only speak the
--                       signed protocol (POST /api/v1/devices/{id}/dyndns2).
-- firmware_policy.signed_only
--                       the model's /nic/update requests are refused
--                       (badagent): it only speaks the signed protocol.
-- provision_batches.generation, previous_generation
--                       the generation a single-device command (issue,
--                       reissue) or a batch (batch, register) left its
--                       devices at, and for reissue the one before.
--
-- The columns' defaults are constants: PostgreSQL adds them without
-- rewriting the tables. The gateway's update function gains the generation
-- (db/functions/20_update.sql); its form without it stays for the gateways
-- of the previous release, as generation 0. ddns_apply_request() gains the
-- generation as its third argument: its eleven-argument form is dropped
-- here (the functions file creates the new one; no gateway calls it).

ALTER TABLE devices
    ADD COLUMN generation integer NOT NULL DEFAULT 0
        CHECK (generation BETWEEN 0 AND 9999999),
    ADD COLUMN dyndns2 boolean NOT NULL DEFAULT true;

ALTER TABLE firmware_policy
    ADD COLUMN signed_only boolean NOT NULL DEFAULT false,
    DROP CONSTRAINT firmware_policy_check,
    ADD CONSTRAINT firmware_policy_rule_check
        CHECK (blocked OR signed_only OR min_version IS NOT NULL);

ALTER TABLE provision_batches
    ADD COLUMN generation integer CHECK (generation BETWEEN 0 AND 9999999),
    ADD COLUMN previous_generation integer CHECK (previous_generation BETWEEN 0 AND 9999999);

DROP FUNCTION IF EXISTS ddns_apply_request(text, text, bigint, inet, inet, inet, text[],
                                           boolean, integer, text, text);
