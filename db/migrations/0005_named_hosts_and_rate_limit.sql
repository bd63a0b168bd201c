-- 0005: one database call for every kind of update request: the native
-- signed update (docs/PROTOCOL.md section 4) and the dyndns2 update
-- (section 10), which names its hosts, may take a device offline and has no
-- replay token; and the per-device minimum interval between accepted
-- changes (section 13), decided here under the device's row lock so that it
-- holds across any number of gateways.
--
-- ddns_apply_update() of 0003 stays as it was, for gateways of the previous
-- version during a rolling upgrade; it neither reads nor writes
-- devices.last_change.

-- When an accepted request last changed a record of the device (NULL: never
-- since this migration). Requests answered nochg do not set it.
ALTER TABLE devices ADD COLUMN last_change timestamptz;

-- One update request, atomically. Parameters:
--   p_device, p_kid   the authenticated device and the key id it used; a
--                     device registered under another kid is 'unknown'
--   p_ts              the request's timestamp for the replay rule, or NULL
--                     (dyndns2: no replay token; the rule is skipped and
--                     last_ts is kept)
--   p_ipv4, p_ipv6    the addresses to record (NULL: that family unchanged)
--   p_source          the connection's address, for history and last_source
--   p_fqdns           the names the request is about, in request order
--                     (lowercase, no trailing dot), or NULL for every name of
--                     the device
--   p_offline         true: remove the A and AAAA records of those names
--   p_min_interval    seconds that must pass after the device's last change
--                     before another change is accepted (0: no limit)
--
-- Returns one row per name, in order (ord 1, 2, ...; for p_fqdns the index
-- in the array), with result
--   'good'       the name's records changed
--   'nochg'      they were already so
--   'ratelimit'  they would change, but the device changed a record less
--                than p_min_interval seconds ago; retry_after says how many
--                seconds remain. Nothing of the request is applied then.
--   'nohost'     no such name
--   'foreign'    the name belongs to another device
-- and ipv4/ipv6 the addresses now recorded for the families the request
-- named (NULL when offline). Or exactly one row with ord and fqdn NULL:
--   'unknown'    no such device, or registered under another kid
--   'disabled'   the device is revoked
--   'replay'     p_ts is not greater than the last accepted one
--   'nohost'     p_fqdns is NULL and the device has no name
--
-- A request that is refused for the rate limit still consumes its p_ts
-- (last_ts = p_ts), so that it cannot be replayed once the interval has
-- passed; the device signs its retry anew.
CREATE FUNCTION ddns_apply_request(p_device text, p_kid text, p_ts bigint,
                                   p_ipv4 inet, p_ipv6 inet, p_source inet,
                                   p_fqdns text[], p_offline boolean,
                                   p_min_interval integer)
