#!/usr/bin/env python3
"""A govledger producer in Python, written from the README's wire-format section only.

It uses nats-py (JetStream publish with headers) and PyNaCl (Ed25519). Two steps:

    producer.py keygen --dir KEYS --tenant acme
        Creates the tenant's admin key and a producer key (KEYS/*.seed, mode 0600)
        and KEYS/trust.json for `govledger init --trust KEYS/trust.json`.

    producer.py run --dir KEYS --tenant acme [--nats nats://127.0.0.1:4222]
        Registers the producer key (signed by the admin key), starts a session,
        proposes an action, then sends one forged event. Each event asks for its
        receipt with the Gov-Reply header. Prints the receipts as JSON lines and
        exits 0 only if govledger accepted the three real events and rejected the
        forgery as bad_signature.
"""

import argparse
import asyncio
import base64
import hashlib
import json
import os
import sys
import uuid

import nacl.signing
from nats.aio.client import Client as NATS


def b64(raw: bytes) -> str:
    return base64.standard_b64encode(raw).decode("ascii")


def load_key(path: str) -> nacl.signing.SigningKey:
    with open(path, "rb") as f:
        return nacl.signing.SigningKey(f.read())


def keygen(args: argparse.Namespace) -> int:
    os.makedirs(args.dir, exist_ok=True)
    keys = {}
    for name in ("admin", "producer"):
        key = nacl.signing.SigningKey.generate()
        path = os.path.join(args.dir, f"{name}.seed")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(bytes(key))
        keys[name] = key
    trust = {
        "operator": [],
        "tenants": {
            args.tenant: {
                "admin_keys": [
                    {
                        "key_id": f"{args.tenant}/admin",
                        "public_key": b64(bytes(keys["admin"].verify_key)),
                    }
                ]
            }
        },
    }
    with open(os.path.join(args.dir, "trust.json"), "w") as f:
        json.dump(trust, f, indent=2)
    print(os.path.join(args.dir, "trust.json"))
    return 0


def body_bytes(event: dict) -> bytes:
    # Any JSON encoding works: the signature covers these exact bytes.
    return json.dumps(event, separators=(",", ":")).encode("utf-8")


async def run(args: argparse.Namespace) -> int:
    tenant = args.tenant
    admin = load_key(os.path.join(args.dir, "admin.seed"))
    producer = load_key(os.path.join(args.dir, "producer.seed"))
    admin_id, producer_id = f"{tenant}/admin", f"{tenant}/producer"
    run_id = uuid.uuid4().hex[:12]
    session = f"sess-{run_id}"
    actor = {"user": "alice", "agent": "py-agent-1"}

    def event(kind: str, n: int, **fields) -> dict:
        return {"v": 1, "id": f"py-{run_id}-{n}", "type": kind, "tenant": tenant, **fields}

    events = [
        (
            event(
                "key.registered",
                1,
                key_id=producer_id,
                public_key=b64(bytes(producer.verify_key)),
            ),
            admin_id,
            admin,
            "accepted",
        ),
        (event("session.started", 2, session=session, actor=actor), producer_id, producer, "accepted"),
        (
            event(
                "action.proposed",
                3,
                proposal=f"prop-{run_id}",
                session=session,
                actor=actor,
                action="payments.refund",
                resource="svc:payments",
                args_digest=hashlib.sha256(b'{"amount_micros":5000000}').hexdigest(),
                risk_tier="high",
            ),
            producer_id,
            producer,
            "accepted",
        ),
    ]

    nc = NATS()
    await nc.connect(servers=[args.nats], connect_timeout=5)
    js = nc.jetstream()
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await nc.flush()

    expected = []
    for ev, key_id, key, verdict in events:
        body = body_bytes(ev)
        sig = key.sign(body).signature
        await publish(js, tenant, ev, body, key_id, sig, inbox)
        expected.append((ev["id"], verdict, None))

    # A forgery: the producer signed one body, the wire carries another.
    forged = event("action.proposed", 4, **{k: v for k, v in events[2][0].items()
                                            if k not in ("v", "id", "type", "tenant")})
    signed_body = body_bytes(forged)
    forged["risk_tier"] = "low"
    await publish(js, tenant, forged, body_bytes(forged), producer_id,
                  producer.sign(signed_body).signature, inbox)
    expected.append((forged["id"], "rejected", "bad_signature"))

    receipts = {}
    while len(receipts) < len(expected):
        msg = await sub.next_msg(timeout=args.timeout)
        r = json.loads(msg.data)
        receipts[r["event_id"]] = r
        print(json.dumps(r), flush=True)
    await nc.drain()

    ok = True
    for event_id, verdict, reason in expected:
        r = receipts.get(event_id)
        if r is None or r["verdict"] != verdict or r["reason"] != reason:
            print(f"unexpected receipt for {event_id}: {r}", file=sys.stderr)
            ok = False
        elif len(base64.standard_b64decode(r["leaf_hash"])) != 32:
            print(f"receipt for {event_id} has no 32-byte leaf hash: {r}", file=sys.stderr)
            ok = False
    return 0 if ok else 1


async def publish(js, tenant, ev, body, key_id, sig, reply):
    family = ev["type"].split(".")[0]
    headers = {
        "Nats-Msg-Id": f"{tenant}:{ev['id']}",
        "Gov-Key": key_id,
        "Gov-Sig": b64(sig),
        "Gov-Reply": reply,
    }
    ack = await js.publish(f"gov.{tenant}.{family}", body, headers=headers)
    return ack


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("keygen", help="create keys and the trust file")
    k.add_argument("--dir", required=True)
    k.add_argument("--tenant", default="acme")
    r = sub.add_parser("run", help="publish events and check their receipts")
    r.add_argument("--dir", required=True)
    r.add_argument("--tenant", default="acme")
    r.add_argument("--nats", default=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    r.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each receipt")
    args = p.parse_args()
    if args.cmd == "keygen":
        return keygen(args)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
