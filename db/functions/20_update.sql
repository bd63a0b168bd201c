-- What an update request does: the native signed update (docs/PROTOCOL.md
-- section 4) and the dyndns2 update (section 10), with the replay rule
-- (section 5) and the per-device minimum interval between accepted changes
-- (section 13), decided under the device's row lock so that they hold
-- across any number of gateways. One definition, ddns_apply_batch(), for
-- any number of requests; ddns_apply_request() is the batch of one.
--
-- The requests of a batch are the gateway's: it collects the update
-- requests that arrive while its database connections are busy and sends
-- them as one statement (one round trip, one parse and plan, one commit and
-- WAL flush when something changed), one array per parameter, element i
-- belonging to request i:
--   p_device, p_kid, p_generation
--                     the authenticated device, the key id and the
--                     generation of the secret it used (docs/PROTOCOL.md
--                     section 3); a device registered under another kid or
--                     another generation is 'unknown' (a reissue raises the
--                     generation, so the old secret is refused from its
--                     commit on)
--   p_ts              the request's timestamp for the replay rule, or NULL
--                     for a dyndns2 request (no replay token; the rule is
--                     skipped and last_ts is kept); a dyndns2 request of a
--                     device whose dyndns2 is false is 'unknown' too
--   p_ipv4, p_ipv6    the addresses to record (NULL: that family unchanged)
--   p_source          the connection's address, for history and last_source
--   p_fqdns           a text[] literal of the names the request is about, in
--                     request order (lowercase, no trailing dot:
--                     '{a.example,b.example}'), or NULL for every name of
--                     the device in name_id order
--   p_offline         true: remove the A and AAAA records of those names
--   p_min_interval    seconds that must pass after the device's last change
--                     before another change is accepted (0: no limit)
--   p_agent           the request's User-Agent (recorded, at most 200
--                     characters)
--   p_firmware        the firmware version read from it, or NULL (kept)
--   p_own             true for a request whose addresses are its own (a
--                     signed request that names them, or a dyndns2
--                     request), false for a signed request that names no
--                     address ("the connection's address", which its
--                     signature does not cover). Such a request may be
--                     answered nochg without a write (see "The poll that
--                     changes nothing" below); a dyndns2 change raises the
--                     replay marker to now + 1 s.
--
-- Returns, for each request (item = its index in the arrays), one row per
-- name (ord 1, 2, ...: the index in its list of names), with result
--   'good'       the name's records changed
--   'nochg'      they were already so (retry_after 0: answered without a
--                write, see "The poll that changes nothing")
--   'ratelimit'  they would change, but the device changed a record less
--                than p_min_interval seconds ago; retry_after says how many
--                seconds remain. Nothing of the request is applied then.
--   'nohost'     no such name
--   'foreign'    the name belongs to another device
-- or exactly one row with ord NULL:
--   'unknown'    no such device, registered under another kid or
--                generation, or a dyndns2 request of a device kept off
--                dyndns2 (devices.dyndns2)
--   'disabled'   the device is revoked
--   'replay'     p_ts is not greater than the last accepted one
--   'nohost'     the request is about no name (p_fqdns NULL and the device
--                has none, or an empty list)
-- The rows of one request are adjacent and in ord order; the requests come
-- in no particular order.
--
-- What an accepted request writes: the replay marker (last_ts = p_ts),
-- last_seen and last_source, also when the rate limit holds it back (so
-- that it cannot be replayed once the interval has passed; the device signs
-- its retry anew); for each name that changes, one history row and one
-- outbox row per family changed and the names row; last_change when a
-- record changed. A name listed twice is changed once.
--
-- The poll that changes nothing: a request with p_own that would only
-- record last_seen and last_source (and its replay marker) is answered
-- nochg read-only, before any lock (the conditions are in the function).
-- Its replay marker is not needed: a copy of it changes nothing while the
-- names hold its addresses, and any later change records a newer marker
-- (docs/PROTOCOL.md section 5.1). last_seen, last_source and seen_day
-- follow through ddns_record_seen().
--
-- What every request of a known device records (refused ones too): its
-- answer (last_result: the first refusal in row order, 'unknown' recorded
-- as 'badauth', else 'good' if any name is good, else 'nochg'), the
-- User-Agent and firmware, fail_count (answers other than good/nochg since
-- the last good/nochg) and seen_day (not for badauth). The row is written
-- for this only when one of these changes (or the answer is a refusal), so
-- that a steady stream of nochg answers costs nothing more.
--
-- Batches and rounds: one statement decides and writes all requests of a
-- round, set-based (data-modifying WITH clauses). A round holds at most one
-- request per device: round 1 the first request of every device of the
-- batch, round 2 the second of those that sent two, and so on, so that the
-- requests of one device run in the order they arrived and see each
-- other's writes, as in separate transactions (a copy of an accepted
-- timestamp is a replay). Requests of different devices do not touch the
-- same rows.
--
-- Locks: every device of the batch is locked first, in device_id order, so
-- that two batches that share devices cannot deadlock with each other, nor
-- with resync (which locks devices in device_id order too); names are
-- locked only after their device, as everywhere.
--
-- Commit mode: a batch in which no request changed a record commits with
-- synchronous_commit = off. What it wrote is replay markers, last_seen and
-- the recorded answers: PostgreSQL writes the WAL in order, so the next
-- durable commit makes it durable too, and a crash of the database server
-- can lose at most its last moments (about 3 x wal_writer_delay); a lost
-- replay marker lets a request that changed nothing be replayed once, to
-- change nothing again. When any request changed a record, the setting in
-- force before the batch is kept, so that every good is durable before it
-- is answered. The batch must therefore run in a transaction of its own
-- (the gateway sends it as one autocommit statement).
--
-- Nothing here issues a NOTIFY: PostgreSQL serialises the commits of all
-- transactions that issued one, WAL flush included. The caller wakes the
-- DNS publishers (NOTIFY ddns_outbox) after the commit; the publishers also
-- poll.