RETURNS TABLE (ord integer, fqdn text, result text, ipv4 inet, ipv6 inet,
               retry_after integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    d        devices%ROWTYPE;
    n        names%ROWTYPE;
    k        integer;
    nt       integer;
    dot      integer;
    t_id     bigint[] := '{}';      -- per target: name_id of an own name, or NULL
    t_kind   text[] := '{}';        -- per target: 'own', 'nohost', 'foreign'
    t_fqdn   text[] := '{}';
    t_chg    boolean[] := '{}';     -- per own target: its records would change
    changes  boolean := false;
    limited  boolean := false;
    wait_s   integer;
    until_at timestamptz;
BEGIN
    SELECT * INTO d FROM devices WHERE device_id = p_device FOR UPDATE;
    IF NOT FOUND OR d.kid IS DISTINCT FROM p_kid THEN
        result := 'unknown';
        RETURN NEXT;
        RETURN;
    END IF;
    IF d.status <> 'active' THEN
        result := 'disabled';
        RETURN NEXT;
        RETURN;
    END IF;
    IF p_ts IS NOT NULL AND p_ts <= d.last_ts THEN
        result := 'replay';
        RETURN NEXT;
        RETURN;
    END IF;

    -- The targets. The device's names are locked in name_id order, the one
    -- order every request uses.
    IF p_fqdns IS NULL THEN
        FOR n IN SELECT * FROM names WHERE device_id = p_device ORDER BY name_id FOR UPDATE LOOP
            t_id := t_id || n.name_id;
            t_kind := t_kind || 'own'::text;
            t_fqdn := t_fqdn || (n.label || '.' || n.zone);
        END LOOP;
    ELSE
        PERFORM 1 FROM names WHERE device_id = p_device ORDER BY name_id FOR UPDATE;
        FOR k IN 1 .. coalesce(array_length(p_fqdns, 1), 0) LOOP
            dot := strpos(p_fqdns[k], '.');
            SELECT * INTO n FROM names
                WHERE dot > 1 AND label = left(p_fqdns[k], dot - 1)
                  AND zone = substr(p_fqdns[k], dot + 1);
            t_fqdn := t_fqdn || p_fqdns[k];
            IF NOT FOUND THEN
                t_id := t_id || NULL::bigint;
                t_kind := t_kind || 'nohost'::text;
            ELSIF n.device_id <> p_device THEN
                t_id := t_id || NULL::bigint;
                t_kind := t_kind || 'foreign'::text;
            ELSE
                t_id := t_id || n.name_id;
                t_kind := t_kind || 'own'::text;
            END IF;
        END LOOP;
    END IF;
    nt := coalesce(array_length(t_id, 1), 0);
    IF nt = 0 THEN
        result := 'nohost';
        RETURN NEXT;
        RETURN;
    END IF;

    -- What would change.
    FOR k IN 1 .. nt LOOP
        t_chg := t_chg || false;
        CONTINUE WHEN t_kind[k] <> 'own';
        SELECT * INTO n FROM names WHERE name_id = t_id[k];
        IF p_offline THEN
            t_chg[k] := n.ipv4 IS NOT NULL OR n.ipv6 IS NOT NULL;
        ELSE
            t_chg[k] := (p_ipv4 IS NOT NULL AND n.ipv4 IS DISTINCT FROM p_ipv4)
                     OR (p_ipv6 IS NOT NULL AND n.ipv6 IS DISTINCT FROM p_ipv6);
        END IF;
        changes := changes OR t_chg[k];
    END LOOP;

    -- The rate limit: only a request that changes something is limited.
    IF changes AND p_min_interval > 0 AND d.last_change IS NOT NULL THEN
        until_at := d.last_change + make_interval(secs => p_min_interval);
        IF until_at > now() THEN
            limited := true;
            wait_s := greatest(1, ceil(extract(epoch FROM until_at - now()))::integer);
        END IF;
    END IF;

    UPDATE devices SET last_ts = coalesce(p_ts, last_ts), last_seen = now(),
                       last_source = p_source,
                       last_change = CASE WHEN changes AND NOT limited THEN now()
                                          ELSE last_change END
        WHERE device_id = p_device;

    FOR k IN 1 .. nt LOOP
        ord := k;
        fqdn := t_fqdn[k];
        ipv4 := NULL;
        ipv6 := NULL;
        retry_after := NULL;
        IF t_kind[k] <> 'own' THEN
            result := t_kind[k];
            RETURN NEXT;
            CONTINUE;
        END IF;
        IF NOT p_offline THEN
            ipv4 := p_ipv4;
            ipv6 := p_ipv6;
        END IF;
        IF NOT t_chg[k] THEN
            result := 'nochg';
        ELSIF limited THEN
            result := 'ratelimit';
            retry_after := wait_s;
        ELSE
            SELECT * INTO n FROM names WHERE name_id = t_id[k];
            IF p_offline THEN
                IF n.ipv4 IS NOT NULL THEN
                    INSERT INTO history (device_id, fqdn, rrtype, old_address, new_address, source)
                        VALUES (p_device, t_fqdn[k], 'A', n.ipv4, NULL, p_source);
                    INSERT INTO dns_outbox (zone, fqdn, rrtype, address, ttl)
                        VALUES (n.zone, t_fqdn[k], 'A', NULL, n.ttl);
                END IF;
                IF n.ipv6 IS NOT NULL THEN
                    INSERT INTO history (device_id, fqdn, rrtype, old_address, new_address, source)
                        VALUES (p_device, t_fqdn[k], 'AAAA', n.ipv6, NULL, p_source);
                    INSERT INTO dns_outbox (zone, fqdn, rrtype, address, ttl)
                        VALUES (n.zone, t_fqdn[k], 'AAAA', NULL, n.ttl);
                END IF;
                UPDATE names SET ipv4 = NULL, ipv6 = NULL, updated_at = now()
                    WHERE name_id = t_id[k];
            ELSE
                IF p_ipv4 IS NOT NULL AND n.ipv4 IS DISTINCT FROM p_ipv4 THEN
                    INSERT INTO history (device_id, fqdn, rrtype, old_address, new_address, source)
                        VALUES (p_device, t_fqdn[k], 'A', n.ipv4, p_ipv4, p_source);
                    INSERT INTO dns_outbox (zone, fqdn, rrtype, address, ttl)
                        VALUES (n.zone, t_fqdn[k], 'A', p_ipv4, n.ttl);
                END IF;
                IF p_ipv6 IS NOT NULL AND n.ipv6 IS DISTINCT FROM p_ipv6 THEN
                    INSERT INTO history (device_id, fqdn, rrtype, old_address, new_address, source)
                        VALUES (p_device, t_fqdn[k], 'AAAA', n.ipv6, p_ipv6, p_source);
                    INSERT INTO dns_outbox (zone, fqdn, rrtype, address, ttl)
                        VALUES (n.zone, t_fqdn[k], 'AAAA', p_ipv6, n.ttl);
                END IF;
                UPDATE names SET ipv4 = coalesce(p_ipv4, names.ipv4),
                                 ipv6 = coalesce(p_ipv6, names.ipv6),
                                 updated_at = now()
                    WHERE name_id = t_id[k];
            END IF;
            result := 'good';
        END IF;
        RETURN NEXT;
    END LOOP;
    IF changes AND NOT limited THEN
        PERFORM pg_notify('ddns_outbox', '');
    END IF;
END $$;
