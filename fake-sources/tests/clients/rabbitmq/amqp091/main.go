// Command amqp091 runs what KEDA's rabbitmq scaler and a small producer and consumer do
// with amqp091-go (the AMQP client upstream KEDA uses), against a broker given on the
// command line, and prints each observation as one JSON line, so a test can run it against
// a real RabbitMQ and against the fake and compare the lines.
//
// Usage: amqp091 SCENARIO AMQP-URL
//
//	idle      heartbeat 2 s (amqp091-go picks the smaller of its own and the server's
//	          proposal); a declare, eight idle intervals (amqp091-go gives up on a broker
//	          silent for three), a passive declare.
//	messages  declare, publish with confirms, get, nack, consume with prefetch, ack, purge.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

const queue = "diff-go"

func emit(fields map[string]any) {
	line, err := json.Marshal(fields)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(line))
}

func fail(step string, err error) {
	emit(map[string]any{"step": step, "error": err.Error()})
	os.Exit(1)
}

func passive(ch *amqp.Channel) map[string]any {
	q, err := ch.QueueDeclarePassive(queue, false, false, false, false, nil)
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	return map[string]any{"messages": q.Messages, "consumers": q.Consumers}
}

func idle(url string) {
	conn, err := amqp.DialConfig(url, amqp.Config{Heartbeat: 2 * time.Second})
	if err != nil {
		fail("dial", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		fail("channel", err)
	}
	if _, err := ch.QueueDeclare(queue, false, false, false, false, nil); err != nil {
		fail("declare", err)
	}
	emit(map[string]any{"step": "connected", "heartbeat_s": conn.Config.Heartbeat.Seconds()})
	// amqp091-go sends its heartbeats from its own goroutine while the program sleeps.
	time.Sleep(8 * conn.Config.Heartbeat)
	emit(map[string]any{"step": "declare after idle", "result": passive(ch), "closed": conn.IsClosed()})
	if _, err := ch.QueueDelete(queue, false, false, false); err != nil {
		fail("delete", err)
	}
	_ = conn.Close()
}

func messages(url string) {
	conn, err := amqp.Dial(url)
	if err != nil {
		fail("dial", err)
	}
	emit(map[string]any{"step": "connected", "heartbeat_s": conn.Config.Heartbeat.Seconds()})
	ch, err := conn.Channel()
	if err != nil {
		fail("channel", err)
	}
	if _, err := ch.QueueDeclare(queue, false, false, false, false, nil); err != nil {
		fail("declare", err)
	}
	if err := ch.Confirm(false); err != nil {
		fail("confirm", err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 10))
	for i := 0; i < 5; i++ {
		body := []byte(fmt.Sprintf("job %d", i))
		msg := amqp.Publishing{ContentType: "text/plain", Body: body, Headers: amqp.Table{"n": int32(i)}}
		if err := ch.Publish("", queue, false, false, msg); err != nil {
			fail("publish", err)
		}
		c := <-confirms
		emit(map[string]any{"step": "confirmed", "tag": c.DeliveryTag, "ack": c.Ack})
	}
	emit(map[string]any{"step": "after publish", "result": passive(ch)})
	msg, ok, err := ch.Get(queue, false)
	if err != nil || !ok {
		fail("get", fmt.Errorf("ok %v: %v", ok, err))
	}
	emit(map[string]any{"step": "get", "body": string(msg.Body), "left": msg.MessageCount,
		"content_type": msg.ContentType, "headers": msg.Headers, "tag": msg.DeliveryTag})
	emit(map[string]any{"step": "after get", "result": passive(ch)})
	if err := msg.Nack(false, true); err != nil {
		fail("nack", err)
	}
	time.Sleep(200 * time.Millisecond)
	emit(map[string]any{"step": "after nack", "result": passive(ch)})
	if err := ch.Qos(2, 0, false); err != nil {
		fail("qos", err)
	}
	deliveries, err := ch.Consume(queue, "go-consumer", false, false, false, false, nil)
	if err != nil {
		fail("consume", err)
	}
	var got []map[string]any
	for len(got) < 5 {
		select {
		case d := <-deliveries:
			got = append(got, map[string]any{"body": string(d.Body), "redelivered": d.Redelivered, "tag": d.DeliveryTag})
			if err := d.Ack(false); err != nil {
				fail("ack", err)
			}
		case <-time.After(5 * time.Second):
			fail("consume", fmt.Errorf("only %d deliveries", len(got)))
		}
	}
	emit(map[string]any{"step": "consumed", "deliveries": got})
	if err := ch.Cancel("go-consumer", false); err != nil {
		fail("cancel", err)
	}
	time.Sleep(200 * time.Millisecond)
	emit(map[string]any{"step": "after consume", "result": passive(ch)})
	if err := ch.Publish("", queue, false, false, amqp.Publishing{Body: []byte("left")}); err != nil {
		fail("publish", err)
	}
	<-confirms
	purged, err := ch.QueuePurge(queue, false)
	if err != nil {
		fail("purge", err)
	}
	emit(map[string]any{"step": "purge", "purged": purged})
	named, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		fail("server-named", err)
	}
	emit(map[string]any{"step": "server-named", "prefix": named.Name[:8], "length": len(named.Name)})
	_, err = ch.QueueDeclarePassive("diff-go-missing", false, false, false, false, nil)
	emit(map[string]any{"step": "passive missing", "error": fmt.Sprint(err)})
	ch, err = conn.Channel()
	if err != nil {
		fail("channel", err)
	}
	deleted, err := ch.QueueDelete(queue, false, false, false)
	if err != nil {
		fail("delete", err)
	}
	emit(map[string]any{"step": "delete", "deleted": deleted})
	_ = conn.Close()
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: amqp091 idle|messages AMQP-URL")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "idle":
		idle(os.Args[2])
	case "messages":
		messages(os.Args[2])
	default:
		fmt.Fprintln(os.Stderr, "unknown scenario", os.Args[1])
		os.Exit(2)
	}
}