-- The names one request is about, in the order of its answer lines: every
-- name of the device in name_id order (p_fqdns NULL), or the names listed
-- (a text[] literal) in their order, with owner NULL for a name that does
-- not exist. A host name is split into label and zone at its first dot.
CREATE OR REPLACE FUNCTION ddns_request_targets(p_device text, p_fqdns text)
RETURNS TABLE (name_id bigint, owner text, zone text, fqdn text, ttl integer,
               ipv4 inet, ipv6 inet, o bigint)
LANGUAGE sql STABLE AS $$
    SELECT n.name_id, n.device_id, n.zone, n.label || '.' || n.zone, n.ttl, n.ipv4, n.ipv6,
           row_number() OVER (ORDER BY n.name_id)
        FROM names n
        WHERE p_fqdns IS NULL AND n.device_id = p_device
    UNION ALL
    SELECT n.name_id, n.device_id, n.zone, f.fqdn, n.ttl, n.ipv4, n.ipv6, f.o
        FROM unnest(p_fqdns::text[]) WITH ORDINALITY AS f(fqdn, o)
        LEFT JOIN names n ON strpos(f.fqdn, '.') > 1
                         AND n.label = left(f.fqdn, strpos(f.fqdn, '.') - 1)
                         AND n.zone = substr(f.fqdn, strpos(f.fqdn, '.') + 1)
$$;

CREATE OR REPLACE FUNCTION ddns_apply_batch(p_device text[], p_kid text[],
                                            p_generation integer[], p_ts bigint[],
                                            p_ipv4 inet[], p_ipv6 inet[], p_source inet[],
                                            p_fqdns text[], p_offline boolean[],
                                            p_min_interval integer[],
                                            p_agent text[], p_firmware text[],
                                            p_own boolean[])
RETURNS TABLE (item integer, ord integer, result text, retry_after integer)
LANGUAGE plpgsql
-- A batch is small (the gateway sends at most 1,000 requests) and touches
-- its devices' rows only, but the planner cannot see how small: joined on
-- array elements, with table statistics that lag behind a growing fleet,
-- it would scan and hash whole tables. Nested loops over the indexes are
-- always the right plan here; and being the same plan for every batch, it
-- is made once per session (custom plans would parse, inline and plan
-- every statement again on every call).
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
    nb       integer := cardinality(p_device);
    turn     integer[];     -- per request: its round
    rounds   integer;
    rnd      integer;
    sync     text := current_setting('synchronous_commit');
    changed  boolean := false;
    quiet    boolean[];     -- per request: answered nochg without a write
    nquiet   integer := 0;
