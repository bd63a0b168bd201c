#include <string.h>
#include "ddns_http.h"
#include "ddns_sdk.h"
#include "ddns_sha256.h"
#include "platform.h"

void ddns_task(const device_config_t *cfg)
{
    const ddns_options_t opt = ddns_options_default();
    ddns_state_t st = { 0 };
    uint8_t buf[1024];   /* request (up to DDNS_REQUEST_MAX), then the answer */
    for (;;) {
        ddns_request_t req = { 0 };
        ddns_http_response_t http;
        ddns_response_t r, *answer = NULL;
        ddns_err_t err = DDNS_E_HTTP_INCOMPLETE;
        size_t len, got = 0;
        uint32_t delay, rnd;
        int conn; long n;
        req.host = ddns_span(cfg->host, strlen(cfg->host));
        req.device_id = ddns_span(cfg->device_id, DDNS_DEVICE_ID_LEN);
        req.kid = ddns_span(cfg->kid, cfg->kid_len);  /* no address: use the connection's */
        req.state = &st;  /* ...named as the gateway last saw it (peer, moved) */
        req.ts = ddns_clock(&st, platform_time());
        platform_random(req.nonce, sizeof req.nonce);
        if (ddns_request_build(&req, cfg->secret, buf, sizeof buf, &len) == DDNS_OK &&
            (conn = platform_tls_open(cfg->host)) >= 0) {
            if (platform_tls_send(conn, buf, len) == 0)
                while (err == DDNS_E_HTTP_INCOMPLETE && got < sizeof buf &&
                       (n = platform_tls_recv(conn, buf + got, sizeof buf - got)) > 0)
                    err = ddns_http_response_parse(ddns_span(buf, got += (size_t)n), &http);
            if (err == DDNS_OK && ddns_response_parse(http.status, http.body, &r) == DDNS_OK)
                answer = &r;
            platform_tls_close(conn);
        }
        platform_random(&rnd, sizeof rnd);
        switch (ddns_next(&st, &opt, answer, platform_time(), rnd, &delay)) {
        case DDNS_NEXT_IDLE: platform_wait_address_change(opt.min_interval, delay); break;
        case DDNS_NEXT_RETRY: platform_sleep(delay); break;
        case DDNS_NEXT_STOP: platform_alert(answer); return;  /* until a person acts */
        }
    }
}
