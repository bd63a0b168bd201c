-- 0007: cheaper commits for the two most frequent kinds of request.
--
-- 1. A request that changes no record (nochg, the common keep-alive; also
--    ratelimit) commits without waiting for its WAL to reach disk
--    (synchronous_commit = off for that transaction). What it writes is the
--    replay marker (last_ts) and last_seen/last_source. This is safe:
--      * an answer good is still durable before it is sent, because every
--        transaction that changes a record keeps synchronous_commit on;
--      * PostgreSQL writes the WAL in order, so that durable commit also
--        makes every earlier lazy commit durable;
--      * a crash of the database server can lose at most the last moments
--        of lazy commits (about 3 x wal_writer_delay). Losing a replay
--        marker lets that request be replayed once, but it changed nothing,
--        and any later change has made its marker durable and newer, so a
--        replay can again only change nothing.
--    The function must therefore run in a transaction of its own (as the
--    gateway calls it: one autocommit statement).
--
-- 2. The caller may take over the NOTIFY ddns_outbox that wakes the DNS
--    publishers (p_notify false). PostgreSQL serialises the commits of all
--    transactions that issued a NOTIFY, WAL flush included, which capped
--    the rate of changes at one flush at a time; the gateway instead sends
--    one NOTIFY after its changes committed, coalescing those that commit
--    while one is on its way.
--
-- The nine-argument function of 0005 stays for gateways of earlier
-- versions (it notifies, as before). The eleven-argument form of 0006 is
-- the gateway's (it came in the same release): from here on it leaves the
-- NOTIFY to its caller.

-- Parameters, rows and rules as in 0005, plus p_notify: true to NOTIFY
-- ddns_outbox in the transaction when a record changed, false when the
-- caller does it after the commit.
CREATE FUNCTION ddns_apply_request(p_device text, p_kid text, p_ts bigint,
                                   p_ipv4 inet, p_ipv6 inet, p_source inet,
                                   p_fqdns text[], p_offline boolean,
                                   p_min_interval integer, p_notify boolean)
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
        IF p_notify THEN
            PERFORM pg_notify('ddns_outbox', '');
        END IF;
    ELSE
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
END $$;

CREATE OR REPLACE FUNCTION ddns_apply_request(p_device text, p_kid text, p_ts bigint,
                                              p_ipv4 inet, p_ipv6 inet, p_source inet,
                                              p_fqdns text[], p_offline boolean,
                                              p_min_interval integer)
RETURNS TABLE (ord integer, fqdn text, result text, ipv4 inet, ipv6 inet,
               retry_after integer)
LANGUAGE sql AS $$
    SELECT * FROM ddns_apply_request(p_device, p_kid, p_ts, p_ipv4, p_ipv6, p_source,
                                     p_fqdns, p_offline, p_min_interval, true)
$$;

-- 0006's gateway form, now over the function above without NOTIFY.
CREATE OR REPLACE FUNCTION ddns_apply_request(p_device text, p_kid text, p_ts bigint,
                                   p_ipv4 inet, p_ipv6 inet, p_source inet,
                                   p_fqdns text[], p_offline boolean,
                                   p_min_interval integer,
                                   p_agent text, p_firmware text)
RETURNS TABLE (ord integer, fqdn text, result text, ipv4 inet, ipv6 inet,
               retry_after integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    summary text;
    bad     text;
    anygood boolean := false;
    ok      boolean;
BEGIN
    FOR ord, fqdn, result, ipv4, ipv6, retry_after IN
        SELECT * FROM ddns_apply_request(p_device, p_kid, p_ts, p_ipv4, p_ipv6, p_source,
                                         p_fqdns, p_offline, p_min_interval, false) LOOP
        -- the device's answer: the first refusal, else good if any, else nochg
        IF result = 'good' THEN
            anygood := true;
        ELSIF result <> 'nochg' AND bad IS NULL THEN
            bad := CASE WHEN result = 'unknown' THEN 'badauth' ELSE result END;
        END IF;
        RETURN NEXT;
    END LOOP;
    summary := coalesce(bad, CASE WHEN anygood THEN 'good' ELSE 'nochg' END);
    ok := summary IN ('good', 'nochg');
    UPDATE devices d
        SET user_agent = left(p_agent, 200),
            firmware = coalesce(p_firmware, d.firmware),
            last_result = summary,
            last_result_at = now(),
            fail_count = CASE WHEN ok THEN 0 ELSE d.fail_count + 1 END,
            seen_day = CASE WHEN summary = 'badauth' THEN d.seen_day ELSE current_date END
        WHERE d.device_id = p_device
          AND (d.user_agent IS DISTINCT FROM left(p_agent, 200)
               OR (summary <> 'badauth' AND d.seen_day <> current_date)
               OR (p_firmware IS NOT NULL AND d.firmware IS DISTINCT FROM p_firmware)
               OR d.last_result IS DISTINCT FROM summary
               OR NOT ok);
END $$;
