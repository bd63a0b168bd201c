-- The admin API's reading functions (docs/ADMIN-API.md): one JSON answer
-- each; none writes.

-- "3c5ab4f09a21" -> "3C:5A:B4:F0:9A:21"
CREATE OR REPLACE FUNCTION admin_mac(p_id text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT upper(substr(p_id, 1, 2) || ':' || substr(p_id, 3, 2) || ':' || substr(p_id, 5, 2)
                 || ':' || substr(p_id, 7, 2) || ':' || substr(p_id, 9, 2) || ':'
                 || substr(p_id, 11, 2))
$$;

-- The devices whose id ends with p_suffix (1 to 11 hex digits): "3F:9A:21"
-- of "camera 3F:9A:21". A fleet's MACs share few vendor prefixes, so the
-- distinct beginnings of the missing length are read with a skip scan of
-- the primary key (one index probe each) and the candidates looked up by
-- primary key; past 4096 beginnings (a short suffix) the table is scanned.
-- Costs no index of its own, which would slow down registering devices.
CREATE OR REPLACE FUNCTION admin_mac_suffix(p_suffix text) RETURNS SETOF text
LANGUAGE plpgsql STABLE ROWS 10 AS $$
DECLARE
    k      integer := 12 - length(p_suffix);
    heads  text[];
BEGIN
    IF k < 1 OR p_suffix !~ '^[0-9a-f]+$' THEN
        RETURN;
    END IF;
    WITH RECURSIVE h(x) AS (
        (SELECT left(device_id, k) FROM devices ORDER BY device_id LIMIT 1)
        UNION ALL
        SELECT (SELECT left(d.device_id, k) FROM devices d
                WHERE d.device_id > h.x || 'g' ORDER BY d.device_id LIMIT 1)
        FROM h WHERE h.x IS NOT NULL
    )
    SELECT array_agg(x) INTO heads FROM (SELECT x FROM h WHERE x IS NOT NULL LIMIT 4097) t;
    IF coalesce(array_length(heads, 1), 0) <= 4096 THEN
        RETURN QUERY SELECT d.device_id FROM devices d
            WHERE d.device_id = ANY (SELECT x || p_suffix FROM unnest(heads) x);
    ELSE
        RETURN QUERY SELECT d.device_id FROM devices d WHERE right(d.device_id, 12 - k) = p_suffix;
    END IF;
END $$;

-- One device as the list entry of GET /api/v1/devices.
CREATE OR REPLACE FUNCTION admin_device_json(d devices) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'device_id', d.device_id, 'mac', admin_mac(d.device_id), 'serial', d.serial,
        'model', d.model, 'firmware', d.firmware, 'kid', d.kid, 'generation', d.generation,
        'batch', d.batch_id, 'status', d.status, 'dyndns2', d.dyndns2,
        'names', coalesce((SELECT jsonb_agg(n.label || '.' || n.zone ORDER BY n.name_id)
                           FROM names n WHERE n.device_id = d.device_id), '[]'),
        'ipv4', (SELECT host(n.ipv4) FROM names n WHERE n.device_id = d.device_id
                 AND n.ipv4 IS NOT NULL ORDER BY n.name_id LIMIT 1),
        'ipv6', (SELECT host(n.ipv6) FROM names n WHERE n.device_id = d.device_id
                 AND n.ipv6 IS NOT NULL ORDER BY n.name_id LIMIT 1),
        'ttl', (SELECT n.ttl FROM names n WHERE n.device_id = d.device_id
                ORDER BY n.name_id LIMIT 1),
        'first_seen', d.created_at, 'last_seen', d.last_seen,
        'last_source', host(d.last_source),
        'last_result', d.last_result, 'last_result_at', d.last_result_at,
        'fail_count', d.fail_count)
$$;

-- GET /api/v1/devices/{id}: NULL when there is no such device.
CREATE OR REPLACE FUNCTION admin_device_detail(p_device text, p_history integer) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT admin_device_json(d) || jsonb_build_object(
        'user_agent', d.user_agent,
        'history', coalesce((
            SELECT jsonb_agg(jsonb_build_object('at', h.at, 'fqdn', h.fqdn, 'ipv4', h.ipv4,
                                                'ipv6', h.ipv6, 'source', h.source)
                             ORDER BY h.at DESC, h.fqdn)
            FROM (SELECT at, fqdn, host(source) AS source,
                         host(max(new_address) FILTER (WHERE rrtype = 'A')) AS ipv4,
                         host(max(new_address) FILTER (WHERE rrtype = 'AAAA')) AS ipv6
                  FROM history WHERE device_id = d.device_id
                  GROUP BY at, fqdn, source ORDER BY at DESC LIMIT p_history) h), '[]'),
        'actions', coalesce((
            SELECT jsonb_agg(jsonb_build_object('at', a.at, 'actor', a.actor,
                                                'action', a.action, 'detail', a.detail,
                                                'source', a.source)
                             ORDER BY a.at DESC)
            FROM (SELECT at, actor, action, detail, source FROM admin_audit
                  WHERE device_id = d.device_id
                  UNION ALL
                  SELECT created_at, operator, 'provision ' || command,
                         jsonb_strip_nulls(jsonb_build_object('kid', kid,
                             'previous_kid', previous_kid, 'generation', generation,
                             'previous_generation', previous_generation, 'fqdn', fqdn,
                             'previous_fqdn', previous_fqdn)),
                         'ddns-provision'
                  FROM provision_batches WHERE device_id = d.device_id
                  ORDER BY 1 DESC LIMIT p_history) a), '[]'))
    FROM devices d WHERE d.device_id = p_device
