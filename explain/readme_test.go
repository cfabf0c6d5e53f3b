package explain

import (
	"os"
	"testing"
)

// TestREADMECauses fails when the README's cause table is not the one the
// code renders; `make readme` rewrites it.
func TestREADMECauses(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReplaceBlock(string(b), Markdown())
	if err != nil {
		t.Fatal(err)
	}
	if got != string(b) {
		t.Error("README.md's cause table differs from explain.Causes: run `make readme`")
	}
}
