-- 0003: an update is accepted only under the key id the device is
-- registered with (devices.kid). 'ddns-provision reissue' moves a device to
-- another key id; from then on a request signed with the secret of the old
-- key id is refused exactly like an unknown device ('unknown' -> badauth),
-- even while the old master key is still loaded for other devices.

DROP FUNCTION ddns_apply_update(text, bigint, inet, inet, inet);

-- One accepted-or-refused update, atomically (docs/PROTOCOL.md sections 4.4, 5).
-- Returns result ('good', 'nochg', 'unknown', 'disabled', 'replay') and the
-- addresses now recorded for the families the request named.
CREATE FUNCTION ddns_apply_update(p_device text, p_kid text, p_ts bigint,
                                  p_ipv4 inet, p_ipv6 inet, p_source inet,
                                  OUT result text, OUT ipv4 inet, OUT ipv6 inet)
LANGUAGE plpgsql AS $$
DECLARE
    d       devices%ROWTYPE;
    n       names%ROWTYPE;
    changed boolean := false;
BEGIN
    SELECT * INTO d FROM devices WHERE device_id = p_device FOR UPDATE;
    IF NOT FOUND OR d.kid IS DISTINCT FROM p_kid THEN
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
