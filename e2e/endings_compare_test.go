package e2e

// The package's MariaDB in the shared comparison (internal/e2ekit).

import (
	"context"
	"testing"

	"github.com/abortscope/abortscope/internal/e2ekit"
)

type (
	serverTrace = e2ekit.Trace
	compared    = e2ekit.Compared
)

var (
	logLine       = e2ekit.LogLine
	logLinesOf    = e2ekit.LogLinesOf
	mustContain   = e2ekit.MustContain
	checkLines    = e2ekit.CheckLines
	checkLogNames = e2ekit.CheckLogNames
)

// compareWithDirect runs sc directly and through a new proxy (e2ekit).
func compareWithDirect(t *testing.T, wantDelta map[string]int64, sc e2ekit.Scenario) compared {
	t.Helper()
	return e2ekit.CompareWithDirect(t, db, startProxy(t), wantDelta, sc)
}

func waitQuiet(t testing.TB) { e2ekit.WaitQuiet(t, db) }

func counters(t testing.TB, ctx context.Context) map[string]int64 { return e2ekit.Counters(t, ctx, db) }

func waitGone(t testing.TB, ids ...uint32) { e2ekit.WaitGone(t, db, ids...) }

func waitProcesslist(t testing.TB, what, query string, done func(int) bool, args ...any) {
	e2ekit.WaitProcesslist(t, db, what, query, done, args...)
}
