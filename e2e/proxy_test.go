package e2e

import (
	"net"
	"testing"

	"github.com/abortscope/abortscope/internal/e2ekit"
	"github.com/abortscope/abortscope/proxy"
)

type (
	collector = e2ekit.Collector
	testProxy = e2ekit.TestProxy
)

func newCollector() *collector { return e2ekit.NewCollector() }

// startProxy starts a proxy in front of the package's MariaDB (e2ekit).
func startProxy(t testing.TB, configure ...func(*proxy.Proxy)) *testProxy {
	t.Helper()
	return e2ekit.StartProxy(t, db.Addr(), configure...)
}

// host and port split an address for clients that want them apart.
func hostPort(t testing.TB, addr string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}