BEGIN
    IF cardinality(p_kid) <> nb OR cardinality(p_generation) <> nb
       OR cardinality(p_ts) <> nb OR cardinality(p_ipv4) <> nb
       OR cardinality(p_ipv6) <> nb OR cardinality(p_source) <> nb
       OR cardinality(p_fqdns) <> nb OR cardinality(p_offline) <> nb
       OR cardinality(p_min_interval) <> nb OR cardinality(p_agent) <> nb
       OR cardinality(p_firmware) <> nb OR cardinality(p_own) <> nb THEN
        RAISE EXCEPTION 'ddns_apply_batch: the argument arrays differ in length';
    END IF;
    quiet := array_fill(false, ARRAY[nb]);
    -- The poll that changes nothing (docs/PROTOCOL.md section 5.1): a
    -- request whose addresses are its own (p_own), the only one
    -- of its device in the batch, of an active device whose row would not
    -- change (same User-Agent and firmware, last answer nochg, no failures:
    -- the first poll after a change or a refusal is recorded), that is not
    -- a replay, signed at most 1 s ahead of this server's clock (so that a
    -- change without a timestamp needs to raise the marker only to now + 1) and whose every name already holds
    -- those addresses, is answered nochg here, read-only: no lock, no row
    -- written, so a batch of such polls commits without a transaction id.
    -- What it would have recorded (last_seen, last_source, seen_day) the
    -- gateway records later with ddns_record_seen().
    FOR item, ord, result, retry_after IN
        WITH q AS (
            SELECT q.*, count(*) OVER (PARTITION BY q.r_device) AS per_device
                FROM unnest(p_device, p_kid, p_generation, p_ts, p_ipv4, p_ipv6, p_fqdns,
                            p_offline, p_agent, p_firmware, p_own)
                         WITH ORDINALITY AS q(r_device, r_kid, r_generation, r_ts, r_ipv4,
                                              r_ipv6, r_fqdns, r_offline, r_agent,
                                              r_firmware, r_own, k)
        ), e AS (
            SELECT q.k, x.o,
                   coalesce(x.owner = d.device_id
                            AND (q.r_ipv4 IS NULL OR x.ipv4 = q.r_ipv4)
                            AND (q.r_ipv6 IS NULL OR x.ipv6 = q.r_ipv6), false) AS same
                FROM q
                JOIN devices d ON d.device_id = q.r_device
                CROSS JOIN LATERAL ddns_request_targets(d.device_id, q.r_fqdns) x
                WHERE q.per_device = 1 AND q.r_own AND NOT q.r_offline
                  AND (q.r_ipv4 IS NOT NULL OR q.r_ipv6 IS NOT NULL)
                  AND d.kid = q.r_kid AND d.generation = q.r_generation
                  AND d.status = 'active'
                  AND CASE WHEN q.r_ts IS NULL THEN d.dyndns2
                           ELSE q.r_ts > d.last_ts
                                AND q.r_ts <= floor(extract(epoch FROM now()))::bigint + 1 END
                  AND d.user_agent IS NOT DISTINCT FROM left(q.r_agent, 200)
                  AND (q.r_firmware IS NULL OR d.firmware IS NOT DISTINCT FROM q.r_firmware)
                  AND d.last_result = 'nochg' AND d.fail_count = 0
        ), s AS (
            SELECT e.k FROM e GROUP BY e.k HAVING bool_and(e.same)
        )
        SELECT e.k::integer, e.o::integer, 'nochg', 0
            FROM e JOIN s ON s.k = e.k ORDER BY e.k, e.o
    LOOP
        IF NOT quiet[item] THEN
            quiet[item] := true;
            nquiet := nquiet + 1;
        END IF;
        RETURN NEXT;
    END LOOP;
    IF nquiet = nb THEN
        RETURN;     -- nothing to lock, nothing written
    END IF;
    -- every name this batch changes comes with its device's last_change,
    -- whose change-log row covers it (25_changes.sql)
    PERFORM set_config('ddns.apply_logs', 'on', true);
    PERFORM 1 FROM devices
        WHERE device_id = ANY (ARRAY(SELECT q.dev FROM unnest(p_device) WITH ORDINALITY AS q(dev, k)
                                         WHERE NOT quiet[q.k]))
        ORDER BY device_id FOR UPDATE;
    SELECT array_agg(s.turn ORDER BY s.k), max(s.turn) INTO turn, rounds
        FROM (SELECT k, CASE WHEN quiet[k] THEN 0
                             ELSE row_number() OVER (PARTITION BY dev, quiet[k] ORDER BY k)::integer
                        END AS turn
                FROM unnest(p_device) WITH ORDINALITY AS q(dev, k)) s;

    FOR rnd IN 1 .. coalesce(rounds, 0) LOOP
        FOR item, ord, result, retry_after IN
            WITH dv AS (
                -- the round's requests (r_*: the arguments, read once: an
                -- element of an array of text or inet is found by walking
                -- the array) with their device, and the refusal of the
                -- whole request if any
                SELECT q.*, d.device_id AS dev, d.last_change, d.user_agent, d.firmware,
                       d.last_result, d.seen_day,
                       CASE WHEN d.device_id IS NULL OR d.kid IS DISTINCT FROM q.r_kid
                                     OR d.generation IS DISTINCT FROM q.r_generation
                                     OR (q.r_ts IS NULL AND NOT d.dyndns2)
                                THEN 'unknown'
                            WHEN d.status <> 'active' THEN 'disabled'
                            WHEN q.r_ts <= d.last_ts THEN 'replay' END AS refusal
                    FROM unnest(p_device, p_kid, p_generation, p_ts, p_ipv4, p_ipv6, p_source,
                                p_fqdns, p_offline, p_min_interval, p_agent, p_firmware,
                                p_own)
                             WITH ORDINALITY AS q(r_device, r_kid, r_generation, r_ts, r_ipv4,
                                                  r_ipv6, r_source, r_fqdns, r_offline,
                                                  r_interval, r_agent, r_firmware, r_own, k)
                    LEFT JOIN devices d ON d.device_id = q.r_device
                    WHERE turn[q.k] = rnd
            ), t AS (
                -- one row per answer line: the names of a request not
                -- refused (o, name_id NULL: no such name), or one row (o NULL)
                -- for a request refused as a whole or about no name; and
                -- what would change (the device's own names only)
                SELECT dv.*, x.o, x.name_id, x.owner, x.zone, x.fqdn, x.ttl,
                       x.ipv4 AS old4, x.ipv6 AS old6,
                       coalesce(x.owner = dv.dev, false) AS own,
                       coalesce(x.owner = dv.dev
                                AND CASE WHEN dv.r_offline THEN x.ipv4 IS NOT NULL
                                         ELSE dv.r_ipv4 IS NOT NULL
                                              AND x.ipv4 IS DISTINCT FROM dv.r_ipv4 END,
                                false) AS chg4,
                       coalesce(x.owner = dv.dev
                                AND CASE WHEN dv.r_offline THEN x.ipv6 IS NOT NULL
                                         ELSE dv.r_ipv6 IS NOT NULL
                                              AND x.ipv6 IS DISTINCT FROM dv.r_ipv6 END,
                                false) AS chg6
                    FROM dv LEFT JOIN LATERAL ddns_request_targets(dv.dev, dv.r_fqdns) x
                                           ON dv.refusal IS NULL
            ), c AS (
                -- per request: whether it changes a record, until when the
                -- rate limit holds back a change, and the first of its names
                -- (o) that is no such name, another device's, or changes.
                -- Window functions, not joins, bring the rows of a request
                -- together: joins of these sets would be nested loops (the
                -- SET above).
                SELECT t.*, bool_or(t.chg4 OR t.chg6) OVER w AS changes,
                       t.last_change + make_interval(secs => t.r_interval) AS until_at,
                       min(t.o) OVER w AS first_o,
                       min(t.o) FILTER (WHERE t.owner IS NULL) OVER w AS first_nohost,
                       min(t.o) FILTER (WHERE NOT t.own AND t.owner IS NOT NULL) OVER w
                           AS first_foreign,
                       min(t.o) FILTER (WHERE t.chg4 OR t.chg6) OVER w AS first_chg
                    FROM t
                    WINDOW w AS (PARTITION BY t.k)
            ), l AS (
                -- only a request that changes something is limited
                SELECT c.*, coalesce(c.changes AND c.r_interval > 0
                                     AND c.until_at > now(), false) AS limited
                    FROM c
            ), a AS (
                -- the answer rows; first: the request's first row
                SELECT l.*,
                       CASE WHEN l.refusal IS NOT NULL THEN l.refusal
                            WHEN l.o IS NULL OR l.owner IS NULL THEN 'nohost'
                            WHEN NOT l.own THEN 'foreign'
                            WHEN NOT (l.chg4 OR l.chg6) THEN 'nochg'
                            WHEN l.limited THEN 'ratelimit'
                            ELSE 'good' END AS result,
                       CASE WHEN (l.chg4 OR l.chg6) AND l.limited
                            THEN greatest(1, ceil(extract(epoch FROM l.until_at - now()))::integer)
                       END AS retry,
                       l.o IS NOT DISTINCT FROM l.first_o AS first,
                       least(l.first_nohost, l.first_foreign,
                             CASE WHEN l.limited THEN l.first_chg END) AS first_bad
                    FROM l
            ), w AS (
                -- the names that change (a name listed twice, once)
                SELECT DISTINCT ON (a.k, a.name_id) a.*
                    FROM a WHERE (a.chg4 OR a.chg6) AND NOT a.limited
                    ORDER BY a.k, a.name_id, a.o
            ), rr AS (
                SELECT k, o, zone, fqdn, ttl, 'A' AS rrtype, old4 AS old,
                       CASE WHEN NOT r_offline THEN r_ipv4 END AS new, r_device, r_source
                    FROM w WHERE chg4
                UNION ALL
                SELECT k, o, zone, fqdn, ttl, 'AAAA', old6,
                       CASE WHEN NOT r_offline THEN r_ipv6 END, r_device, r_source
                    FROM w WHERE chg6
            ), hist AS (
                INSERT INTO history (device_id, fqdn, rrtype, old_address, new_address, source)
                    SELECT r_device, fqdn, rrtype, old, new, r_source FROM rr
                    ORDER BY k, o, rrtype
            ), outbox AS (
                INSERT INTO dns_outbox (zone, fqdn, rrtype, address, ttl)
                    SELECT zone, fqdn, rrtype, new, ttl FROM rr ORDER BY k, o, rrtype
            ), nm AS (
                UPDATE names n
                    SET ipv4 = CASE WHEN w.r_offline THEN NULL ELSE coalesce(w.r_ipv4, n.ipv4) END,
                        ipv6 = CASE WHEN w.r_offline THEN NULL ELSE coalesce(w.r_ipv6, n.ipv6) END,
                        updated_at = now()
                    FROM w WHERE n.name_id = w.name_id
            ), u AS (
                -- per request of a known device: whether it was accepted
                -- (not refused, about some name), changed a record, and
                -- must record its answer
                SELECT v.*, v.answer IN ('good', 'nochg') AS ok,
                       v.user_agent IS DISTINCT FROM left(v.r_agent, 200)
                           OR (v.answer <> 'badauth' AND v.seen_day <> current_date)
                           OR (v.r_firmware IS NOT NULL AND v.firmware IS DISTINCT FROM v.r_firmware)
                           OR v.last_result IS DISTINCT FROM v.answer
                           OR v.answer NOT IN ('good', 'nochg') AS record
                    FROM (SELECT a.k, a.dev, a.r_ts, a.r_own, a.r_source, a.r_agent, a.r_firmware,
                                 a.user_agent, a.seen_day, a.firmware, a.last_result,
                                 a.refusal IS NULL AND a.o IS NOT NULL AS accepted,
                                 a.changes AND NOT a.limited AS changes,
                                 -- the device's answer: the first refusal ('unknown'
                                 -- recorded as 'badauth'), else good if any, else nochg
                                 CASE WHEN a.refusal = 'unknown' THEN 'badauth'
                                      WHEN a.refusal IS NOT NULL THEN a.refusal
                                      WHEN a.o IS NULL THEN 'nohost'
                                      WHEN a.first_bad IS NULL
                                          THEN CASE WHEN a.changes THEN 'good' ELSE 'nochg' END
                                      WHEN a.first_bad = a.first_nohost THEN 'nohost'
                                      WHEN a.first_bad = a.first_foreign THEN 'foreign'
                                      ELSE 'ratelimit' END AS answer
                            FROM a WHERE a.first AND a.dev IS NOT NULL) v
            ), dev AS (
                UPDATE devices d
                    -- a change without a timestamp (dyndns2) raises the
                    -- marker to every timestamp a poll answered without a
                    -- write before it can carry (docs/PROTOCOL.md 5.1)
                    SET last_ts = CASE WHEN NOT u.accepted THEN d.last_ts
                                       WHEN u.r_ts IS NOT NULL THEN u.r_ts
                                       WHEN u.changes AND u.r_own
                                           THEN greatest(d.last_ts,
                                                         floor(extract(epoch FROM
                                                                       clock_timestamp()))::bigint
                                                         + 1)
                                       ELSE d.last_ts END,
                        last_seen = CASE WHEN u.accepted THEN now() ELSE d.last_seen END,
                        last_source = CASE WHEN u.accepted THEN u.r_source
                                           ELSE d.last_source END,
                        last_change = CASE WHEN u.changes THEN now() ELSE d.last_change END,
                        user_agent = CASE WHEN u.record THEN left(u.r_agent, 200)
                                          ELSE d.user_agent END,
                        firmware = CASE WHEN u.record THEN coalesce(u.r_firmware, d.firmware)
                                        ELSE d.firmware END,
                        last_result = CASE WHEN u.record THEN u.answer ELSE d.last_result END,
                        last_result_at = CASE WHEN u.record THEN now()
                                              ELSE d.last_result_at END,
                        fail_count = CASE WHEN NOT u.record THEN d.fail_count
                                          WHEN u.ok THEN 0 ELSE d.fail_count + 1 END,
                        seen_day = CASE WHEN u.record AND u.answer <> 'badauth' THEN current_date
                                        ELSE d.seen_day END
                    FROM u WHERE d.device_id = u.dev AND (u.accepted OR u.record)
            )
            SELECT a.k, a.o::integer, a.result, a.retry FROM a ORDER BY a.k, a.o NULLS FIRST
        LOOP
            changed := changed OR result = 'good';
            RETURN NEXT;
        END LOOP;
    END LOOP;
    PERFORM set_config('ddns.apply_logs', '', true);
    -- a batch that changed no record commits lazily, one that did as before
    PERFORM set_config('synchronous_commit', CASE WHEN changed THEN sync ELSE 'off' END, true);
