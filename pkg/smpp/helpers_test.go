package smpp

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
)

// safety bounds a test that would otherwise hang on a bug; no assertion depends on it.
const safety = 20 * time.Second

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), safety)
	t.Cleanup(cancel)
	return ctx
}

// startServer runs a Server on a loopback port and closes it at the end of the test.
func startServer(t *testing.T, cfg ServerConfig) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(cfg)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), safety)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("server close: %v", err)
		}
		if err := <-served; err != ErrServerClosed {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return srv, ln.Addr().String()
}

func dial(t *testing.T, cfg ClientConfig) *Session {
	t.Helper()
	s, err := Dial(testCtx(t), cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), safety)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("session close: %v", err)
		}
	})
	return s
}

// rawPeer speaks SMPP by hand over a real TCP connection, encoding and decoding with
// go-smpp's codec only, to check what our session layer puts on the wire.
type rawPeer struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

func newRawPeer(t *testing.T, nc net.Conn) *rawPeer {
	t.Helper()
	if err := nc.SetDeadline(time.Now().Add(safety)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return &rawPeer{t: t, nc: nc, r: bufio.NewReader(nc)}
}

func (p *rawPeer) read() pdu.Body {
	p.t.Helper()
	b, err := pdu.Decode(p.r)
	if err != nil {
		p.t.Fatalf("raw peer read: %v", err)
	}
	return b
}

// readID reads one PDU and checks its command.
func (p *rawPeer) readID(want pdu.ID) pdu.Body {
	p.t.Helper()
	b := p.read()
	if b.Header().ID != want {
		p.t.Fatalf("raw peer read %s (status %d), want %s", b.Header().ID, b.Header().Status, want)
	}
	return b
}

func (p *rawPeer) write(b pdu.Body, seq, status uint32) {
	p.t.Helper()
	b.Header().Seq = seq
	b.Header().Status = pdu.Status(status)
	var buf bytes.Buffer
	if err := b.SerializeTo(&buf); err != nil {
		p.t.Fatal(err)
	}
	p.writeRaw(buf.Bytes())
}

func (p *rawPeer) writeRaw(b []byte) {
	p.t.Helper()
	if _, err := p.nc.Write(b); err != nil {
		p.t.Fatalf("raw peer write: %v", err)
	}
}

// rawSMSC accepts one client session on a raw peer and answers its bind.
func rawSMSC(t *testing.T, cfg ClientConfig) (*Session, *rawPeer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg.Addr = ln.Addr().String()
	type result struct {
		s   *Session
		err error
	}
	dialed := make(chan result, 1)
	go func() {
		s, err := Dial(testCtx(t), cfg)
		dialed <- result{s, err}
	}()
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	peer := newRawPeer(t, nc)
	bind := peer.readID(pdu.BindTransceiverID)
	resp := pdu.NewBindTransceiverResp()
	if err := resp.Fields().Set(pdufield.SystemID, "raw"); err != nil {
		t.Fatal(err)
	}
	peer.write(resp, bind.Header().Seq, 0)
	res := <-dialed
	if res.err != nil {
		t.Fatalf("dial: %v", res.err)
	}
	t.Cleanup(func() {
		_ = peer.nc.Close()
		<-res.s.Done()
	})
	return res.s, peer
}

// rawESME connects a raw peer to addr and binds as a transceiver.
func rawESME(t *testing.T, addr, systemID, password string) *rawPeer {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	peer := newRawPeer(t, nc)
	b := pdu.NewBindTransceiver()
	for k, v := range map[pdufield.Name]string{pdufield.SystemID: systemID, pdufield.Password: password} {
		if err := b.Fields().Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	peer.write(b, 1, 0)
	resp := peer.readID(pdu.BindTransceiverRespID)
	if resp.Header().Status != 0 {
		t.Fatalf("raw bind: status %d", resp.Header().Status)
	}
	return peer
}
