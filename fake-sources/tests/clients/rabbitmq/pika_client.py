"""A producer, a consumer and an idle client, written with pika, run the same way against a
real RabbitMQ and against the fake one so a test can compare what each broker answered.

Usage: pika_client.py SCENARIO HOST PORT USER PASSWORD

Every observation is one JSON object on its own line of standard output. At a line with
"checkpoint" the script waits for one line on standard input before it goes on, so the
test can read the management API while the broker is in a known state ("ready" and
"unacked" say what the client believes the queue holds).

Scenarios:
  idle      heartbeat 2 s negotiated; idle (pika keeps its heartbeats) for 8 intervals,
            then a passive declare. pika gives up on a broker it has heard nothing from
            for two of its checks, timeout + 5 s apart: 14 s at 2 s (130 s at 60 s), so
            16 s shows a broker that sends no heartbeats.
  messages  declare, publish with confirms, get, nack/reject, consume with prefetch,
            ack, purge, exchanges and bindings, a server-named queue, the errors.

Names the brokers choose (amq.gen-..., amq.ctag-...) are printed as their prefix and
length, so the lines compare equal when the brokers behave alike.
"""

import json
import re
import sys
import time

import pika

SCENARIO, HOST, PORT, USER, PASSWORD = sys.argv[1:6]
QUEUE = "diff-work"
MESSAGES = 10


def emit(**fields):
    print(json.dumps(fields, sort_keys=True), flush=True)


def checkpoint(name, ready, unacked, consumers, queue=QUEUE):
    emit(checkpoint=name, queue=queue, ready=ready, unacked=unacked, consumers=consumers)
    if not sys.stdin.readline():
        sys.exit("the test closed standard input")


def shape(name):
    """A generated name as its prefix and length (pika names its consumers itself)."""
    match = re.fullmatch(r"(amq\.(?:gen|ctag)-|ctag\d+\.)(.*)", name or "")
    if match:
        return f"{match.group(1)}<{len(match.group(2))}>"
    return name


def settle(conn):
    """RabbitMQ applies acks, nacks and rejects to the queue asynchronously: a passive
    declare right after one may count from before it. A moment lets it catch up."""
    conn.sleep(0.2)


def connect(heartbeat=None):
    params = pika.ConnectionParameters(
        host=HOST,
        port=int(PORT),
        credentials=pika.PlainCredentials(USER, PASSWORD),
        heartbeat=heartbeat,
        connection_attempts=1,
    )
    return pika.BlockingConnection(params)


def refused(error):
    return {"code": error.reply_code, "text": error.reply_text}


def idle():
    conn = connect(heartbeat=2)
    negotiated = conn._impl.params.heartbeat
    channel = conn.channel()
    channel.queue_declare(QUEUE, durable=False)
    emit(step="connected", heartbeat=negotiated)
    started = time.monotonic()
    # BlockingConnection.sleep services the socket: heartbeats go out and come in.
    conn.sleep(8 * negotiated)
    try:
        ok = channel.queue_declare(QUEUE, passive=True).method
        emit(step="declare after idle", ok=True, queue=ok.queue,
             idle_s=round(time.monotonic() - started))
    except Exception as error:  # noqa: BLE001 - the failure itself is the observation
        emit(step="declare after idle", ok=False, error=type(error).__name__,
             detail=str(error))
    try:
        channel.queue_delete(QUEUE)
        conn.close()
    except Exception:  # noqa: BLE001 - a connection already lost is reported above
        pass


def declare(channel, name, **kwargs):
    ok = channel.queue_declare(name, **kwargs).method
    return {"queue": shape(ok.queue), "messages": ok.message_count,
            "consumers": ok.consumer_count}


def get(channel, auto_ack=False):
    method, props, body = channel.basic_get(QUEUE, auto_ack=auto_ack)
    if method is None:
        return None, {"empty": True}
    return method.delivery_tag, {
        "tag": method.delivery_tag, "redelivered": method.redelivered,
        "exchange": method.exchange, "routing_key": method.routing_key,
        "left": method.message_count, "body": body.decode(),
        "content_type": props.content_type, "headers": props.headers,
        "delivery_mode": props.delivery_mode,
    }