END $$;

-- The forms of the gateways of earlier releases, kept so that they work on
-- this schema while the gateways are replaced one by one
-- (docs/OPERATIONS.md, "Upgrading"). Twelve arrays (no p_own): every
-- request takes the written path, as before. Eleven arrays (no
-- p_generation either): such a gateway verifies generation-0 secrets only,
-- so its requests are of generation 0.
CREATE OR REPLACE FUNCTION ddns_apply_batch(p_device text[], p_kid text[],
                                            p_generation integer[], p_ts bigint[],
                                            p_ipv4 inet[], p_ipv6 inet[], p_source inet[],
                                            p_fqdns text[], p_offline boolean[],
                                            p_min_interval integer[],
                                            p_agent text[], p_firmware text[])
RETURNS TABLE (item integer, ord integer, result text, retry_after integer)
LANGUAGE sql AS $$
    SELECT * FROM ddns_apply_batch(p_device, p_kid, p_generation, p_ts,
                                   p_ipv4, p_ipv6, p_source, p_fqdns, p_offline, p_min_interval,
                                   p_agent, p_firmware,
                                   array_fill(false, ARRAY[cardinality(p_device)]))
$$;

CREATE OR REPLACE FUNCTION ddns_apply_batch(p_device text[], p_kid text[], p_ts bigint[],
                                            p_ipv4 inet[], p_ipv6 inet[], p_source inet[],
                                            p_fqdns text[], p_offline boolean[],
                                            p_min_interval integer[],
                                            p_agent text[], p_firmware text[])
