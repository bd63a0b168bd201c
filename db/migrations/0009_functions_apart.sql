-- 0009: functions are defined apart from the migrations, in db/functions/
-- (applied by db/migrate on every run, after the migrations; see
-- db/migrate --help). What an update does is defined once, in
-- db/functions/20_update.sql: ddns_apply_batch() decides every request
-- set-based, and ddns_apply_request() is the batch of one, in its
-- eleven-argument form (the last two now optional).
--
-- Dropped here: the forms of earlier releases that held their own copy of
-- the rules, which no gateway since 0008 calls:
--   ddns_apply_update(6 arguments)           0003, gateways before 0005
--   ddns_apply_request(9 arguments)          0005, gateways before 0006
--                                            (a call with nine arguments
--                                            now reaches the 11-argument
--                                            form, which does not NOTIFY)
--   ddns_apply_request(10 arguments)         0007, p_notify; no caller
-- The eleven-argument form stays and is replaced in place by the functions
-- file (so that what was granted on it is kept).

DROP FUNCTION IF EXISTS ddns_apply_update(text, text, bigint, inet, inet, inet);
DROP FUNCTION IF EXISTS ddns_apply_request(text, text, bigint, inet, inet, inet, text[],
                                           boolean, integer);
DROP FUNCTION IF EXISTS ddns_apply_request(text, text, bigint, inet, inet, inet, text[],
                                           boolean, integer, boolean);
