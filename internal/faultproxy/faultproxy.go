// Package faultproxy is a small TCP proxy for tests that need the network to
// fail on cue between a client and a server on this machine: cut every
// connection, blackhole them (bytes vanish, nothing closes — a partition),
// or add latency.
package faultproxy

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"
)

// Proxy forwards connections accepted on a loopback port to a target.
type Proxy struct {
	ln      net.Listener
	network string
	target  string

	mu        sync.Mutex
	conns     map[net.Conn]struct{}
	latency   time.Duration
	blackhole bool
	partition bool
	closed    bool
	wg        sync.WaitGroup
}

// Start listens on 127.0.0.1 (a free port) and forwards to target, which is
// a "tcp" host:port or a "unix" socket path.
func Start(network, target string) (*Proxy, error) {
	if network != "tcp" && network != "unix" {
		return nil, errors.New("faultproxy: network must be tcp or unix")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, network: network, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's listening address (host:port).
func (p *Proxy) Addr() *net.TCPAddr { return p.ln.Addr().(*net.TCPAddr) }

// SetLatency delays every forwarded chunk by d (0: none).
func (p *Proxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	p.latency = d
	p.mu.Unlock()
}

// SetBlackhole makes the proxy swallow every byte in both directions while
// on, without closing anything: to both sides the peer simply stops
// answering, as in a network partition.
func (p *Proxy) SetBlackhole(on bool) {
	p.mu.Lock()
	p.blackhole = on
	p.mu.Unlock()
}

// SetPartition is SetBlackhole that also loses closes: while on, a side
// that closes its socket (or whose socket fails) leaves the other side's
// socket open, as when a FIN is lost in a network partition. The server
// sees a peer that is still connected but never says anything again.
func (p *Proxy) SetPartition(on bool) {
	p.mu.Lock()
	p.blackhole, p.partition = on, on
	p.mu.Unlock()
}

// CutAll closes every open connection on both sides, as a network failure
// would; new connections are still accepted.
func (p *Proxy) CutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close() // the point is to break it
		delete(p.conns, c)
	}
}

// Close stops accepting, cuts everything and waits for the forwarders.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	_ = p.ln.Close()
	p.CutAll()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		server, err := (&net.Dialer{}).DialContext(ctx, p.network, p.target)
		cancel()
		if err != nil {
			_ = client.Close()
			continue
		}
		if !p.track(client, server) {
			return
		}
		p.wg.Add(2)
		go p.pipe(server, client)
		go p.pipe(client, server)
	}
}

func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range cs {
			_ = c.Close()
		}
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

// pipe copies src to dst until either fails, then closes both (only src
// while partitioned: dst never hears of it).
func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		lost := p.partition
		p.mu.Unlock()
		if !lost {
			_ = dst.Close()
		}
		_ = src.Close()
	}()
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			d, hole := p.latency, p.blackhole
			p.mu.Unlock()
			if d > 0 {
				time.Sleep(d)
			}
			if hole {
				continue // swallowed
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or a cut: either way this direction is done
		}
	}
}