RETURNS TABLE (item integer, ord integer, result text, retry_after integer)
LANGUAGE sql AS $$
    SELECT * FROM ddns_apply_batch(p_device, p_kid,
                                   array_fill(0, ARRAY[cardinality(p_device)]), p_ts,
                                   p_ipv4, p_ipv6, p_source, p_fqdns, p_offline, p_min_interval,
                                   p_agent, p_firmware)
$$;

-- What a poll answered nochg without a write (section 5.1 of
-- docs/PROTOCOL.md) would have recorded, recorded later: the gateway
-- collects, per device, the time (p_seen: seconds since the epoch) and
-- source of its latest such poll and
-- sends them here at most once per device per [database] seen_interval,
-- sorted by device_id (so that its row locks are taken in the order every
-- batch takes them). last_seen and last_source move only forward in time;
-- seen_day follows last_seen. Lazily committed: what a crash of the
-- database server loses is a few moments of "last seen". Returns the
-- number of devices written.
CREATE OR REPLACE FUNCTION ddns_record_seen(p_device text[], p_seen double precision[],
                                            p_source inet[])
RETURNS bigint
LANGUAGE plpgsql
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    written bigint;
BEGIN
    IF cardinality(p_seen) <> cardinality(p_device)
       OR cardinality(p_source) <> cardinality(p_device) THEN
        RAISE EXCEPTION 'ddns_record_seen: the argument arrays differ in length';
    END IF;
    PERFORM set_config('synchronous_commit', 'off', true);
    WITH s AS (
        SELECT q.dev, to_timestamp(q.seen) AS seen, q.source
            FROM unnest(p_device, p_seen, p_source) AS q(dev, seen, source)
            ORDER BY q.dev
    ), w AS (
        UPDATE devices d
            SET last_seen = s.seen, last_source = s.source,
                seen_day = greatest(d.seen_day, s.seen::date)
            FROM s
            WHERE d.device_id = s.dev AND (d.last_seen IS NULL OR d.last_seen < s.seen)
            RETURNING 1
    )
    SELECT count(*) INTO written FROM w;
    RETURN written;
