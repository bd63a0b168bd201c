-- 0004: the audit table also records the commands that act on one device:
-- 'issue' (one device registered, or its credentials handed out again) and
-- 'reissue' (a device moved to another master key id, optionally under a
-- new name). Batches ('batch', 'register') leave the new columns NULL.
-- As before, no secret of any kind.

ALTER TABLE provision_batches
    -- the one device of an 'issue' or 'reissue' row; NULL for batches
    ADD COLUMN device_id text CHECK (device_id ~ '^[0-9a-f]{12}$'),
    -- 'reissue': the key id the device was registered under before
    ADD COLUMN previous_kid text CHECK (previous_kid ~ '^[a-z0-9]{1,16}$'),
    -- 'issue', 'reissue': the device's name after the command
    ADD COLUMN fqdn text,
    -- 'reissue' with a new name: the name the device had before
    ADD COLUMN previous_fqdn text,
    -- 'reissue': devices moved to another key id or name (0 or 1)
    ADD COLUMN devices_changed integer NOT NULL DEFAULT 0 CHECK (devices_changed >= 0),
    DROP CONSTRAINT provision_batches_command_check,
    ADD CONSTRAINT provision_batches_command_check
        CHECK (command IN ('batch', 'register', 'issue', 'reissue')),
    -- exactly the single-device commands name their device
    ADD CONSTRAINT provision_batches_device_check
        CHECK ((command IN ('issue', 'reissue')) = (device_id IS NOT NULL));

CREATE INDEX provision_batches_device_idx ON provision_batches (device_id)
    WHERE device_id IS NOT NULL;

-- devices.batch_id (0002) now also names the 'issue' row that registered a
-- device registered one by one; it stays the row of its registration when
-- the device is reissued.
