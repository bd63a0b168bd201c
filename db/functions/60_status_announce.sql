-- Every change of a device's status (revoke, restore: the admin API,
-- ddns-provision) is announced on the channel ddns_device_status, so that
-- every gateway forgets at once which devices it remembered as revoked
-- (gateway/src/internet/gw_budget.h) and the next request of a restored
-- device reaches this database again. One notification per statement, no
-- payload: a bulk change of a million devices costs one.
--
-- The trigger is created here rather than in a migration because it only
-- ties this function to the devices table, and CREATE OR REPLACE keeps the
-- file idempotent like the functions around it.

CREATE OR REPLACE FUNCTION devices_status_announce() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ddns_device_status', '');
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER devices_status_announce
    AFTER UPDATE OF status ON devices
    FOR EACH STATEMENT EXECUTE FUNCTION devices_status_announce();