END $$;

-- One request: the batch of one, with the rows of the batch and for each
-- name its fqdn and the addresses now recorded for the families the request
-- named (NULL when offline or when the name is not the device's).
-- p_agent and p_firmware may be left out (NULL: no User-Agent, firmware
-- kept).
CREATE OR REPLACE FUNCTION ddns_apply_request(p_device text, p_kid text, p_generation integer,
                                              p_ts bigint,
                                              p_ipv4 inet, p_ipv6 inet, p_source inet,
                                              p_fqdns text[], p_offline boolean,
                                              p_min_interval integer,
                                              p_agent text DEFAULT NULL,
                                              p_firmware text DEFAULT NULL)
RETURNS TABLE (ord integer, fqdn text, result text, ipv4 inet, ipv6 inet,
               retry_after integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    fqdns text[];
BEGIN
    FOR ord, result, retry_after IN
        SELECT b.ord, b.result, b.retry_after
            FROM ddns_apply_batch(ARRAY[p_device], ARRAY[p_kid], ARRAY[p_generation],
                                  ARRAY[p_ts], ARRAY[p_ipv4],
                                  ARRAY[p_ipv6], ARRAY[p_source], ARRAY[p_fqdns::text],
                                  ARRAY[p_offline], ARRAY[p_min_interval], ARRAY[p_agent],
                                  ARRAY[p_firmware], ARRAY[false]) b LOOP
        fqdn := NULL;
        ipv4 := NULL;
        ipv6 := NULL;
        IF ord IS NOT NULL THEN
            -- read after the batch, under the device's lock: the names it used
            fqdns := coalesce(fqdns, p_fqdns, ARRAY(SELECT x.fqdn
                                                      FROM ddns_request_targets(p_device, NULL) x
                                                      ORDER BY x.o));
            fqdn := fqdns[ord];
            IF result IN ('good', 'nochg', 'ratelimit') AND NOT p_offline THEN
                ipv4 := p_ipv4;
                ipv6 := p_ipv6;
            END IF;
        END IF;
        RETURN NEXT;
    END LOOP;
END $$;