def drain(conn, received, expected):
    """Waits (up to 5 s) for the deliveries a broker should send now, then a moment more
    so that any beyond them show too; returns how many came."""
    before = len(received)
    deadline = time.monotonic() + 5
    while len(received) - before < expected and time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.05)
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        conn.process_data_events(time_limit=0.05)
    return len(received) - before


def attempt(conn, name, action):
    """Runs an action expected to be refused; reports the refusal, returns a fresh channel."""
    channel = conn.channel()
    try:
        action(channel)
        emit(step=name, refused=None)
    except pika.exceptions.ChannelClosedByBroker as error:
        emit(step=name, refused=refused(error))
    except pika.exceptions.ConnectionClosedByBroker as error:
        emit(step=name, refused=refused(error), connection=True)
        return None
    return conn.channel()


def messages():
    conn = connect(heartbeat=0)
    channel = conn.channel()
    emit(step="declare", **declare(channel, QUEUE, durable=False))
    channel.confirm_delivery()
    props = pika.BasicProperties(content_type="text/plain", delivery_mode=2,
                                 headers={"attempt": 1})
    for i in range(MESSAGES):
        # With confirms on, basic_publish returns once the broker acknowledged it.
        channel.basic_publish("", QUEUE, f"job {i}".encode(), props)
    emit(step="published", confirmed=MESSAGES)
    emit(step="passive after publish", **declare(channel, QUEUE, passive=True))
    checkpoint("published", ready=MESSAGES, unacked=0, consumers=0)

    tag, got = get(channel)
    emit(step="get", **got)
    emit(step="passive after get", **declare(channel, QUEUE, passive=True))
    checkpoint("one unacked", ready=MESSAGES - 1, unacked=1, consumers=0)
    channel.basic_nack(tag, requeue=True)
    settle(conn)
    emit(step="passive after nack", **declare(channel, QUEUE, passive=True))
    tag, got = get(channel)
    emit(step="get again", **got)
    channel.basic_reject(tag, requeue=False)
    settle(conn)
    emit(step="passive after reject", **declare(channel, QUEUE, passive=True))
    _, got = get(channel, auto_ack=True)
    emit(step="get auto-ack", **got)
    left = MESSAGES - 2

    received = []
    channel.basic_qos(prefetch_count=3)
    consumer = channel.basic_consume(
        QUEUE, lambda ch, m, p, b: received.append((m.delivery_tag, b.decode(), m.redelivered)))
    emit(step="consume", tag=shape(consumer), delivered=drain(conn, received, 3))
    emit(step="deliveries", received=received)
    checkpoint("prefetch full", ready=left - 3, unacked=3, consumers=1)
    channel.basic_ack(received[1][0], multiple=True)
    emit(step="after ack multiple", delivered=drain(conn, received, 2))
    channel.basic_nack(0, multiple=True, requeue=True)
    emit(step="after nack all", delivered=drain(conn, received, 3))
    emit(step="deliveries", received=received)
    for tag, _, _ in received[-3:]:
        channel.basic_ack(tag)
    emit(step="after acks", delivered=drain(conn, received, 3))
    checkpoint("consuming", ready=left - 8, unacked=3, consumers=1)
    channel.basic_cancel(consumer)
    settle(conn)
    emit(step="cancelled", **declare(channel, QUEUE, passive=True))
    channel.basic_recover(requeue=True)
    settle(conn)
    emit(step="recovered", **declare(channel, QUEUE, passive=True))
    ok = channel.queue_purge(QUEUE).method
    emit(step="purge", purged=ok.message_count)
    emit(step="passive after purge", **declare(channel, QUEUE, passive=True))

    channel.exchange_declare("diff-fanout", exchange_type="fanout", durable=False)
    channel.exchange_declare("diff-topic", exchange_type="topic", durable=False)
    channel.exchange_declare("diff-direct", exchange_type="direct", durable=False)
    channel.exchange_declare("diff-topic", exchange_type="topic", passive=True)
    named = channel.queue_declare("", exclusive=True).method.queue
    emit(step="server-named", queue=shape(named))
    channel.queue_bind(named, "diff-fanout")
    channel.queue_bind(QUEUE, "diff-topic", routing_key="orders.*.paid")
    channel.queue_bind(QUEUE, "diff-direct", routing_key="eu")
    for exchange, key in [("diff-fanout", "any"), ("diff-topic", "orders.eu.paid"),
                          ("diff-topic", "orders.paid"), ("diff-direct", "eu"),
                          ("diff-direct", "us"), ("", "no-such-queue")]:
        channel.basic_publish(exchange, key, f"{exchange}:{key}".encode())
    emit(step="routed", fanout=declare(channel, named, passive=True)["messages"],
         work=declare(channel, QUEUE, passive=True)["messages"])
    _, got = get(channel, auto_ack=True)
    emit(step="get routed", **got)
    channel.queue_unbind(QUEUE, "diff-direct", routing_key="eu")
    channel.basic_publish("diff-direct", "eu", b"after unbind")
    emit(step="after unbind", **declare(channel, QUEUE, passive=True))
    ok = channel.queue_delete(named).method
    emit(step="delete server-named", deleted=ok.message_count)
    channel.basic_publish("", QUEUE, b"mandatory", mandatory=True)
    try:
        channel.basic_publish("", "no-such-queue", b"mandatory", mandatory=True)
        emit(step="unroutable mandatory", returned=False)
    except pika.exceptions.UnroutableError:
        emit(step="unroutable mandatory", returned=True)

    channel = attempt(conn, "passive missing queue",
                      lambda ch: ch.queue_declare("diff-missing", passive=True))
    channel = attempt(conn, "passive missing exchange",
                      lambda ch: ch.exchange_declare("diff-missing", passive=True))
    channel = attempt(conn, "exchange of another type",
                      lambda ch: ch.exchange_declare("diff-topic", exchange_type="direct"))
    channel = attempt(conn, "queue redeclared durable",
                      lambda ch: ch.queue_declare(QUEUE, durable=True))
    channel = attempt(conn, "reserved queue name",
                      lambda ch: ch.queue_declare("amq.mine"))
    channel = attempt(conn, "bind to missing exchange",
                      lambda ch: ch.queue_bind(QUEUE, "diff-missing"))

    def unknown_tag(ch):
        ch.basic_ack(99)
        ch.queue_declare(QUEUE, passive=True)
    channel = attempt(conn, "ack of an unknown tag", unknown_tag)
    channel = attempt(conn, "purge of a missing queue",
                      lambda ch: ch.queue_purge("diff-missing"))
    channel = attempt(conn, "get from a missing queue",
                      lambda ch: ch.basic_get("diff-missing"))
    channel = attempt(conn, "consume from a missing queue",
                      lambda ch: ch.basic_consume("diff-missing", lambda *a: None))
    channel = attempt(conn, "bind to the default exchange",
                      lambda ch: ch.queue_bind(QUEUE, ""))
    channel = attempt(conn, "delete the default exchange",
                      lambda ch: ch.exchange_delete(""))
    channel = attempt(conn, "delete a system exchange",
                      lambda ch: ch.exchange_delete("amq.direct"))
    channel = attempt(conn, "redeclare a system exchange otherwise",
                      lambda ch: ch.exchange_declare("amq.direct", "direct"))
    channel = attempt(conn, "unbind what was never bound",
                      lambda ch: ch.queue_unbind(QUEUE, "diff-direct", routing_key="none"))
    emit(step="delete a missing queue", deleted=channel.queue_delete("diff-missing").method.message_count)
    channel.exchange_delete("diff-missing")
    emit(step="delete a missing exchange", ok=True)
    mine = channel.queue_declare("diff-exclusive", exclusive=True).method.queue
    other = connect(heartbeat=0)
    attempt(other, "another connection's exclusive queue",
            lambda ch: ch.queue_declare(mine, passive=True))
    other.close()
    ok = channel.queue_delete(QUEUE).method
    emit(step="delete", deleted=ok.message_count)
    for exchange in ["diff-fanout", "diff-topic", "diff-direct"]:
        channel.exchange_delete(exchange)
    attempt(conn, "unknown exchange type",
            lambda ch: ch.exchange_declare("diff-odd", exchange_type="odd"))
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - closed by the broker above
        pass


{"idle": idle, "messages": messages}[SCENARIO]()
