-- The admin API's writing functions (docs/ADMIN-API.md). Every function
-- below is one transaction with its admin_audit row and returns (status,
-- body): the HTTP status and the JSON answer.

CREATE OR REPLACE FUNCTION admin_audit_add(p_token bigint, p_actor text, p_source text,
                                           p_action text, p_device text,
                                           p_detail jsonb) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO admin_audit (token_id, actor, action, device_id, detail, source)
        VALUES (p_token, p_actor, p_action, p_device, coalesce(p_detail, '{}'), p_source)
$$;

-- Queues the device's current records again (after a TTL change, or on
-- demand); returns the number of records queued.
CREATE OR REPLACE FUNCTION admin_queue_records(p_device text) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    INSERT INTO dns_outbox (zone, fqdn, rrtype, address, ttl)
        SELECT zone, label || '.' || zone, t.rrtype, t.addr, ttl
        FROM names, LATERAL (VALUES ('A', ipv4), ('AAAA', ipv6)) t(rrtype, addr)
        WHERE device_id = p_device AND t.addr IS NOT NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        PERFORM pg_notify('ddns_outbox', '');
    END IF;
    RETURN n;
END $$;

CREATE OR REPLACE FUNCTION admin_set_status(p_token bigint, p_actor text, p_source text,
                                            p_device text, p_revoke boolean, OUT status integer,
                                            OUT body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    cur  text;
    want text := CASE WHEN p_revoke THEN 'revoked' ELSE 'active' END;
    n    integer := 0;
BEGIN
    SELECT d.status INTO cur FROM devices d WHERE d.device_id = p_device FOR UPDATE;
    IF NOT FOUND THEN
        status := 404;
        body := jsonb_build_object('error', 'no such device', 'field', 'device_id');
        RETURN;
    END IF;
    IF cur <> want THEN
        UPDATE devices SET status = want WHERE device_id = p_device;
        IF p_revoke THEN
            INSERT INTO history (device_id, fqdn, rrtype, old_address, new_address)
                SELECT device_id, label || '.' || zone, t.rrtype, t.addr, NULL
                FROM names, LATERAL (VALUES ('A', ipv4), ('AAAA', ipv6)) t(rrtype, addr)
                WHERE device_id = p_device AND t.addr IS NOT NULL;
            INSERT INTO dns_outbox (zone, fqdn, rrtype, address, ttl)
                SELECT zone, label || '.' || zone, t.rrtype, NULL, ttl
                FROM names, LATERAL (VALUES ('A', ipv4), ('AAAA', ipv6)) t(rrtype, addr)
                WHERE device_id = p_device AND t.addr IS NOT NULL;
            GET DIAGNOSTICS n = ROW_COUNT;
            UPDATE names SET ipv4 = NULL, ipv6 = NULL, updated_at = now()
                WHERE device_id = p_device AND (ipv4 IS NOT NULL OR ipv6 IS NOT NULL);
            IF n > 0 THEN
                PERFORM pg_notify('ddns_outbox', '');
            END IF;
        END IF;
    END IF;
    PERFORM admin_audit_add(p_token, p_actor, p_source,
                            CASE WHEN p_revoke THEN 'revoke' ELSE 'restore' END, p_device,
                            jsonb_build_object('previous_status', cur, 'records_removed', n));
    status := 200;
    body := jsonb_build_object('device_id', p_device, 'status', want,
                               'previous_status', cur, 'changed', cur <> want,
                               'records_removed', n);
END $$;

CREATE OR REPLACE FUNCTION admin_republish(p_token bigint, p_actor text, p_source text,
                                           p_device text, OUT status integer, OUT body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    PERFORM 1 FROM devices WHERE device_id = p_device FOR UPDATE;
    IF NOT FOUND THEN
        status := 404;
        body := jsonb_build_object('error', 'no such device', 'field', 'device_id');
        RETURN;
    END IF;
    PERFORM 1 FROM names WHERE device_id = p_device ORDER BY name_id FOR UPDATE;
    n := admin_queue_records(p_device);
    PERFORM admin_audit_add(p_token, p_actor, p_source, 'republish', p_device,
                            jsonb_build_object('records', n));
    status := 200;
    body := jsonb_build_object('device_id', p_device, 'records_queued', n);
END $$;

CREATE OR REPLACE FUNCTION admin_set_ttl(p_token bigint, p_actor text, p_source text,
                                         p_device text, p_ttl integer, OUT status integer,
                                         OUT body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    PERFORM 1 FROM devices WHERE device_id = p_device FOR UPDATE;
    IF NOT FOUND THEN
        status := 404;
        body := jsonb_build_object('error', 'no such device', 'field', 'device_id');
        RETURN;
    END IF;
    PERFORM 1 FROM names WHERE device_id = p_device ORDER BY name_id FOR UPDATE;
    UPDATE names SET ttl = p_ttl WHERE device_id = p_device;
    n := admin_queue_records(p_device);
    PERFORM admin_audit_add(p_token, p_actor, p_source, 'ttl', p_device,
                            jsonb_build_object('ttl', p_ttl, 'records', n));
    status := 200;
    body := jsonb_build_object('device_id', p_device, 'ttl', p_ttl, 'records_queued', n);
END $$;

-- Adds a name (p_old NULL) or renames p_old ("label.zone") to p_label.p_zone.
-- The new name gets the device's current addresses (of its first name) and
-- is published; a renamed name's old records are deleted.
CREATE OR REPLACE FUNCTION admin_name(p_token bigint, p_actor text, p_source text, p_device text,
                                      p_old text, p_label text, p_zone text, OUT status integer,
                                      OUT body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    n      names%ROWTYPE;
    first  names%ROWTYPE;
    owner  text;
    st     text;
    dot    integer;
BEGIN
    SELECT d.status INTO st FROM devices d WHERE d.device_id = p_device FOR UPDATE;
    IF NOT FOUND THEN
        status := 404;
        body := jsonb_build_object('error', 'no such device', 'field', 'device_id');
        RETURN;
    END IF;
    PERFORM 1 FROM names WHERE device_id = p_device ORDER BY name_id FOR UPDATE;
    IF p_zone IS NULL THEN
        -- a bare label: the zone of the device's first name
        SELECT zone INTO p_zone FROM names WHERE device_id = p_device ORDER BY name_id LIMIT 1;
        IF NOT FOUND THEN
            status := 400;
            body := jsonb_build_object('error', 'the device has no name yet: give the new name '
                                       || 'with its zone (label.zone)', 'field', 'name');
            RETURN;
        END IF;
    END IF;
    IF p_old IS NOT NULL THEN
        dot := strpos(p_old, '.');
        SELECT * INTO n FROM names
            WHERE device_id = p_device AND dot > 1 AND label = left(p_old, dot - 1)
              AND zone = substr(p_old, dot + 1);
        IF NOT FOUND THEN
            status := 404;
            body := jsonb_build_object('error', 'the device has no name ' || p_old,
                                       'field', 'name');
            RETURN;
        END IF;
    END IF;
    SELECT device_id INTO owner FROM names WHERE label = p_label AND zone = p_zone;
    IF FOUND THEN
        IF owner = p_device AND p_old IS NOT NULL AND n.label = p_label AND n.zone = p_zone THEN
            status := 200;
            body := jsonb_build_object('device_id', p_device, 'name', p_label || '.' || p_zone,
                                       'changed', false);
            RETURN;
        END IF;
        status := 409;
        body := jsonb_build_object('error', 'the name ' || p_label || '.' || p_zone
                                   || CASE WHEN owner = p_device THEN ' is already this device''s'
                                           ELSE ' belongs to another device' END,
                                   'field', 'name');
        RETURN;
    END IF;
    IF p_old IS NULL THEN
        SELECT * INTO first FROM names WHERE device_id = p_device ORDER BY name_id LIMIT 1;
        INSERT INTO names (device_id, label, zone, ipv4, ipv6, ttl, updated_at)
            VALUES (p_device, p_label, p_zone, first.ipv4, first.ipv6, first.ttl, now())
            RETURNING * INTO n;
    ELSE
        INSERT INTO dns_outbox (zone, fqdn, rrtype, address, ttl)
            SELECT n.zone, n.label || '.' || n.zone, t.rrtype, NULL, n.ttl
            FROM (VALUES ('A', n.ipv4), ('AAAA', n.ipv6)) t(rrtype, addr)
            WHERE t.addr IS NOT NULL;
        INSERT INTO history (device_id, fqdn, rrtype, old_address, new_address, source)
            SELECT p_device, n.label || '.' || n.zone, t.rrtype, t.addr, NULL, NULL
            FROM (VALUES ('A', n.ipv4), ('AAAA', n.ipv6)) t(rrtype, addr)
            WHERE t.addr IS NOT NULL;
        UPDATE names SET label = p_label, zone = p_zone, updated_at = now()
            WHERE name_id = n.name_id RETURNING * INTO n;
    END IF;
    INSERT INTO dns_outbox (zone, fqdn, rrtype, address, ttl)
        SELECT n.zone, n.label || '.' || n.zone, t.rrtype, t.addr, n.ttl
        FROM (VALUES ('A', n.ipv4), ('AAAA', n.ipv6)) t(rrtype, addr)
        WHERE t.addr IS NOT NULL;
    INSERT INTO history (device_id, fqdn, rrtype, old_address, new_address, source)
        SELECT p_device, n.label || '.' || n.zone, t.rrtype, NULL, t.addr, NULL
        FROM (VALUES ('A', n.ipv4), ('AAAA', n.ipv6)) t(rrtype, addr)
        WHERE t.addr IS NOT NULL;
    PERFORM pg_notify('ddns_outbox', '');
    PERFORM admin_audit_add(p_token, p_actor, p_source,
                            CASE WHEN p_old IS NULL THEN 'name-add' ELSE 'rename' END, p_device,
                            jsonb_strip_nulls(jsonb_build_object('name', p_label || '.' || p_zone,
                                                                 'previous_name', p_old)));
    status := CASE WHEN p_old IS NULL THEN 201 ELSE 200 END;
    body := jsonb_strip_nulls(jsonb_build_object('device_id', p_device,
                                                 'name', p_label || '.' || p_zone,
                                                 'previous_name', p_old, 'changed', true));
END $$;

-- admin_name, after the gateway asked each zone's primary whether the new
-- label already holds records there (cmn_label): p_in_zone lists the zones
-- where it does, p_unanswered those whose primary gave no answer. A label
-- that holds records in the name's zone without being a device's name
-- (the zone's own hosts: name servers, web, mail) is refused with 409; an
-- unanswered question about that zone with 503. Otherwise admin_name.
CREATE OR REPLACE FUNCTION admin_name_checked(p_token bigint, p_actor text, p_source text,
                                              p_device text, p_old text, p_label text,
                                              p_zone text, p_in_zone text[],
                                              p_unanswered text[], OUT status integer,
                                              OUT body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    z text := p_zone;
BEGIN
    IF z IS NULL THEN
        SELECT zone INTO z FROM names WHERE device_id = p_device ORDER BY name_id LIMIT 1;
    END IF;
    IF z IS NOT NULL AND NOT EXISTS (SELECT 1 FROM names WHERE label = p_label AND zone = z) THEN
        IF z = ANY (p_in_zone) THEN
            status := 409;
            body := jsonb_build_object('error', 'the name ' || p_label || '.' || z
                                       || ' is reserved: it already holds records in the zone '
                                       || 'that no device published', 'field', 'name');
            RETURN;
        END IF;
        IF z = ANY (p_unanswered) THEN
            status := 503;
            body := jsonb_build_object('error', 'cannot tell whether ' || p_label || '.' || z
                                       || ' already holds records: the zone''s primary did '
                                       || 'not answer; try again', 'field', 'name');
            RETURN;
        END IF;
    END IF;
    SELECT a.status, a.body INTO status, body
        FROM admin_name(p_token, p_actor, p_source, p_device, p_old, p_label, p_zone) a;
END $$;

-- Reissues the device under key id p_kid, like 'ddns-provision reissue'
-- without a new name: its generation goes up by one, also when the key id
-- stays, so that the secret it had (under any key id) is refused from the
-- commit on and never comes back (docs/PROTOCOL.md section 3).
CREATE OR REPLACE FUNCTION admin_reissue(p_token bigint, p_actor text, p_source text,
                                         p_device text, p_kid text, OUT status integer,
                                         OUT body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    old text;
    gen integer;
BEGIN
    SELECT kid, generation INTO old, gen FROM devices WHERE device_id = p_device FOR UPDATE;
    IF NOT FOUND THEN
        status := 404;
        body := jsonb_build_object('error', 'no such device', 'field', 'device_id');
        RETURN;
    END IF;
    IF gen >= 9999999 THEN
        status := 409;
        body := jsonb_build_object('error', 'the device has had its last generation (9999999)',
                                   'field', 'device_id');
        RETURN;
    END IF;
    UPDATE devices SET kid = p_kid, generation = gen + 1 WHERE device_id = p_device;
    PERFORM admin_audit_add(p_token, p_actor, p_source, 'reissue', p_device,
                            jsonb_build_object('kid', p_kid, 'previous_kid', old,
                                               'generation', gen + 1,
                                               'previous_generation', gen));
    status := 200;
    body := jsonb_build_object('device_id', p_device, 'kid', p_kid, 'previous_kid', old,
                               'generation', gen + 1, 'previous_generation', gen,
                               'key_ref', p_kid || '/' || (gen + 1), 'changed', true);
END $$;

-- Lets the device use /nic/update (p_allowed) or not: a device kept off it
-- is answered badauth there, as for a wrong password (docs/PROTOCOL.md
-- section 10); its signed updates are not affected.
CREATE OR REPLACE FUNCTION admin_set_dyndns2(p_token bigint, p_actor text, p_source text,
                                             p_device text, p_allowed boolean,
                                             OUT status integer, OUT body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    cur boolean;
BEGIN
    SELECT dyndns2 INTO cur FROM devices WHERE device_id = p_device FOR UPDATE;
    IF NOT FOUND THEN
        status := 404;
        body := jsonb_build_object('error', 'no such device', 'field', 'device_id');
        RETURN;
    END IF;
    IF cur <> p_allowed THEN
        UPDATE devices SET dyndns2 = p_allowed WHERE device_id = p_device;
    END IF;
    PERFORM admin_audit_add(p_token, p_actor, p_source, 'dyndns2', p_device,
                            jsonb_build_object('allowed', p_allowed, 'previous', cur));
    status := 200;
    body := jsonb_build_object('device_id', p_device, 'dyndns2', p_allowed, 'previous', cur,
                               'changed', cur <> p_allowed);
END $$;

-- Replaces the whole operator policy (PUT /api/v1/policy): blocked
-- models, signed-only models (refused on /nic/update), models whose signed
-- updates must name their address (an address-less one is answered
-- "moved") and minimum versions.
CREATE OR REPLACE FUNCTION admin_policy_set(p_token bigint, p_actor text, p_source text,
                                            p_blocked text[], p_models text[], p_versions text[],
                                            p_signed_only text[], p_address_required text[],
                                            OUT status integer, OUT body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    before jsonb := admin_policy_json();
BEGIN
    PERFORM 1 FROM firmware_policy_state FOR UPDATE;
    DELETE FROM firmware_policy;
    INSERT INTO firmware_policy (model, blocked, signed_only, address_required, min_version)
        SELECT r.model, bool_or(r.blocked), bool_or(r.signed_only), bool_or(r.address_required),
               max(r.version)
        FROM (SELECT lower(x) AS model, true AS blocked, false AS signed_only,
                     false AS address_required, NULL::text AS version FROM unnest(p_blocked) x
              UNION ALL
              SELECT lower(x), false, true, false, NULL FROM unnest(p_signed_only) x
              UNION ALL
              SELECT lower(x), false, false, true, NULL FROM unnest(p_address_required) x
              UNION ALL
              SELECT lower(x), false, false, false, v
                  FROM unnest(p_models, p_versions) u(x, v)) r
        GROUP BY r.model;
    UPDATE firmware_policy_state SET version = version + 1, changed_at = now();
    body := admin_policy_json();
    PERFORM admin_audit_add(p_token, p_actor, p_source, 'policy', NULL,
                            jsonb_build_object('before', before - 'changed_at',
                                               'after', body - 'changed_at'));
    status := 200;
END $$;

-- The forms of the gateways of earlier releases: the one before
-- address-required models keeps the address-required models the policy
-- has, the one before signed-only models keeps those too.
CREATE OR REPLACE FUNCTION admin_policy_set(p_token bigint, p_actor text, p_source text,
                                            p_blocked text[], p_models text[], p_versions text[],
                                            p_signed_only text[],
                                            OUT status integer, OUT body jsonb)
LANGUAGE sql AS $$
    SELECT * FROM admin_policy_set(p_token, p_actor, p_source, p_blocked, p_models, p_versions,
                                   p_signed_only,
                                   ARRAY(SELECT model FROM firmware_policy WHERE address_required))
$$;

CREATE OR REPLACE FUNCTION admin_policy_set(p_token bigint, p_actor text, p_source text,
                                            p_blocked text[], p_models text[], p_versions text[],
                                            OUT status integer, OUT body jsonb)
LANGUAGE sql AS $$
    SELECT * FROM admin_policy_set(p_token, p_actor, p_source, p_blocked, p_models, p_versions,
                                   ARRAY(SELECT model FROM firmware_policy WHERE signed_only))
$$;

-- A token's bounds, whoever writes the row: a token created by a token
-- (parent_id) is created while its creator is valid, is of the creator's
-- scope or below (read < write), and expires no later than it (with no
-- expires given, when it does). A revocation is never undone, and a token's
-- hash, scope and creator never change.
CREATE OR REPLACE FUNCTION admin_tokens_bounded() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    p admin_tokens%ROWTYPE;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.revoked_at IS NOT NULL AND NEW.revoked_at IS DISTINCT FROM OLD.revoked_at THEN
            RAISE EXCEPTION 'admin_tokens: token % is revoked; a revocation is never undone',
                OLD.token_id USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.token_sha256 <> OLD.token_sha256 OR NEW.scope <> OLD.scope
           OR NEW.parent_id IS DISTINCT FROM OLD.parent_id
           OR NEW.created_by <> OLD.created_by THEN
            RAISE EXCEPTION 'admin_tokens: a token''s hash, scope and creator never change'
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    IF NEW.parent_id IS NULL THEN
        RETURN NEW;
    END IF;
    SELECT * INTO p FROM admin_tokens WHERE token_id = NEW.parent_id;
    IF TG_OP = 'INSERT' AND (NOT FOUND OR p.revoked_at IS NOT NULL OR p.expires_at <= now()) THEN
        RAISE EXCEPTION 'admin_tokens: creating token % is not valid', NEW.parent_id
            USING ERRCODE = 'check_violation';
    END IF;
    IF TG_OP = 'INSERT' AND p.scope = 'read' AND NEW.scope <> 'read' THEN
        RAISE EXCEPTION 'admin_tokens: a token of scope % cannot create one of scope %',
            p.scope, NEW.scope USING ERRCODE = 'check_violation';
    END IF;
    IF p.expires_at IS NOT NULL THEN
        IF TG_OP = 'INSERT' AND NEW.expires_at IS NULL THEN
            NEW.expires_at := p.expires_at;
        ELSIF NEW.expires_at IS NULL OR NEW.expires_at > p.expires_at THEN
            RAISE EXCEPTION 'admin_tokens: token % would outlive its creator %, which expires %',
                NEW.token_id, p.token_id, p.expires_at USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    IF TG_OP = 'INSERT' AND p.revoked_at IS NOT NULL THEN
        NEW.revoked_at := p.revoked_at;
    END IF;
    RETURN NEW;
END $$;

-- What happens to a token happens to the tokens it created: revoked with
-- it, expiring no later than it (and so on down, by this trigger again).
CREATE OR REPLACE FUNCTION admin_tokens_cascade() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL THEN
        UPDATE admin_tokens SET revoked_at = NEW.revoked_at
            WHERE parent_id = NEW.token_id AND revoked_at IS NULL;
    END IF;
    IF NEW.expires_at IS NOT NULL AND NEW.expires_at IS DISTINCT FROM OLD.expires_at THEN
        UPDATE admin_tokens SET expires_at = NEW.expires_at
            WHERE parent_id = NEW.token_id
              AND (expires_at IS NULL OR expires_at > NEW.expires_at);
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS admin_tokens_bounded ON admin_tokens;
CREATE TRIGGER admin_tokens_bounded BEFORE INSERT OR UPDATE ON admin_tokens
    FOR EACH ROW EXECUTE FUNCTION admin_tokens_bounded();
DROP TRIGGER IF EXISTS admin_tokens_cascade ON admin_tokens;
CREATE TRIGGER admin_tokens_cascade AFTER UPDATE OF revoked_at, expires_at ON admin_tokens
    FOR EACH ROW EXECUTE FUNCTION admin_tokens_cascade();

-- Creates a token. The only way in for the gateway's role, which may not
-- write admin_tokens itself (SECURITY DEFINER, db/functions/90_roles.sql):
-- with p_token, the new token is bounded by that creating token (see
-- admin_tokens_bounded); without one (ddnsctl token create --db), only a
-- role that may insert the row itself, the owner, may create it.
CREATE OR REPLACE FUNCTION admin_token_add(p_token bigint, p_actor text, p_source text,
                                           p_sha256 text, p_scope text, p_expires timestamptz,
                                           p_comment text, OUT status integer, OUT body jsonb)
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    t admin_tokens%ROWTYPE;
    p admin_tokens%ROWTYPE;
BEGIN
    IF p_expires IS NOT NULL AND p_expires <= now() THEN
        status := 400;
        body := jsonb_build_object('error', 'expires: ' || p_expires || ' has passed',
                                   'field', 'expires');
        RETURN;
    END IF;
    IF p_token IS NULL THEN
        IF NOT has_table_privilege(session_user, 'admin_tokens', 'INSERT') THEN
            RAISE EXCEPTION 'a token without a creating token is created by the database '
                            'owner only' USING ERRCODE = 'insufficient_privilege';
        END IF;
    ELSE
        SELECT * INTO p FROM admin_tokens WHERE token_id = p_token;
        IF NOT FOUND OR p.revoked_at IS NOT NULL OR p.expires_at <= now() THEN
            status := 403;
            body := jsonb_build_object('error', 'the creating token is not valid');
            RETURN;
        END IF;
        IF p.scope = 'read' AND p_scope <> 'read' THEN
            status := 403;
            body := jsonb_build_object('error', 'a token of scope read creates tokens of scope '
                                       'read only', 'field', 'scope');
            RETURN;
        END IF;
        IF p.expires_at IS NOT NULL AND p_expires > p.expires_at THEN
            status := 400;
            body := jsonb_build_object('error', 'expires: ' || p_expires || ' is later than '
                                       || p.expires_at || ', when the creating token expires',
                                       'field', 'expires');
            RETURN;
        END IF;
    END IF;
    INSERT INTO admin_tokens (token_sha256, scope, comment, created_by, expires_at, parent_id)
        VALUES (p_sha256, p_scope, coalesce(p_comment, ''),
                coalesce('token ' || p_token, p_actor), p_expires, p_token)
        RETURNING * INTO t;
    PERFORM admin_audit_add(p_token, p_actor, p_source, 'token-create', NULL,
                            jsonb_build_object('token_id', t.token_id, 'scope', t.scope,
                                               'expires', t.expires_at, 'comment', t.comment));
    status := 201;
    body := jsonb_build_object('token_id', t.token_id, 'scope', t.scope,
                               'expires', t.expires_at, 'comment', t.comment,
                               'created', t.created_at);
END $$;

CREATE OR REPLACE FUNCTION admin_token_revoke(p_token bigint, p_actor text, p_source text,
                                              p_id bigint, OUT status integer, OUT body jsonb)
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    t admin_tokens%ROWTYPE;
BEGIN
    UPDATE admin_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE token_id = p_id
        RETURNING * INTO t;
    IF NOT FOUND THEN
        status := 404;
        body := jsonb_build_object('error', 'no such token', 'field', 'token_id');
        RETURN;
    END IF;
    PERFORM admin_audit_add(p_token, p_actor, p_source, 'token-revoke', NULL,
                            jsonb_build_object('token_id', p_id));
    status := 200;
    body := jsonb_build_object('token_id', p_id, 'revoked', t.revoked_at);
END $$;
