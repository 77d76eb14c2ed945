// go-redis (Debian's gopkg.in/redis.v5, the go-redis client packaged for Debian) against
// weir's RESP port: connection handshake with a password (AUTH), strings, a hash on a
// compacted topic, a pipeline, and pub/sub. Usage: go_redis HOST:PORT PASSWORD
package main

import (
	"fmt"
	"os"
	"time"

	redis "gopkg.in/redis.v5"
)

func check(what string, err error) {
	if err != nil {
		fmt.Printf("FAIL: %s: %v\n", what, err)
		os.Exit(1)
	}
}

func expect(what string, got, want string) {
	if got != want {
		fmt.Printf("FAIL: %s: got %q, want %q\n", what, got, want)
		os.Exit(1)
	}
}

func main() {
	addr, password := os.Args[1], os.Args[2]
	client := redis.NewClient(&redis.Options{Addr: addr, Password: password, DialTimeout: 10 * time.Second})
	defer client.Close()

	pong, err := client.Ping().Result()
	check("PING", err)
	expect("PING", pong, "PONG")

	check("SET", client.Set("go:greeting", "hello from go-redis", 0).Err())
	v, err := client.Get("go:greeting").Result()
	check("GET", err)
	expect("GET", v, "hello from go-redis")
	_, err = client.Get("go:missing").Result()
	if err != redis.Nil {
		fmt.Printf("FAIL: GET of a missing key: %v, want redis.Nil\n", err)
		os.Exit(1)
	}

	check("HSET", client.HSet("go-users", "u1", "alice").Err())
	h, err := client.HGet("go-users", "u1").Result()
	check("HGET", err)
	expect("HGET", h, "alice")

	cmds, err := client.Pipelined(func(p *redis.Pipeline) error {
		for i := 0; i < 100; i++ {
			p.Set(fmt.Sprintf("go:k%d", i), fmt.Sprintf("v%d", i), 0)
		}
		for i := 0; i < 100; i++ {
			p.Get(fmt.Sprintf("go:k%d", i))
		}
		return nil
	})
	check("pipeline", err)
	for i := 0; i < 100; i++ {
		expect("pipelined GET", cmds[100+i].(*redis.StringCmd).Val(), fmt.Sprintf("v%d", i))
	}

	sub, err := client.Subscribe("go-news")
	check("SUBSCRIBE", err)
	defer sub.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := client.Publish("go-news", "extra").Result()
		check("PUBLISH", err)
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			fmt.Println("FAIL: PUBLISH never reached the subscriber")
			os.Exit(1)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The subscription confirmation comes first, then the message.
	var m *redis.Message
	for m == nil {
		msg, err := sub.ReceiveTimeout(10 * time.Second)
		check("receive", err)
		switch x := msg.(type) {
		case *redis.Subscription:
		case *redis.Message:
			m = x
		default:
			fmt.Printf("FAIL: unexpected %T %v\n", msg, msg)
			os.Exit(1)
		}
	}
	expect("message channel", m.Channel, "go-news")
	expect("message payload", m.Payload, "extra")
	fmt.Println("go-redis: handshake, strings, hashes, pipeline, pub/sub ok")
}
