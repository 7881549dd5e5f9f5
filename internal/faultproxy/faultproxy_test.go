package faultproxy

import (
	"bufio"
	"errors"
	"net"
	"testing"
	"time"
)

func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestForwardCutAndLatency(t *testing.T) {
	p, err := Start("tcp", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if _, err := c.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	if got, err := r.ReadString('\n'); err != nil || got != "hello\n" {
		t.Fatalf("echo = %q, %v", got, err)
	}

	p.SetLatency(50 * time.Millisecond)
	start := time.Now()
	if _, err := c.Write([]byte("slow\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < 100*time.Millisecond { // two hops of 50 ms: latency must have been added
		t.Fatalf("round trip took %v with 50 ms latency each way", time.Since(start))
	}
	p.SetLatency(0)

	p.SetBlackhole(true)
	if _, err := c.Write([]byte("lost\n")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if got, err := r.ReadString('\n'); err == nil {
		t.Fatalf("a blackholed connection answered %q", got)
	}
	p.SetBlackhole(false)

	p.CutAll()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("connection survived CutAll")
	}
	// New connections still work.
	c2, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c2.Write([]byte("again\n")); err != nil {
		t.Fatal(err)
	}
	if got, err := bufio.NewReader(c2).ReadString('\n'); err != nil || got != "again\n" {
		t.Fatalf("after cut: %q, %v", got, err)
	}
}

// While partitioned, a client that closes leaves the server's socket open:
// the server never reads EOF.
func TestPartitionLosesTheClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	p, err := Start("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server := <-accepted
	defer server.Close()
	p.SetPartition(true)
	_ = c.Close()
	_ = server.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var buf [1]byte
	_, err = server.Read(buf[:])
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("server read after the client closed in a partition = %v, want a timeout (no EOF)", err)
	}
}
