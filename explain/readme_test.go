package explain

import (
	"os"
	"testing"
)

// TestREADMECauses fails when the cause table of docs/events.md (the
// README's reference on events) is not the one the code renders; `make
// readme` rewrites it.
func TestREADMECauses(t *testing.T) {
	b, err := os.ReadFile("../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReplaceBlock(string(b), Markdown())
	if err != nil {
		t.Fatal(err)
	}
	if got != string(b) {
		t.Error("docs/events.md's cause table differs from explain.Causes: run `make readme`")
	}
}
