-- 0001: devices, names with their current addresses, change history, DNS outbox.
-- No secret of any kind is stored here: device secrets are re-derived by the
-- gateway from the device id and the master key named by devices.kid.

CREATE TABLE devices (
    device_id   text PRIMARY KEY
                CHECK (device_id ~ '^[0-9a-f]{12}$'),
    kid         text NOT NULL CHECK (kid ~ '^[a-z0-9]{1,16}$'),
    status      text NOT NULL DEFAULT 'active'
                CHECK (status IN ('active', 'revoked')),
    serial      text,
    model       text,
    -- replay rule (docs/PROTOCOL.md section 5): ts of the last accepted request
    last_ts     bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz,
    last_source inet
);

CREATE TABLE names (
    name_id     bigserial PRIMARY KEY,
    device_id   text NOT NULL REFERENCES devices (device_id),
    label       text NOT NULL
                CHECK (label ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    zone        text NOT NULL
                CHECK (zone ~ '^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    ipv4        inet CHECK (family(ipv4) = 4 AND masklen(ipv4) = 32),
    ipv6        inet CHECK (family(ipv6) = 6 AND masklen(ipv6) = 128),
    ttl         integer CHECK (ttl BETWEEN 1 AND 86400),
    updated_at  timestamptz,
    UNIQUE (label, zone)
);
CREATE INDEX names_device_idx ON names (device_id);

-- Append-only: one row per record change.
CREATE TABLE history (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    device_id   text NOT NULL REFERENCES devices (device_id),
    fqdn        text NOT NULL,
    rrtype      text NOT NULL CHECK (rrtype IN ('A', 'AAAA')),
    old_address inet,
    new_address inet,
    source      inet
);
CREATE INDEX history_device_idx ON history (device_id, at);

CREATE FUNCTION history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'history is append-only';
END $$;
CREATE TRIGGER history_no_update BEFORE UPDATE OR DELETE ON history
    FOR EACH STATEMENT EXECUTE FUNCTION history_append_only();

-- DNS changes waiting to be confirmed by the zone's primary server.
-- address NULL means: delete the RRset. ttl NULL means: the zone's default.
CREATE TABLE dns_outbox (
    id          bigserial PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    zone        text NOT NULL,
    fqdn        text NOT NULL,
    rrtype      text NOT NULL CHECK (rrtype IN ('A', 'AAAA')),
    address     inet,
    ttl         integer,
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text
);
CREATE INDEX dns_outbox_zone_idx ON dns_outbox (zone, id);

-- One accepted-or-refused update, atomically (docs/PROTOCOL.md sections 4.4, 5).
-- Returns result ('good', 'nochg', 'unknown', 'disabled', 'replay') and the
-- addresses now recorded for the families the request named.
CREATE FUNCTION ddns_apply_update(p_device text, p_ts bigint,
                                  p_ipv4 inet, p_ipv6 inet, p_source inet,
                                  OUT result text, OUT ipv4 inet, OUT ipv6 inet)
LANGUAGE plpgsql AS $$
DECLARE
    d       devices%ROWTYPE;
    n       names%ROWTYPE;
    changed boolean := false;
BEGIN
    SELECT * INTO d FROM devices WHERE device_id = p_device FOR UPDATE;
    IF NOT FOUND THEN
        result := 'unknown';
        RETURN;
    END IF;
    IF d.status <> 'active' THEN
        result := 'disabled';
        RETURN;
    END IF;
    IF p_ts <= d.last_ts THEN
        result := 'replay';
        RETURN;
    END IF;
    UPDATE devices SET last_ts = p_ts, last_seen = now(), last_source = p_source
        WHERE device_id = p_device;
    FOR n IN SELECT * FROM names WHERE device_id = p_device ORDER BY name_id FOR UPDATE LOOP
        IF p_ipv4 IS NOT NULL AND n.ipv4 IS DISTINCT FROM p_ipv4 THEN
            INSERT INTO history (device_id, fqdn, rrtype, old_address, new_address, source)
                VALUES (p_device, n.label || '.' || n.zone, 'A', n.ipv4, p_ipv4, p_source);
            INSERT INTO dns_outbox (zone, fqdn, rrtype, address, ttl)
                VALUES (n.zone, n.label || '.' || n.zone, 'A', p_ipv4, n.ttl);
            changed := true;
        END IF;
        IF p_ipv6 IS NOT NULL AND n.ipv6 IS DISTINCT FROM p_ipv6 THEN
            INSERT INTO history (device_id, fqdn, rrtype, old_address, new_address, source)
                VALUES (p_device, n.label || '.' || n.zone, 'AAAA', n.ipv6, p_ipv6, p_source);
            INSERT INTO dns_outbox (zone, fqdn, rrtype, address, ttl)
                VALUES (n.zone, n.label || '.' || n.zone, 'AAAA', p_ipv6, n.ttl);
            changed := true;
        END IF;
    END LOOP;
    IF changed THEN
        UPDATE names SET ipv4 = COALESCE(p_ipv4, names.ipv4),
                         ipv6 = COALESCE(p_ipv6, names.ipv6),
                         updated_at = now()
            WHERE device_id = p_device;
        PERFORM pg_notify('ddns_outbox', '');
        result := 'good';
    ELSE
        result := 'nochg';
    END IF;
    ipv4 := p_ipv4;
    ipv6 := p_ipv6;
END $$;
