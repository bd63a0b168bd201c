-- 0011: 'ddns-provision revoke' and 'restore' are recorded in the audit
-- table like the other single-device commands, with their operator. No
-- secret of any kind.

ALTER TABLE provision_batches
    DROP CONSTRAINT provision_batches_command_check,
    ADD CONSTRAINT provision_batches_command_check
        CHECK (command IN ('batch', 'register', 'issue', 'reissue', 'revoke', 'restore')),
    DROP CONSTRAINT provision_batches_device_check,
    ADD CONSTRAINT provision_batches_device_check
        CHECK ((command IN ('issue', 'reissue', 'revoke', 'restore')) = (device_id IS NOT NULL));
