-- 0002: the audit record of every provisioning batch, and the batch each
-- device was registered by. Like everything else in the schema, no secret
-- of any kind: the input is recorded by its SHA-256 only (it holds MACs,
-- serials, models and names, no secrets either).

CREATE TABLE provision_batches (
    batch_id          bigserial PRIMARY KEY,
    created_at        timestamptz NOT NULL DEFAULT now(),
    command           text NOT NULL CHECK (command ~ '^[a-z]{1,16}$'),
    -- who ran it, as given with --operator or DDNS_OPERATOR
    operator          text NOT NULL
                      CHECK (length(operator) BETWEEN 1 AND 64 AND operator ~ '^[ -~]+$'),
    -- the key id new devices were registered under
    kid               text NOT NULL CHECK (kid ~ '^[a-z0-9]{1,16}$'),
    zone              text NOT NULL,
    input_name        text NOT NULL,
    input_sha256      text NOT NULL CHECK (input_sha256 ~ '^[0-9a-f]{64}$'),
    input_bytes       bigint NOT NULL CHECK (input_bytes >= 0),
    lines             integer NOT NULL CHECK (lines >= 0),
    devices_new       integer NOT NULL CHECK (devices_new >= 0),
    devices_unchanged integer NOT NULL CHECK (devices_unchanged >= 0),
    lines_rejected    integer NOT NULL CHECK (lines_rejected >= 0),
    output_format     text NOT NULL,
    tool_version      text NOT NULL
);
CREATE INDEX provision_batches_sha_idx ON provision_batches (input_sha256);

-- The batch that registered the device; NULL for devices registered one by
-- one ('ddns-provision issue'). A plain column, not a foreign key: the check
-- would cost a lookup per device on million-device batches, and the tool
-- writes the batch row and its devices in the same transaction.
ALTER TABLE devices ADD COLUMN batch_id bigint;

-- The same rules for names.label and names.zone as in 0001 (labels of 1 to
-- 63 characters of [a-z0-9-], no '-' at either end; a zone is such labels
-- joined by '.'), written without bounded repetition, which PostgreSQL's
-- regular expression engine evaluates several times more slowly: checking
-- a million new names took about 11 s with the 0001 forms and about 3 s
-- with these.
ALTER TABLE names
    DROP CONSTRAINT names_label_check,
    ADD CONSTRAINT names_label_check
        CHECK (label ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?$' AND length(label) <= 63),
    DROP CONSTRAINT names_zone_check,
    ADD CONSTRAINT names_zone_check
        CHECK (zone ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$'
               AND zone !~ '[^.]{64}');
