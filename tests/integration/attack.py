"""Helpers of the attack tests (test_attacks.py, test_attacks_http.py):
an independent signer of /v1/update requests (docs/PROTOCOL.md section 4,
Python standard library only, like docs/vectors/gen-vectors.py), raw
dyndns2 requests, and a fingerprint of every table of the database."""
import base64
import hashlib
import hmac
import os
import time

SCHEME = "DDNS-HMAC-SHA256"


def secret_bytes(creds):
    """The 32 raw bytes of a credentials dict's base64url secret."""
    s = creds["secret"]
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def signature(secret, device_id, kid, ts, nonce, body):
    msg = ("%s\nPOST\n/v1/update\n%s\n%s\n%s\n%s\n" % (SCHEME, device_id, kid, ts, nonce)).encode()
    return hmac.new(secret, msg + body, hashlib.sha256).hexdigest()


_last_ts = [0]


def next_ts():
    """A timestamp newer than any this process signed before (the replay
    rule allows one per device and second; tests sign for many devices)."""
    ts = max(int(time.time()), _last_ts[0] + 1)
    _last_ts[0] = ts
    return ts


def signed_update(creds, body=b"", ts=None, nonce=None, device_id=None, kid=None, secret=None,
                  sig=None, auth=None, headers=(), content_length=None, ua="AcmeCam-X9/1.0.0"):
    """The raw bytes of a POST /v1/update. Every part can be overridden to
    forge or tamper: the signature is computed over device_id, kid, ts,
    nonce and body as given unless sig (the hex text to send) or auth (the
    whole Authorization value) is given."""
    device_id = device_id or creds["device_id"]
    kid = kid or creds["kid"]
    ts = next_ts() if ts is None else ts
    nonce = nonce or os.urandom(8).hex()
    if sig is None:
        sig = signature(secret or secret_bytes(creds), device_id, kid, ts, nonce, body)
    if auth is None:
        auth = "%s id=%s,kid=%s,ts=%s,nonce=%s,sig=%s" % (SCHEME, device_id, kid, ts, nonce, sig)
    lines = ["POST /v1/update HTTP/1.1", "Host: localhost", "Authorization: " + auth,
             "Content-Type: application/x-www-form-urlencoded",
             "Content-Length: %d" % (len(body) if content_length is None else content_length)]
    if ua:
        lines.append("User-Agent: " + ua)
    lines += list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def nic_raw(query, auth=None, ua="AcmeCam-X9/1.0.0", extra=()):
    """The raw bytes of a GET /nic/update; query is bytes or text."""
    if isinstance(query, str):
        query = query.encode()
    lines = [b"GET /nic/update?" + query + b" HTTP/1.1", b"Host: localhost"]
    if auth is not None:
        lines.append(b"Authorization: " + (auth.encode() if isinstance(auth, str) else auth))
    if ua is not None:
        lines.append(b"User-Agent: " + (ua.encode() if isinstance(ua, str) else ua))
    lines += [x if isinstance(x, bytes) else x.encode() for x in extra]
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


# What the gateway records about every request by design, as data: when a
# device was last heard from, what it said about itself and its last answer
# (0006), and the per-minute and per-source counters it adds up.
SKIP_COLUMNS = ("devices.last_seen", "devices.user_agent", "devices.firmware",
                "devices.last_result", "devices.last_result_at", "devices.fail_count",
                "devices.seen_day")
# ddns_changes logs the device of every write of the columns above (the
# gateways' answers in memory follow it, docs/ARCHITECTURE.md); the
# gateway's pruning of it every minute adds a ddns_change_marks row and
# raises ddns_change_horizon
SKIP_TABLES = ("public.update_minutes", "public.source_failures", "public.ddns_changes",
               "public.ddns_change_marks", "public.ddns_change_horizon")


def db_fingerprint(stack, skip_columns=SKIP_COLUMNS, skip_tables=SKIP_TABLES):
    """{table: md5 of its sorted rows} for every table of the ddns database,
    plus the schema's functions and the roles: any change an injected
    statement could make shows up here. skip_columns (table.column) and
    skip_tables are left out: what every request records as data."""
    tables = [r[0] for r in stack.psql(
        "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) "
        "FROM information_schema.tables WHERE table_schema NOT IN "
        "('pg_catalog', 'information_schema') ORDER BY 1")]
    out = {}
    for t in tables:
        if t in skip_tables:
            continue
        short = t.split(".")[-1]
        cols = [r[0] for r in stack.psql(
            "SELECT quote_ident(column_name) FROM information_schema.columns WHERE "
            "table_schema || '.' || table_name = '%s' ORDER BY ordinal_position"
            % t.replace('"', ''))
            if "%s.%s" % (short, r[0]) not in skip_columns]
        out[t] = stack.psql("SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, '|' "
                            "ORDER BY x::text)), '') FROM (SELECT row(%s) AS x FROM %s) s"
                            % (", ".join(cols), t))[0][0]
    out["functions"] = stack.psql("SELECT md5(string_agg(p.oid::regprocedure::text || "
                                  "md5(p.prosrc), ',' ORDER BY 1)) FROM pg_proc p "
                                  "JOIN pg_namespace n ON n.oid = p.pronamespace "
                                  "WHERE n.nspname = 'public'")[0][0]
    out["roles"] = stack.psql("SELECT string_agg(rolname || rolsuper::text, ',' ORDER BY 1) "
                              "FROM pg_roles")[0][0]
    return out
