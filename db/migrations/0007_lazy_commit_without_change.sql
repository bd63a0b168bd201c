-- 0007: a request that changes no record commits without waiting for its
-- WAL to reach disk.
--
-- Most requests are keep-alives that change nothing (nochg); what they write
-- is the replay marker (last_ts) and last_seen/last_source. Waiting for the
-- WAL flush of each of those commits doubled their latency and capped the
-- rate. synchronous_commit = off for such a transaction is safe:
--   * an answer good is still durable before it is sent, because every
--     transaction that changes a record keeps synchronous_commit on;
--   * PostgreSQL writes the WAL in order, so that durable commit also makes
--     every earlier lazy commit durable;
--   * a crash of the database server can lose at most the last moments of
--     lazy commits (about 3 x wal_writer_delay). Losing a replay marker lets
--     that request be replayed once, but it changed nothing, and any later
--     change has made its marker durable and newer, so a replay can only
--     again change nothing.
--
-- The function of 0005 keeps its body under a new name; ddns_apply_request
-- (same signature and rows, so gateways of earlier versions call it
-- unchanged) forwards to it and decides the commit mode from its rows.
ALTER FUNCTION ddns_apply_request(text, text, bigint, inet, inet, inet, text[], boolean, integer)
    RENAME TO ddns_apply_request_rows;

CREATE FUNCTION ddns_apply_request(p_device text, p_kid text, p_ts bigint,
                                   p_ipv4 inet, p_ipv6 inet, p_source inet,
                                   p_fqdns text[], p_offline boolean,
                                   p_min_interval integer)
RETURNS TABLE (ord integer, fqdn text, result text, ipv4 inet, ipv6 inet,
               retry_after integer)
LANGUAGE plpgsql AS $$
DECLARE
    changed boolean := false;
BEGIN
    FOR ord, fqdn, result, ipv4, ipv6, retry_after IN
        SELECT * FROM ddns_apply_request_rows(p_device, p_kid, p_ts, p_ipv4, p_ipv6, p_source,
                                              p_fqdns, p_offline, p_min_interval)
    LOOP
        changed := changed OR result = 'good';
        RETURN NEXT;
    END LOOP;
    IF NOT changed THEN
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
END $$;
