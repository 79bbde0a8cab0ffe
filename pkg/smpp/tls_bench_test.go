package smpp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

// selfSigned returns server and client TLS configs for 127.0.0.1.
func selfSigned(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "smsc"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool}
}

func TestTLS(t *testing.T) {
	serverTLS, clientTLS := selfSigned(t)
	_, addr := startServer(t, ServerConfig{TLS: serverTLS, Submit: func(ctx context.Context, _ *ServerSession, sm *SubmitSM) SubmitResp {
		return SubmitResp{MessageID: "tls-1"}
	}})
	s := dial(t, ClientConfig{Addr: addr, SystemID: "a", TLS: clientTLS})
	resp, err := s.Submit(testCtx(t), &SubmitSM{ShortMessage: []byte("x")})
	if err != nil || resp.MessageID != "tls-1" {
		t.Fatalf("submit over TLS: %+v %v", resp, err)
	}
	// A plain-text client cannot bind to the TLS listener.
	ctx, cancel := context.WithTimeout(testCtx(t), time.Second)
	defer cancel()
	if _, err := Dial(ctx, ClientConfig{Addr: addr, SystemID: "a"}); err == nil {
		t.Error("plain-text bind to a TLS server succeeded")
	}
}

// BenchmarkSubmit measures submits per second on loopback with b.N submits spread over
// 4×window goroutines, so the window is the limit.
func BenchmarkSubmit(b *testing.B) {
	for _, window := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("window=%d", window), func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			srv := NewServer(ServerConfig{Window: window, Concurrency: 4 * window, Submit: func(ctx context.Context, _ *ServerSession, sm *SubmitSM) SubmitResp {
				return SubmitResp{MessageID: "m"}
			}})
			served := make(chan error, 1)
			go func() { served <- srv.Serve(ln) }()
			ctx := context.Background()
			s, err := Dial(ctx, ClientConfig{Addr: ln.Addr().String(), SystemID: "bench", Window: window})
			if err != nil {
				b.Fatal(err)
			}
			sm := &SubmitSM{SourceAddr: "ACME", DestAddr: "447700900123", ShortMessage: []byte("benchmark message text")}
			workers := 4 * window
			var wg sync.WaitGroup
			b.ResetTimer()
			for w := range workers {
				n := b.N / workers
				if w < b.N%workers {
					n++
				}
				wg.Go(func() {
					for range n {
						if _, err := s.Submit(ctx, sm); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "submits/s")
			if err := s.Close(ctx); err != nil {
				b.Error(err)
			}
			if err := srv.Close(ctx); err != nil {
				b.Error(err)
			}
			<-served
		})
	}
}
