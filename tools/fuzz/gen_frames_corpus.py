#!/usr/bin/env python3
"""Writes the seed corpora of the frame-reader fuzz targets,
tests/fuzz-corpus/ctrl_frames/ and tests/fuzz-corpus/fetch_frames/, from the
records already in the decoders' corpora. Run from the repository root.

Each seed: flags byte, 8 chunk-size bytes, then the stream (see
tools/fuzz/framer_harness.h). Flags: 0x01 caller's storage, 0x02 read at
most what the framer wants (the fetch server), 0x04 fetch client side."""
import os
import struct

FIXED, WANT, CLIENT = 0x01, 0x02, 0x04
CTRL_MAX = 1024 * 1024
FRAME_MAX = 8192
RESPONSE_MAX = 384
ROOT = os.path.join("tests", "fuzz-corpus")


def rec(target, name):
    with open(os.path.join(ROOT, target, name), "rb") as f:
        return f.read()


def frame(body):
    return struct.pack(">I", len(body)) + body


def header(n):
    return struct.pack(">I", n)


def seed(flags, sched, stream):
    assert len(sched) == 8
    return bytes([flags]) + bytes(sched) + stream


BIG = [0xFF] * 8        # 64 * 4096: everything in one feed
ONES = [0x00] * 8       # one byte per feed
MIXED = [0x00, 0x01, 0x03, 0x07, 0x40, 0x45, 0x80, 0xC0]


def write(target, seeds):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


def main():
    req = rec("ctrl_request", "valid_v1")
    no_args = rec("ctrl_request", "no_args")
    bad = rec("ctrl_request", "bad_command")
    write("ctrl_frames", {
        "one_request": seed(0, BIG, frame(req)),
        "byte_at_a_time": seed(FIXED, ONES, frame(req) + frame(req)),
        "back_to_back": seed(0, MIXED, frame(req) + frame(no_args) + frame(bad)),
        "zero_length": seed(0, MIXED, frame(req) + header(0) + req),
        "over_cap": seed(FIXED, MIXED, frame(req) + header(CTRL_MAX + 1) + req),
        "huge_header": seed(0, BIG, header(0xFFFFFFFF) + req),
        "truncated": seed(0, MIXED, frame(req) + header(len(req)) + req[:10]),
        "half_header": seed(WANT, ONES, frame(no_args) + header(len(req))[:2]),
    })

    freq = rec("fetch_request", "valid_v1")
    rcpt = rec("receipt", "valid_v1")
    resp = rec("fetch_response", "valid_v1")  # status ok, total_size 4096
    resp_err = rec("fetch_response", "valid_error_v1")
    body = bytes((i * 7) & 0xFF for i in range(4096))
    srv = FIXED | WANT  # as node/mail/fetch_server.c reads
    cli = FIXED | CLIENT
    write("fetch_frames", {
        "server_request": seed(srv, BIG, frame(freq)),
        "server_request_receipt": seed(srv, MIXED, frame(freq) + frame(rcpt)),
        "server_receipt_alloc": seed(0, ONES, frame(rcpt)),
        "server_exact_cap": seed(srv, MIXED, frame(bytes(FRAME_MAX)) + frame(rcpt)),
        "server_over_cap": seed(srv, BIG, header(FRAME_MAX + 1) + freq),
        "server_zero_length": seed(0, MIXED, frame(freq) + header(0) + rcpt),
        "server_truncated": seed(srv, MIXED, frame(freq) + header(len(rcpt)) + rcpt[:50]),
        "client_body_ack": seed(cli, MIXED, frame(resp) + body + frame(resp)),
        "client_one_read": seed(cli, BIG, frame(resp) + body + frame(resp)),
        "client_error": seed(cli, ONES, frame(resp_err)),
        "client_over_cap": seed(cli, BIG, header(RESPONSE_MAX + 1) + resp),
        "client_short_body": seed(cli, MIXED, frame(resp) + body[:100]),
    })


if __name__ == "__main__":
    main()
