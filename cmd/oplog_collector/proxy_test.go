package main

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// tcpProxy stands between a collector and its store: it forwards bytes both ways until
// paused, then holds them (what it has read stays in its buffers, the rest in the
// kernel's) until resumed, as a network partition that heals does. Connections stay
// open throughout, so what a collector sent before the partition reaches the store
// after it.
type tcpProxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	paused bool
	resume chan struct{} // closed when the proxy is resumed
	conns  []net.Conn
}

func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target, resume: make(chan struct{})}
	close(p.resume)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

// uri is a connection string through the proxy: direct, or the driver would find the
// server's own address in its hello and go around the proxy.
func (p *tcpProxy) uri() string {
	return "mongodb://" + p.ln.Addr().String() + "/?directConnection=true"
}

func (p *tcpProxy) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		go p.pipe(server, client)
		go p.pipe(client, server)
	}
}

// pipe copies src to dst, holding what it read while the proxy is paused.
func (p *tcpProxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.gate()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				src.Close()
			}
			return
		}
	}
}

func (p *tcpProxy) gate() {
	p.mu.Lock()
	wait := p.resume
	p.mu.Unlock()
	<-wait
}

// pause holds every byte from now on, in both directions.
func (p *tcpProxy) pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.paused {
		p.paused, p.resume = true, make(chan struct{})
	}
}

// heal forwards what was held, and everything after it.
func (p *tcpProxy) heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused {
		p.paused = false
		close(p.resume)
	}
}

func (p *tcpProxy) close() {
	p.heal()
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}
