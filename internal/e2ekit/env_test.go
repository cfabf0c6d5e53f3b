package e2ekit

import "testing"

// TestLeaked: the password check StartProxy runs finds a registered
// password anywhere in a text, and nothing else.
func TestLeaked(t *testing.T) {
	Secret("pw-leak_1")
	if l := leaked(`{"msg":"login","auth":"pw-leak_1"}`); len(l) != 1 {
		t.Errorf("leaked = %q, want the password", l)
	}
	if l := leaked(`{"user":"leak_1"}`); len(l) != 0 {
		t.Errorf("leaked = %q for the user name alone", l)
	}
}
