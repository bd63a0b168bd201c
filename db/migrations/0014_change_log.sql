-- 0014: the change log that lets a gateway answer a poll that changes
-- nothing from memory, exactly (docs/PROTOCOL.md section 5.1,
-- docs/ARCHITECTURE.md "The quiet cache"). Every transaction that changes
-- what such an answer depends on (a device's credential, status, replay
-- marker or recorded answer; a name's owner, label, zone or addresses)
-- appends (its transaction id, the device) here, from triggers, without
-- serialising commits as NOTIFY would. A gateway reads the rows that became
-- visible between two snapshots of its own (ddns_changes_since()).
-- ddns_changes_prune() deletes rows older than a few minutes and raises
-- ddns_change_horizon.pruned, so that a reader whose previous snapshot is
-- older than that knows it missed some and drops what it cached.

CREATE TABLE ddns_changes (
    xid         xid8 NOT NULL DEFAULT pg_current_xact_id(),
    device_id   text NOT NULL
);
CREATE INDEX ddns_changes_xid_idx ON ddns_changes (xid);

-- rows with xid below pruned may have been deleted
CREATE TABLE ddns_change_horizon (
    one         boolean PRIMARY KEY DEFAULT true CHECK (one),
    pruned      xid8 NOT NULL DEFAULT '0'
);
INSERT INTO ddns_change_horizon DEFAULT VALUES;

-- (when, the oldest transaction still running then): rows of transactions
-- below oldest were all committed before at
CREATE TABLE ddns_change_marks (
    at          timestamptz PRIMARY KEY,
    oldest      xid8 NOT NULL
);

-- The trigger functions (also in functions/25_changes.sql, which replaces
-- them on every run).
CREATE FUNCTION ddns_changes_device() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ddns_changes (device_id) VALUES (OLD.device_id);
    RETURN NULL;
END $$;
CREATE FUNCTION ddns_changes_name() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ddns_changes (device_id) VALUES (OLD.device_id);
    RETURN NULL;
END $$;
CREATE FUNCTION ddns_changes_names_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RETURN NULL;
END $$;

-- the columns a quiet answer reads (20_update.sql), and last_change, which
-- every change of a name by ddns_apply_batch() sets (so that its names need
-- no row of their own); last_seen, last_source and seen_day
-- (ddns_record_seen()) are not among them
CREATE TRIGGER devices_changes_update AFTER UPDATE ON devices FOR EACH ROW
    WHEN ((OLD.kid, OLD.generation, OLD.status, OLD.last_ts, OLD.user_agent, OLD.firmware,
           OLD.last_result, OLD.fail_count, OLD.dyndns2, OLD.last_change)
          IS DISTINCT FROM
          (NEW.kid, NEW.generation, NEW.status, NEW.last_ts, NEW.user_agent, NEW.firmware,
           NEW.last_result, NEW.fail_count, NEW.dyndns2, NEW.last_change))
    EXECUTE FUNCTION ddns_changes_device();
CREATE TRIGGER devices_changes_delete AFTER DELETE ON devices FOR EACH ROW
    EXECUTE FUNCTION ddns_changes_device();
CREATE TRIGGER names_changes_update AFTER UPDATE ON names FOR EACH ROW
    WHEN ((OLD.device_id, OLD.label, OLD.zone, OLD.ipv4, OLD.ipv6)
          IS DISTINCT FROM (NEW.device_id, NEW.label, NEW.zone, NEW.ipv4, NEW.ipv6))
    EXECUTE FUNCTION ddns_changes_name();
CREATE TRIGGER names_changes_delete AFTER DELETE ON names FOR EACH ROW
    EXECUTE FUNCTION ddns_changes_name();
CREATE TRIGGER names_changes_insert AFTER INSERT ON names
    REFERENCING NEW TABLE AS changes_new FOR EACH STATEMENT
    EXECUTE FUNCTION ddns_changes_names_added();