$$;

-- GET /api/v1/fleet: the counts from fleet_deltas (no scan of devices),
-- the per-minute counts and the outbox.
CREATE OR REPLACE FUNCTION admin_fleet(p_days integer) RETURNS jsonb LANGUAGE sql STABLE AS $$
    WITH c AS (
        SELECT dim, key, sum(n) AS n FROM fleet_deltas GROUP BY dim, key HAVING sum(n) <> 0
    ), m AS (
        SELECT s.minute, coalesce(sum(u.updates), 0) AS updates,
               coalesce(sum(u.errors), 0) AS errors
        FROM generate_series(date_trunc('minute', now()) - interval '59 minutes',
                             date_trunc('minute', now()), interval '1 minute') s(minute)
        LEFT JOIN update_minutes u ON u.minute = s.minute
        GROUP BY s.minute
    )
    SELECT jsonb_build_object(
        'devices', coalesce((SELECT sum(n) FROM c WHERE dim = 'status'), 0),
        'by_status', coalesce((SELECT jsonb_object_agg(key, n) FROM c WHERE dim = 'status'), '{}'),
        'by_model', coalesce((SELECT jsonb_object_agg(key, n) FROM c WHERE dim = 'model'), '{}'),
        'by_firmware', coalesce((SELECT jsonb_object_agg(key, n) FROM c WHERE dim = 'firmware'),
                                '{}'),
        'by_kid', coalesce((SELECT jsonb_object_agg(key, n) FROM c WHERE dim = 'kid'), '{}'),
        'per_minute', (SELECT jsonb_agg(jsonb_build_object('minute', minute, 'updates', updates,
                                                           'errors', errors) ORDER BY minute)
                       FROM m),
        'outbox', (SELECT jsonb_build_object('depth', count(*), 'oldest_age_s',
                       coalesce(round(EXTRACT(EPOCH FROM now() - min(created_at))::numeric, 3),
                                0))
                   FROM dns_outbox),
        'not_seen', jsonb_build_object('days', p_days, 'count',
                       coalesce((SELECT sum(n) FROM c WHERE dim = 'seen_day'
                                 AND key::date < current_date - p_days), 0)))
$$;

-- GET /api/v1/fleet/failing: the devices with most refusals since their
-- last good answer, and the source addresses with most failed
-- authentications in the last hour or most failing devices last seen there.
CREATE OR REPLACE FUNCTION admin_failing(p_limit integer) RETURNS jsonb LANGUAGE sql STABLE AS $$
    WITH f AS (
        SELECT source, sum(failures) AS failures FROM source_failures
        WHERE minute >= date_trunc('minute', now()) - interval '59 minutes'
        GROUP BY source
    ), d AS (
        SELECT host(last_source) AS source, count(*) AS devices, sum(fail_count) AS refusals
        FROM devices WHERE fail_count > 0 AND last_source IS NOT NULL
        GROUP BY last_source
    ), s AS (
        SELECT coalesce(f.source, d.source) AS source, coalesce(f.failures, 0) AS auth_failures,
               coalesce(d.devices, 0) AS devices, coalesce(d.refusals, 0) AS refusals
        FROM f FULL JOIN d ON d.source = f.source
        ORDER BY coalesce(f.failures, 0) + coalesce(d.refusals, 0) DESC, 1
        LIMIT p_limit
    )
    SELECT jsonb_build_object(
        'devices', coalesce((SELECT jsonb_agg(admin_device_json(d) ORDER BY d.fail_count DESC,
                                              d.device_id)
                             FROM (SELECT * FROM devices WHERE fail_count > 0
                                   ORDER BY fail_count DESC, device_id LIMIT p_limit) d), '[]'),
        'sources', coalesce((SELECT jsonb_agg(jsonb_build_object(
                                 'source', source, 'auth_failures', auth_failures,
                                 'devices', devices, 'failures', auth_failures + refusals)
                                 ORDER BY auth_failures + refusals DESC, source)
                             FROM s), '[]'))
$$;

-- GET /api/v1/policy
CREATE OR REPLACE FUNCTION admin_policy_json() RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'blocked_models', coalesce((SELECT jsonb_agg(model ORDER BY model)
                                    FROM firmware_policy WHERE blocked), '[]'),
        'signed_only_models', coalesce((SELECT jsonb_agg(model ORDER BY model)
                                        FROM firmware_policy WHERE signed_only), '[]'),
        'address_required_models', coalesce((SELECT jsonb_agg(model ORDER BY model)
                                             FROM firmware_policy WHERE address_required),
                                            '[]'),
        'min_firmware', coalesce((SELECT jsonb_object_agg(model, min_version)
                                  FROM firmware_policy WHERE min_version IS NOT NULL), '{}'),
        'version', (SELECT version FROM firmware_policy_state),
        'changed_at', (SELECT changed_at FROM firmware_policy_state))
$$;

CREATE OR REPLACE FUNCTION admin_tokens_json() RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('tokens', coalesce(jsonb_agg(jsonb_build_object(
        'token_id', token_id, 'scope', scope, 'comment', comment, 'created', created_at,
        'created_by', created_by, 'expires', expires_at, 'revoked', revoked_at,
        'state', CASE WHEN revoked_at IS NOT NULL THEN 'revoked'
                      WHEN expires_at <= now() THEN 'expired' ELSE 'valid' END)
        ORDER BY token_id), '[]'))
    FROM admin_tokens
$$;
