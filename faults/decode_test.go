package faults

import (
	"strings"
	"testing"
)

// TestRuleFields: every field a rule is written with, and none of the
// status fields.
func TestRuleFields(t *testing.T) {
	got := strings.Join(RuleFields(), " ")
	for _, want := range []string{"name", "user", "attrs", "query", "after_bytes", "probability", "ttl", "action", "then_close", "direction"} {
		if !strings.Contains(" "+got+" ", " "+want+" ") {
			t.Errorf("RuleFields() = %s; missing %s", got, want)
		}
	}
	for _, not := range []string{"id", "fired", "armed_at", "expires_at"} {
		if strings.Contains(" "+got+" ", " "+not+" ") {
			t.Errorf("RuleFields() = %s; has status field %s", got, not)
		}
	}
}
